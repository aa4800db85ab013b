"""Overlap hubs (solver/overlaps.py, hub_dp.py): the hub program computes the same tables as the
pairwise program (bound._PathDP) when both allow an item after its own site, forwards and
backwards; the overlap matrix built from hubs equals the pairwise ``max_overlap``."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from dnadesign.densegen.solver.bound import _PathDP
from dnadesign.densegen.solver.cores import max_overlap
from dnadesign.densegen.solver.hub_dp import HubDP
from dnadesign.densegen.solver.overlaps import overlap_hubs, overlap_matrix


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
    cost = np.array([[len(b) - max_overlap(a, b) for b in seqs] for a in seqs], dtype=np.int64)
    first = np.array([rnd.randint(1, 8) for _ in seqs], dtype=np.int64)
    w = np.array([rnd.uniform(-1.0, 2.0) for _ in seqs])
    pair = _PathDP(cost.T.copy() if backward else cost, first, horizon, lengths, backward)
    ends, starts, n_hubs = overlap_hubs(seqs)
    hub = HubDP(lengths, ends, starts, n_hubs, first, horizon, lengths, backward)
    pair.run(w)
    hub.run(w)
    reach = pair.best[:, :n] > -1e17
    assert (reach == (hub.best[:, :n] > -1e17)).all()
    assert np.allclose(pair.best[:, :n][reach], hub.best[:, :n][reach])
    # The traced path is a real path of the claimed value.
    c = horizon
    b = int(hub.best[c, :n].argmax()) if n else -1
    if b >= 0 and reach[c, b]:
        path = hub.trace(b, c)
        assert path and abs(sum(w[i] for i in path) - hub.best[c, b]) < 1e-6


@settings(max_examples=80, deadline=None)
@given(st.lists(st.text(alphabet="ACG", min_size=1, max_size=8), max_size=12))
def test_overlap_matrix_equals_pairwise_max_overlap(seqs):
    ov = overlap_matrix(seqs)
    assert ov.tolist() == [[max_overlap(a, b) for b in seqs] for a in seqs]
