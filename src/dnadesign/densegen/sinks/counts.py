"""Committed rows per plan of one run, kept up to date at the cost of the new part files only.

Both sinks store rows in immutable part files listed by a manifest. The counter remembers what
it counted per file; each refresh reads only files it has not seen (a few rows each). When a file
it counted is gone (the dataset was compacted or restored), the caller recounts from scratch.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable


class PlanCounter:
    """Rows per plan over a growing set of immutable files, each counted once."""

    def __init__(self) -> None:
        self.base: Counter = Counter()  # an exact count taken over `base_files`
        self.base_files: frozenset[str] = frozenset()
        self.by_file: dict[str, Counter] = {}
        self.ready = False

    def reset(self, counts: dict[str, int], files: Iterable[str]) -> None:
        """Start from an exact count `counts` that covers exactly `files`."""
        self.base = Counter(counts)
        self.base_files = frozenset(files)
        self.by_file = {}
        self.ready = True

    def update(self, files: Iterable[str], count_file: Callable[[str], Counter]) -> bool:
        """Count the files not seen yet; False when a counted file disappeared (recount needed)."""
        files = list(files)
        present = set(files)
        if not self.base_files <= present or not set(self.by_file) <= present:
            return False
        for f in files:
            if f not in self.base_files and f not in self.by_file:
                self.by_file[f] = count_file(f)
        return True

    def counts(self) -> dict[str, int]:
        """Rows per plan (base plus every file counted since)."""
        total = Counter(self.base)
        for c in self.by_file.values():
            total.update(c)
        return {k: int(v) for k, v in total.items() if v}
