"""The one home of compiled kernels: numba's ``njit`` with an on-disk cache.

The large-library phases (the local search, the bound's DP passes) loop over thousands of
oriented sites per step, which numpy cannot vectorise well. Their inner loops are compiled
with ``kernel``:

- compiled on first call, then cached on disk (numba's ``__pycache__`` next to the module, or a
  per-user cache directory when that is read-only; ``NUMBA_CACHE_DIR`` moves it), so only the
  first run of an installation pays the compilation; concurrent array tasks share the cache
  (numba writes its cache files atomically);
- ``nogil``: `dense run` solves in a worker thread, and a kernel must not hold up the main one.

Import this module, and the kernel modules built on it, inside the functions that need them:
numba's own import costs about 0.5 s of CPU, which small libraries and the CLI must not pay.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numba

F = TypeVar("F", bound=Callable[..., Any])


def kernel(fn: F) -> F:
    """``fn`` compiled in nopython mode, cached on disk, releasing the GIL."""
    return numba.njit(cache=True, nogil=True)(fn)  # type: ignore[return-value]
