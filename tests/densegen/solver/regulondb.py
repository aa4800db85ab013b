"""The seeded RegulonDB draw the solver tests share with the benchmarks.

``regulondb(n, seed)``: ``n`` distinct RegulonDB binding sites of 6-30 bp (A/C/G/T only) from
``../shared/data/regulondb_tfbs.csv``, in the order of a seeded shuffle of the rows: the same
libraries as ``bench/solver_vs_dense_arrays.py``'s ``draw_library`` (and so ``solver_scale.py`` and
``deterministic_budget.py``), which ``test_regulondb_draw.py`` checks.
"""

from __future__ import annotations

import csv
import random

from dnadesign.densegen.solver import Site

from ...conftest import SHARED, require_component

TFBS = SHARED / "data" / "regulondb_tfbs.csv"


def regulondb(n: int, seed: int) -> tuple[Site, ...]:
    """``n`` distinct RegulonDB sites of 6-30 bp, seeded shuffle (the benchmarks' draw)."""
    require_component(TFBS.exists(), f"{TFBS} (shared RegulonDB data) is missing")
    with open(TFBS, newline="") as fh:
        rows = [(r["tf"], r["tfbs"].strip().upper()) for r in csv.DictReader(fh)]
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    seen: set[str] = set()
    out: list[Site] = []
    for i in order:
        tf, seq = rows[i]
        if seq in seen or not 6 <= len(seq) <= 30 or set(seq) - set("ACGT"):
            continue
        seen.add(seq)
        out.append(Site(f"r{i}", seq, tf))
        if len(out) == n:
            break
    return tuple(out)
