"""The tests' RegulonDB draw (``regulondb.py``) is the benchmarks' draw
(``bench/solver_vs_dense_arrays.py``: ``draw_library``), so a figure a test asserts on a drawn
library is the figure the benchmarks report for that library."""

from __future__ import annotations

import importlib.util
import sys

from ...conftest import REPO
from .regulondb import TFBS, regulondb


def _bench_module(name: str):
    """A module of ``bench/`` loaded from its file (bench/ is not a package)."""
    bench = REPO / "bench"
    sys.path.insert(0, str(bench))  # its own imports of sibling modules
    try:
        spec = importlib.util.spec_from_file_location(f"bench_{name}", bench / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(bench))


def test_tests_draw_is_the_benchmarks_draw():
    peer = _bench_module("solver_vs_dense_arrays")
    for n, seed in ((100, 100), (1000, 1000), (250, 7)):
        ours = regulondb(n, seed)
        theirs = tuple(peer.draw_library(peer.load_rows(TFBS), n, seed))
        assert len(ours) == n
        assert ours == theirs, f"the tests' draw of {n} sites (seed {seed}) differs from bench's draw_library"
    assert regulondb(100, 100) != regulondb(100, 101)  # the seed matters


def test_deterministic_budget_bench_uses_the_same_draw():
    det = _bench_module("deterministic_budget")
    assert det.regulondb(100, 102) == regulondb(100, 102)
