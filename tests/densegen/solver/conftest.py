"""Fixtures for the solver tests: a real RegulonDB subset (tests/data/tfbs_small.csv)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from dnadesign.densegen.solver import Site

DATA = Path(__file__).resolve().parents[2] / "data" / "tfbs_small.csv"


def load_sites(n: int | None = None, start: int = 0) -> tuple[Site, ...]:
    """The first ``n`` fixture rows (from ``start``) as sites with ids ``t<row>``."""
    with open(DATA, newline="") as fh:
        rows = list(csv.DictReader(fh))
    rows = rows[start:] if n is None else rows[start : start + n]
    return tuple(Site(f"t{start + i}", r["tfbs"], r["tf"]) for i, r in enumerate(rows))


@pytest.fixture
def sites12() -> tuple[Site, ...]:
    return load_sites(12)
