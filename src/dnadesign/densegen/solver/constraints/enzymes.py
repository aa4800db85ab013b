"""Restriction enzyme recognition sites from Biopython's ``Bio.Restriction`` (REBASE) data.

``Bio.Restriction`` takes about 0.4 s to import, so it is loaded on first use (like OR-Tools in
the solver): only configs that name enzymes pay for it.
"""

from __future__ import annotations

import difflib
from functools import lru_cache
from typing import Any

from .base import need_list


@lru_cache(maxsize=1)
def _sites() -> dict[str, str]:
    """Enzyme name -> recognition site (IUPAC), from REBASE as Biopython ships it."""
    import Bio.Restriction.Restriction_Dictionary as rebase  # lazy: see the module docstring

    return {name: str(props["site"]) for name, props in rebase.rest_dict.items()}


def enzyme_site(name: str) -> str | None:
    """Recognition site of a restriction enzyme (name as REBASE spells it, e.g. ``BsaI``), or None."""
    return _sites().get(name)


def parse_enzymes(raw: Any, where: str) -> list[tuple[str, str]]:
    """``forbid_enzymes``: enzyme names -> (name, site); ValueError naming ``where`` and a close match."""
    out = []
    for k, name in enumerate(need_list(raw, where, "restriction enzyme names such as BsaI")):
        site = enzyme_site(name) if isinstance(name, str) else None
        if site is None:
            by_lower = {n.lower(): n for n in _sites()}
            close = [by_lower[str(name).lower()]] if str(name).lower() in by_lower else \
                [by_lower[c] for c in difflib.get_close_matches(str(name).lower(), list(by_lower), n=1, cutoff=0.6)]
            did = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"{where}[{k}]: {name!r} is not a restriction enzyme known to Biopython's "
                             f"Bio.Restriction{did}")
        out.append((name, site))
    return list(dict.fromkeys(out))
