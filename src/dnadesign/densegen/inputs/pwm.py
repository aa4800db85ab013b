"""Position weight matrices in DenseGen: log-odds scoring and in-process site sampling (no FIMO).

The matrices and their parsers (MEME, JASPAR, RegulonDB PSSM, JSON artifact) live in
`dnadesign.core.motifs`, shared with `infer`; they are re-exported here. Scores are log2-odds
against a background: score(s) = sum_i log2(p_i(s_i) / bg(s_i)). The normalised score
(score - min) / (max - min) lies in [0, 1]: 1 for the consensus, 0 for the worst sequence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...core.motifs import (  # noqa: F401  (re-exported: the parsers used to live here)
    BASES,
    PARSERS,
    Motif,
    background_array,
    format_artifact,
    format_jaspar,
    format_meme,
    format_regulondb,
    parse_artifact,
    parse_jaspar,
    parse_meme,
    parse_regulondb,
    probabilities,
    read_motifs,
)

_IDX = {b: i for i, b in enumerate(BASES)}


@dataclass(frozen=True)
class LogOdds:
    """A log2-odds scoring matrix (positions x A,C,G,T)."""

    matrix: np.ndarray

    @classmethod
    def from_motif(cls, m: Motif, pseudocount: float = 0.5, background: dict[str, float] | None = None) -> LogOdds:
        p = probabilities(m, pseudocount)
        with np.errstate(divide="ignore"):
            lo = np.log2(p / background_array(background))
        return cls(lo)

    @property
    def width(self) -> int:
        return self.matrix.shape[0]

    @property
    def max_score(self) -> float:
        return float(self.matrix.max(axis=1).sum())

    @property
    def min_score(self) -> float:
        return float(self.matrix.min(axis=1).sum())

    def consensus(self) -> str:
        return "".join(BASES[i] for i in self.matrix.argmax(axis=1))

    def score_encoded(self, X: np.ndarray) -> np.ndarray:
        """Scores of encoded sequences (n x width int array of base indices)."""
        return self.matrix[np.arange(self.width), X].sum(axis=1)

    def score(self, seq: str) -> float:
        if len(seq) != self.width:
            raise ValueError(f"sequence length {len(seq)} != motif width {self.width}")
        return float(self.score_encoded(encode([seq]))[0])

    def normalise(self, scores: np.ndarray | float) -> np.ndarray | float:
        span = self.max_score - self.min_score
        if span <= 0:
            return np.ones_like(scores) if isinstance(scores, np.ndarray) else 1.0
        return (scores - self.min_score) / span

    def best_hit(self, seq: str, both_strands: bool = True) -> float:
        """Best normalised score of any window of `seq` against the motif (either strand).

        When `seq` is shorter than the motif, it is slid along the motif instead and each
        alignment is normalised against that part of the matrix, so a short sequence that looks
        like half a site still scores high.
        """
        w, n = self.width, len(seq)
        seqs = [seq] + ([revcomp(seq)] if both_strands else [])
        best = 0.0
        for s in seqs:
            X = encode([s])[0]
            if n >= w:
                idx = np.arange(n - w + 1)[:, None] + np.arange(w)[None, :]
                best = max(best, float(self.normalise(self.score_encoded(X[idx]).max())))
                continue
            rows = np.arange(w - n + 1)[:, None] + np.arange(n)[None, :]  # one row per offset
            sc = self.matrix[rows, X[None, :]].sum(axis=1)
            lo = self.matrix.min(axis=1)[rows].sum(axis=1)
            hi = self.matrix.max(axis=1)[rows].sum(axis=1)
            span = np.where(hi > lo, hi - lo, 1.0)
            norm = np.where(hi > lo, (sc - lo) / span, 1.0)
            best = max(best, float(norm.max()))
        return best

    def trimmed(self, width: int, probs: np.ndarray, background: np.ndarray) -> tuple[LogOdds, int]:
        """The window of `width` positions with the most information content, and its start."""
        if width >= self.width:
            return self, 0
        info = (probs * np.log2(probs / background)).sum(axis=1)
        sums = np.convolve(info, np.ones(width), mode="valid")
        start = int(np.argmax(sums))
        return LogOdds(self.matrix[start:start + width]), start


_COMP = str.maketrans("ACGT", "TGCA")


def revcomp(seq: str) -> str:
    return seq.translate(_COMP)[::-1]


def encode(seqs: list[str]) -> np.ndarray:
    """Equal-length ACGT strings -> int array of base indices."""
    table = np.full(256, -1, dtype=np.int64)
    for b, i in _IDX.items():
        table[ord(b)] = i
    arr = np.frombuffer("".join(seqs).encode("ascii"), dtype=np.uint8).reshape(len(seqs), -1)
    out = table[arr]
    if (out < 0).any():
        raise ValueError("sequence contains letters other than ACGT")
    return out


def decode(X: np.ndarray) -> list[str]:
    lut = np.frombuffer(BASES.encode(), dtype=np.uint8)
    return [bytes(lut[row]).decode() for row in X]


@dataclass(frozen=True)
class SampledSite:
    sequence: str
    score: float
    score_norm: float


def sample_sites(m: Motif, *, n_sites: int, strategy: str, candidates: int, min_score_norm: float,
                 rng: np.random.Generator, pseudocount: float = 0.5, background: dict[str, float] | None = None,
                 trim_to: int | None = None) -> list[SampledSite]:
    """Draw sites from motif `m` and score them by log-odds (in-process).

    - `consensus`: the single best-scoring sequence.
    - `stochastic`: draw `candidates` sequences from the PWM probabilities, keep distinct ones
      with normalised score >= `min_score_norm`, and pick `n_sites` of them uniformly at random.
    - `top`: as stochastic, but keep the `n_sites` highest-scoring ones.
    Results are sorted by descending score, then sequence; fewer than `n_sites` come back when too
    few candidates pass the threshold.
    """
    probs = probabilities(m, pseudocount)
    bg = background_array(background)
    lo = LogOdds.from_motif(m, pseudocount, background)
    if trim_to is not None and trim_to < lo.width:
        lo, start = lo.trimmed(trim_to, probs, bg)
        probs = probs[start:start + trim_to]
    if strategy == "consensus":
        c = lo.consensus()
        return [SampledSite(c, lo.max_score, 1.0)]
    w = lo.width
    cum = np.cumsum(probs, axis=1)
    u = rng.random((candidates, w))
    X = (u[:, :, None] > cum[None, :, :]).sum(axis=2).clip(0, 3)
    X = np.unique(X, axis=0)
    scores = lo.score_encoded(X)
    norm = np.asarray(lo.normalise(scores))
    keep = norm >= min_score_norm - 1e-12
    X, scores, norm = X[keep], scores[keep], norm[keep]
    if len(X) > n_sites:
        if strategy == "top":
            order = np.lexsort((np.arange(len(X)), -scores))[:n_sites]
        else:
            order = np.sort(rng.choice(len(X), size=n_sites, replace=False))
        X, scores, norm = X[order], scores[order], norm[order]
    seqs = decode(X)
    out = [SampledSite(s, float(sc), float(nm)) for s, sc, nm in zip(seqs, scores, norm, strict=False)]
    out.sort(key=lambda x: (-x.score, x.sequence))
    return out
