"""PWM scanning: for each regulator's matrix, the best log-odds score and the hits on both strands.

Scores are log2-odds against a uniform background with a 0.5 pseudocount (as `dense` samples
sites), rounded to 1/100 bit so that p-values are exact for the scores actually compared: each
matrix's score distribution under the background is computed once by dynamic programming, a hit
is a window whose score has p <= `pvalue` (default 1e-4, like FIMO), and the best score's p-value
picks the strongest regulator of a sequence.

The scan is vectorised: a window score is a sum of table look-ups over chunks of up to 5 bases
(codes in base 5, so any window touching an N or the sequence end scores -inf), which costs
ceil(width / 5) gathers per strand instead of width.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from ..core.errors import InputError
from ..core.motifs import Motif, probabilities
from .encode import buckets, code_matrix, pack

SCALE = 100  # score resolution: 1/100 bit
CHUNK = 5
NEG = np.float32(-np.inf)


def column_stem(name: str) -> str:
    """A regulator name as a column stem: lowercase letters, digits and single underscores."""
    stem = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    if not stem:
        stem = "motif"
    if not stem[0].isalpha():
        stem = f"m_{stem}"
    return stem


def _stems(motifs: list[Motif]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for m in motifs:
        stem = column_stem(m.name)
        seen[stem] = seen.get(stem, 0) + 1
        out.append(stem if seen[stem] == 1 else f"{stem}_{seen[stem]}")
    return out


def score_distribution(matrix: np.ndarray, background: np.ndarray) -> tuple[int, np.ndarray]:
    """(lowest score, survival) of an integer score matrix: survival[s - lowest] = P(score >= s)."""
    low = int(matrix.min(axis=1).sum())
    high = int(matrix.max(axis=1).sum())
    dist = np.zeros(high - low + 1)
    dist[0] = 1.0
    for row in matrix:
        row_low = int(row.min())
        new = np.zeros_like(dist)
        for b in range(4):
            shift = int(row[b]) - row_low
            if shift:
                new[shift:] += background[b] * dist[:-shift]
            else:
                new += background[b] * dist
        dist = new
    survival = np.cumsum(dist[::-1])[::-1]
    return low, np.minimum(survival, 1.0)


@dataclass(frozen=True)
class ScanMotif:
    """One matrix ready to scan: integer scores (1/SCALE bit), hit threshold, survival function."""

    name: str
    stem: str
    scores: np.ndarray  # width x 4, int64, in 1/SCALE bits
    threshold: int  # hits score >= threshold (integer units); may exceed the maximum: no hit possible
    low: int
    survival: np.ndarray

    @property
    def width(self) -> int:
        return self.scores.shape[0]

    def pvalue(self, score_units: np.ndarray) -> np.ndarray:
        """P(score >= s) under the background for integer scores (clipped to the matrix's range)."""
        idx = np.clip(score_units - self.low, 0, len(self.survival) - 1)
        return self.survival[idx]


def prepare(motifs: list[Motif], pvalue: float, pseudocount: float = 0.5) -> list[ScanMotif]:
    """Turn parsed motifs into scan-ready matrices with a p-value threshold each."""
    if not 0 < pvalue < 1:
        raise InputError(f"p-value threshold {pvalue} must be between 0 and 1", hint="e.g. --pvalue 1e-4")
    bg = np.full(4, 0.25)
    out = []
    for m, stem in zip(motifs, _stems(motifs), strict=True):
        lo = np.log2(probabilities(m, pseudocount) / bg)
        units = np.rint(lo * SCALE).astype(np.int64)
        low, survival = score_distribution(units, bg)
        passing = np.nonzero(survival <= pvalue)[0]
        threshold = low + int(passing[0]) if len(passing) else low + len(survival)
        out.append(ScanMotif(m.name, stem, units, threshold, low, survival))
    return out


def _group_tables(matrices: list[np.ndarray], chunks: int) -> list[np.ndarray]:
    """Stacked look-up tables for matrices of at most `chunks * CHUNK` positions.

    Each matrix is padded to `chunks * CHUNK` positions with wildcard rows (score 0 for every code,
    N included), so one gather serves every matrix of the group. Table q maps the base-5 code of
    the q-th chunk of a window to the K matrices' partial scores (float32; -inf where a real
    position meets an N).
    """
    width = chunks * CHUNK
    ext = np.zeros((len(matrices), width, 5), np.float32)
    for k, m in enumerate(matrices):
        ext[k, : m.shape[0], :4] = m
        ext[k, : m.shape[0], 4] = NEG
    codes = np.arange(5 ** CHUNK)
    digits = (codes[:, None] // (5 ** np.arange(CHUNK - 1, -1, -1))[None, :]) % 5
    tables = []
    for q in range(chunks):
        t = np.zeros((5 ** CHUNK, len(matrices)), np.float32)
        for j in range(CHUNK):
            t += ext[:, q * CHUNK + j, :][:, digits[:, j]].T
        tables.append(t)
    return tables


@dataclass(frozen=True)
class _Group:
    """Matrices (both strands of several motifs) that need the same number of chunks."""

    motif: np.ndarray  # index into PwmScanner.motifs for each stacked matrix
    threshold: np.ndarray  # float32 hit threshold per stacked matrix
    tables: list[np.ndarray]


class PwmScanner:
    """Best score (bits), hit count and p-values of many matrices over batches of sequences."""

    def __init__(self, motifs: list[Motif], *, pvalue: float = 1e-4, pseudocount: float = 0.5):
        if not motifs:
            raise InputError("no motifs to scan", hint="the motif file holds no matrices")
        self.pvalue = pvalue
        self.motifs = prepare(motifs, pvalue, pseudocount)
        by_chunks: dict[int, list[tuple[int, np.ndarray]]] = {}
        for j, m in enumerate(self.motifs):
            # the reverse strand: positions reversed and A<->T, C<->G (columns reversed)
            for mat in (m.scores, m.scores[::-1, ::-1]):
                by_chunks.setdefault(-(-m.width // CHUNK), []).append((j, mat))
        self._groups = [
            _Group(np.array([j for j, _ in items]), np.array([self.motifs[j].threshold for j, _ in items], np.float32),
                   _group_tables([mat for _, mat in items], chunks))
            for chunks, items in sorted(by_chunks.items())
        ]
        self._pad = max(len(g.tables) for g in self._groups) * CHUNK
        self.outputs: list[tuple[str, pa.DataType]] = []
        for m in self.motifs:
            self.outputs += [(f"{m.stem}_best", pa.float64()), (f"{m.stem}_hits", pa.int32())]
        self.outputs += [("hits_total", pa.int32()), ("top_tf", pa.string()), ("top_pvalue", pa.float64())]
        self.done_output = "hits_total"

    def params(self) -> dict:
        return {"pvalue": self.pvalue, "motifs": len(self.motifs), "score_units": f"1/{SCALE} bit"}

    def score(self, values: pa.Array | pa.ChunkedArray) -> dict[str, pa.Array]:
        """Outputs for each value (null or too-short sequences give a null best score and 0 hits)."""
        packed = pack(values)
        n = len(packed)
        k = len(self.motifs)
        best = np.full((n, k), NEG, dtype=np.float32)
        hits = np.zeros((n, k), dtype=np.int32)
        # the stacked gather makes an (rows x positions x matrices) array: keep it near 4M floats
        cells = max(1024, (1 << 22) // max(len(g.motif) for g in self._groups))
        for rows in buckets(packed.lengths, cells):
            X, _ = code_matrix(packed, rows, pad=self._pad)
            positions = X.shape[1] - self._pad
            if positions <= 0:
                continue
            codes = _chunk_codes(X, positions + self._pad - CHUNK + 1)
            for g in self._groups:
                s = g.tables[0][codes[:, :positions]]
                for q in range(1, len(g.tables)):
                    s += g.tables[q][codes[:, q * CHUNK: q * CHUNK + positions]]
                # stacked matrices come in (forward, reverse) pairs of one motif
                top = s.max(axis=1)
                ids = g.motif[0::2]
                best[rows[:, None], ids[None, :]] = np.maximum(top[:, 0::2], top[:, 1::2])
                strong = np.nonzero((top >= g.threshold[None, :]).any(axis=1))[0]
                if len(strong):
                    counts = (s[strong] >= g.threshold[None, None, :]).sum(axis=1, dtype=np.int32)
                    hits[rows[strong][:, None], ids[None, :]] = counts[:, 0::2] + counts[:, 1::2]
        found = np.isfinite(best)
        best_units = np.where(found, np.rint(np.where(found, best, 0)), np.iinfo(np.int64).min).astype(np.int64)
        return self._columns(packed.valid, best_units, hits)

    def _columns(self, valid: np.ndarray, best_units: np.ndarray, hits: np.ndarray) -> dict[str, pa.Array]:
        n = len(valid)
        has = best_units != np.iinfo(np.int64).min
        out: dict[str, pa.Array] = {}
        pvals = np.ones(best_units.shape)
        for j, m in enumerate(self.motifs):
            col = has[:, j] & valid
            out[f"{m.stem}_best"] = pa.array(best_units[:, j] / SCALE, pa.float64(), mask=~col)
            out[f"{m.stem}_hits"] = pa.array(hits[:, j], pa.int32())
            pvals[col, j] = m.pvalue(best_units[col, j])
        out["hits_total"] = pa.array(hits.sum(axis=1, dtype=np.int64).astype(np.int32), pa.int32())
        anyhit = has.any(axis=1) & valid
        top = np.argmin(np.where(has, pvals, 2.0), axis=1) if n else np.zeros(0, dtype=np.int64)
        names = np.array([m.name for m in self.motifs], dtype=object)
        out["top_tf"] = pa.array(names[top] if n else [], pa.string(), mask=~anyhit)
        out["top_pvalue"] = pa.array(pvals[np.arange(n), top] if n else [], pa.float64(), mask=~anyhit)
        return out


def _chunk_codes(X: np.ndarray, positions: int) -> np.ndarray:
    """codes[:, p] = base-5 code of X[:, p:p + CHUNK] for p < positions (int32)."""
    codes = X[:, :positions].astype(np.int32)
    for c in range(1, CHUNK):
        codes = codes * 5 + X[:, c: c + positions]
    return codes
