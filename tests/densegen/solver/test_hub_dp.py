"""Overlap hubs (solver/overlaps.py, hub_dp.py): the hub program computes the tables of the
path program's definition with items sharing sites (no item right after one of its own site,
through a hub or not), forwards and backwards, and its trace is such a path of that value; the
overlap matrix built from hubs equals the pairwise ``max_overlap``."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from dnadesign.densegen.solver.cores import max_overlap
from dnadesign.densegen.solver.hub_dp import HubDP
from dnadesign.densegen.solver.overlaps import overlap_hubs, overlap_matrix


def _reference(cost: np.ndarray, site: np.ndarray, first: np.ndarray, horizon: int, w: np.ndarray) -> np.ndarray:
    """The table by the definition: ``best[c, b]`` is the best weight of a path ending in ``b`` at
    or before ``c``, the first item costing ``first[b]``, the arc ``a -> b`` ``cost[a, b]``, and
    no item right after one of its own site."""
    n = len(first)
    best = np.full((horizon + 1, n), -1e18)
    for c in range(1, horizon + 1):
        for b in range(n):
            via = 0.0 if first[b] <= c else -1e18
            for a in range(n):
                if site[a] != site[b] and c - cost[a, b] >= 0:
                    via = max(via, best[c - cost[a, b], a])
            best[c, b] = max(best[c - 1, b], via + w[b] if via > -1e17 else -1e18)
    return best


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.text(alphabet="ACG", min_size=2, max_size=7), min_size=1, max_size=9),
    st.integers(0, 30),
    st.booleans(),
    st.randoms(use_true_random=False),
)
def test_hub_tables_equal_pairwise_tables(seqs, horizon, backward, rnd):
    n = len(seqs)
    lengths = np.array([len(s) for s in seqs], dtype=np.int64)
    site = np.array([rnd.randint(0, max(0, n - 2)) for _ in seqs], dtype=np.int64)  # some items share a site
    cost = np.array([[len(b) - max_overlap(a, b) for b in seqs] for a in seqs], dtype=np.int64)
    first = np.array([rnd.randint(1, 8) for _ in seqs], dtype=np.int64)
    w = np.array([rnd.uniform(-1.0, 2.0) for _ in seqs])
    ref = _reference(cost.T if backward else cost, site, first, horizon, w)
    ends, starts, n_hubs = overlap_hubs(seqs)
    hub = HubDP(lengths, ends, starts, n_hubs, first, horizon, lengths, backward, site)
    hub.run(w)
    reach = ref > -1e17
    assert (reach == (hub.best[:, :n] > -1e17)).all()
    assert np.allclose(ref[reach], hub.best[:, :n][reach])
    # The traced path is a real path of the claimed value.
    c = horizon
    b = int(hub.best[c, :n].argmax()) if n else -1
    if b >= 0 and reach[c, b]:
        path = hub.trace(b, c)
        assert path and abs(sum(w[i] for i in path) - hub.best[c, b]) < 1e-6
        assert all(site[x] != site[y] for x, y in itertools.pairwise(path))


@settings(max_examples=80, deadline=None)
@given(st.lists(st.text(alphabet="ACG", min_size=1, max_size=8), max_size=12))
def test_overlap_matrix_equals_pairwise_max_overlap(seqs):
    ov = overlap_matrix(seqs)
    assert ov.tolist() == [[max_overlap(a, b) for b in seqs] for a in seqs]
