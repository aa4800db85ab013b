"""Suffix/prefix overlaps and containment between many oriented sites, by hashing.

The pairwise loops of ``cores.max_overlap`` cost about 3 us per pair: a second at 600 oriented
sites, half a minute at 2000. Here every prefix of length k goes into a dictionary once, and each
suffix looks its partners up, so the work grows with the number of sites times their length plus
the number of overlapping pairs returned (``min_overlap`` keeps that number small).
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np


def _prefix_index(seqs: list[str], max_k: int) -> dict[int, dict[str, list[int]]]:
    index: dict[int, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for b, seq in enumerate(seqs):
        for k in range(1, min(len(seq), max_k + 1)):  # proper prefixes only
            index[k][seq[:k]].append(b)
    return index


def overlap_arcs(seqs: list[str], owner: list[int], min_overlap: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs ``(a, b)`` of items of different owners whose largest proper overlap (a's suffix =
    b's prefix, shorter than both) is at least ``min_overlap``: arrays (a, b, overlap)."""
    max_k = max((len(s) for s in seqs), default=0)
    index = _prefix_index(seqs, max_k)
    src: list[int] = []
    dst: list[int] = []
    ovs: list[int] = []
    for a, seq in enumerate(seqs):
        done: set[int] = set()
        for k in range(len(seq) - 1, max(min_overlap, 1) - 1, -1):  # longest first: first hit is the largest
            for b in index[k].get(seq[-k:], ()):
                if b not in done and owner[b] != owner[a] and k < len(seqs[b]):
                    done.add(b)
                    src.append(a)
                    dst.append(b)
                    ovs.append(k)
    return np.array(src, dtype=np.int64), np.array(dst, dtype=np.int64), np.array(ovs, dtype=np.int64)


def largest_overlaps(seqs: list[str], owner: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Per item, its largest proper overlap into any item of another owner (its suffix on their
    prefix: ``out``) and from any (their suffix on its prefix: ``into``)."""
    max_k = max((len(s) for s in seqs), default=0)
    prefixes = _prefix_index(seqs, max_k)
    suffixes: dict[int, dict[str, set[int]]] = defaultdict(lambda: defaultdict(set))
    for a, seq in enumerate(seqs):
        for k in range(1, len(seq)):
            suffixes[k][seq[-k:]].add(owner[a])
    out = np.zeros(len(seqs), dtype=np.int64)
    into = np.zeros(len(seqs), dtype=np.int64)
    for a, seq in enumerate(seqs):
        for k in range(len(seq) - 1, 0, -1):
            if any(owner[b] != owner[a] and k < len(seqs[b]) for b in prefixes[k].get(seq[-k:], ())):
                out[a] = k
                break
        for k in range(len(seq) - 1, 0, -1):
            holders = suffixes[k].get(seq[:k], ())
            if holders and (len(holders) > 1 or owner[a] not in holders):
                into[a] = k
                break
    return out, into


def containers(inner: list[str], outer: list[str]) -> list[list[int]]:
    """For each ``inner`` sequence, the indices of the ``outer`` sequences that contain it."""
    sep = "|"
    text = sep.join(outer)
    starts = np.cumsum([0] + [len(s) + 1 for s in outer])
    found: list[list[int]] = []
    for seq in inner:
        hits: set[int] = set()
        pos = text.find(seq)
        while pos != -1:
            hits.add(int(np.searchsorted(starts, pos, side="right")) - 1)
            pos = text.find(seq, pos + 1)
        found.append(sorted(hits))
    return found


def overlap_hubs(seqs: list[str], min_overlap: int = 1) -> tuple[np.ndarray, np.ndarray, int]:
    """Every overlap of at least ``min_overlap`` bases, as hubs instead of pairs.

    A hub is a string ``x`` that is a proper suffix of some item and a proper prefix of some
    item: every item ending in ``x`` can be followed by every item starting with ``x``,
    overlapping by ``len(x)`` (the largest overlap of a pair is its longest shared hub). Pairs
    grow with the square of the library (a third of all pairs overlap by 3 or more bases at 2000
    sites); hubs and their edges grow with the library times the site length. Returns
    ``(ends, starts, n_hubs)``: int arrays of rows ``(item, hub, len(x))`` for the items ending
    in each hub and for those starting with it.
    """
    suffixes: dict[str, list[int]] = defaultdict(list)
    prefixes: dict[str, list[int]] = defaultdict(list)
    for i, seq in enumerate(seqs):
        for k in range(max(min_overlap, 1), len(seq)):
            suffixes[seq[-k:]].append(i)
            prefixes[seq[:k]].append(i)
    hubs = [x for x in suffixes if x in prefixes]
    ends = [(i, h, len(x)) for h, x in enumerate(hubs) for i in suffixes[x]]
    starts = [(i, h, len(x)) for h, x in enumerate(hubs) for i in prefixes[x]]
    shape = (-1, 3)
    return np.array(ends, dtype=np.int64).reshape(shape), np.array(starts, dtype=np.int64).reshape(shape), len(hubs)


def overlap_matrix(seqs: list[str]) -> np.ndarray:
    """``ov[a, b]``: the largest proper overlap of ``a``'s suffix on ``b``'s prefix (as
    ``cores.max_overlap``, 0 if none), filled hub by hub, shortest first, so the longest wins:
    numpy work per hub instead of a Python loop per pair."""
    ends, starts, n_hubs = overlap_hubs(seqs)
    ov = np.zeros((len(seqs), len(seqs)), dtype=np.int64)
    if not n_hubs:
        return ov
    end_by_hub = np.split(ends[np.argsort(ends[:, 1], kind="stable")], np.cumsum(np.bincount(ends[:, 1], minlength=n_hubs))[:-1])
    start_by_hub = np.split(starts[np.argsort(starts[:, 1], kind="stable")], np.cumsum(np.bincount(starts[:, 1], minlength=n_hubs))[:-1])
    for h in np.argsort([int(rows[0, 2]) for rows in end_by_hub], kind="stable"):
        ov[np.ix_(end_by_hub[h][:, 0], start_by_hub[h][:, 0])] = end_by_hub[h][0, 2]
    return ov
