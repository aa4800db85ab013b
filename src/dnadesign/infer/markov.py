"""A k-mer Markov background model: trained on a FASTA the user gives, scored per sequence.

Order k-1: P(x_i | the k-1 bases before it), estimated from k-mer counts on both strands of the
training FASTA with a pseudocount per cell. The first k-1 bases of a sequence use the lower orders
(P(x_0), P(x_1 | x_0), ...), so short sequences are scored too. A position whose context window
holds a letter other than A/C/G/T (N, IUPAC codes) is skipped; `ll_per_base` divides by the
positions actually scored. Log-likelihoods are natural logarithms.

Training streams the FASTA in chunks (memory stays flat for a multi-gigabase genome).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from ..core.errors import InputError, NotFoundError
from .encode import BASE_CODES, CODE_N, buckets, code_matrix, pack

MAX_K = 12
CHUNK_BASES = 8 << 20


def _fasta_chunks(path: Path, k: int) -> Iterator[tuple[np.ndarray, int]]:
    """(base codes, overlap) per piece of each FASTA record.

    A long record comes in pieces of about CHUNK_BASES that repeat the previous piece's last k-1
    bases (`overlap`), so windows across a boundary are seen once: count only windows that end
    past the overlap.
    """
    if not path.is_file():
        raise NotFoundError(f"training FASTA {path} does not exist", hint="pass the genome or background FASTA with --train-fasta")
    records = 0
    seen_bases = 0
    buf = bytearray()
    carry = b""
    with open(path, "rb") as fh:
        for n, line in enumerate(fh, start=1):
            line = line.strip()
            if not line or line.startswith(b";"):
                continue
            if line.startswith(b">"):
                if buf:
                    yield BASE_CODES[np.frombuffer(carry + bytes(buf), dtype=np.uint8)], len(carry)
                buf.clear()
                carry = b""
                records += 1
                continue
            if records == 0:
                raise InputError(f"{path}, line {n}: sequence data before the first '>' header", hint="is this a FASTA file?")
            buf += line
            seen_bases += len(line)
            if len(buf) >= CHUNK_BASES:
                data = carry + bytes(buf)
                yield BASE_CODES[np.frombuffer(data, dtype=np.uint8)], len(carry)
                carry = data[len(data) - (k - 1):] if k > 1 else b""
                buf.clear()
    if buf:
        yield BASE_CODES[np.frombuffer(carry + bytes(buf), dtype=np.uint8)], len(carry)
    if records == 0 or seen_bases == 0:
        raise InputError(f"{path}: no FASTA records with sequence found", hint="records start with a '>' header line")


def revcomp_codes(m: int) -> np.ndarray:
    """For every base-4 code of an m-mer, the code of its reverse complement."""
    codes = np.arange(4 ** m)
    out = np.zeros_like(codes)
    for j in range(m):
        digit = (codes // 4 ** j) % 4  # position m-1-j of the m-mer
        out += (3 - digit) * 4 ** (m - 1 - j)
    return out


def _window_codes(X: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """(codes, ok) of every length-m window of a 1-D code array: base-4 code, and no N inside."""
    n = len(X) - m + 1
    if n <= 0:
        return np.zeros(0, np.int64), np.zeros(0, bool)
    bad = np.concatenate([[0], np.cumsum(X == CODE_N)])
    ok = (bad[m:] - bad[:-m]) == 0
    v = np.where(X == CODE_N, 0, X).astype(np.int64)
    codes = np.zeros(n, np.int64)
    for j in range(m):
        codes = codes * 4 + v[j: j + n]
    return codes, ok


@dataclass(frozen=True)
class MarkovModel:
    """log P(last base | previous bases) for window lengths 1..k, indexed by the window's base-4 code."""

    k: int
    log_probs: tuple[np.ndarray, ...]  # log_probs[m - 1] has 4**m entries
    bases: int  # training bases counted (one strand)
    source: str
    sha256: str

    @classmethod
    def train(cls, path: Path, k: int, pseudocount: float = 1.0) -> MarkovModel:
        """Count 1..k-mers on both strands of a FASTA and turn them into conditional log-probabilities."""
        if not 1 <= k <= MAX_K:
            raise InputError(f"k-mer size {k} is out of range", hint=f"use --k between 1 and {MAX_K} (5 or 6 suits a bacterial genome)")
        counts = [np.zeros(4 ** m, np.float64) for m in range(1, k + 1)]
        digest = hashlib.sha256()
        bases = 0
        for chunk, overlap in _fasta_chunks(path, k):
            bases += int((chunk[overlap:] != CODE_N).sum())
            for m in range(1, k + 1):
                codes, ok = _window_codes(chunk, m)
                first = max(0, overlap - m + 1)  # windows ending inside the overlap were counted already
                counts[m - 1] += np.bincount(codes[first:][ok[first:]], minlength=4 ** m)
        for m in range(1, k + 1):  # the reverse strand: each window's reverse complement
            counts[m - 1] = counts[m - 1] + counts[m - 1][revcomp_codes(m)]
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        if bases == 0:
            raise InputError(f"{path}: the training FASTA has no A/C/G/T bases", hint="check the file")
        log_probs = []
        for m in range(1, k + 1):
            c = counts[m - 1].reshape(-1, 4) + pseudocount  # rows: the m-1 base context
            log_probs.append(np.log(c / c.sum(axis=1, keepdims=True)).reshape(-1))
        return cls(k, tuple(log_probs), bases, path.name, digest.hexdigest())

    def params(self) -> dict:
        return {"k": self.k, "train_fasta": self.source, "train_sha256": self.sha256, "train_bases": self.bases}

    def loglik(self, values: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(log-likelihood, positions scored, valid) per value."""
        packed = pack(values)
        n = len(packed)
        ll = np.zeros(n)
        scored = np.zeros(n, np.int64)
        for rows in buckets(packed.lengths):
            X, _ = code_matrix(packed, rows)
            if X.shape[1] == 0:
                continue
            bad = np.concatenate([np.zeros((len(rows), 1), np.int32), np.cumsum(X == CODE_N, axis=1, dtype=np.int32)], axis=1)
            v = np.where(X == CODE_N, 0, X).astype(np.int64)
            codes = v.copy()  # codes[:, p] = window of length m ending at p (valid for p >= m - 1)
            width = X.shape[1]
            for m in range(1, self.k + 1):
                if m > 1:
                    codes[:, m - 1:] = codes[:, m - 2: width - 1] * 4 + v[:, m - 1:]
                if m - 1 >= width:
                    break
                lp = self.log_probs[m - 1]
                if m < self.k:  # position m - 1 only: the start of the sequence, shorter context
                    p = m - 1
                    ok = (bad[:, p + 1] - bad[:, p + 1 - m]) == 0
                    ll[rows] += np.where(ok, lp[codes[:, p]], 0.0)
                    scored[rows] += ok
                else:
                    ok = (bad[:, m:] - bad[:, : width - m + 1]) == 0
                    ll[rows] += np.where(ok, lp[codes[:, m - 1:]], 0.0).sum(axis=1)
                    scored[rows] += ok.sum(axis=1)
        return ll, scored, packed.valid


class MarkovScorer:
    """`markov/loglik`: per-sequence log-likelihood under a trained k-mer model."""

    def __init__(self, model: MarkovModel):
        self.model = model
        self.outputs: list[tuple[str, pa.DataType]] = [("ll", pa.float64()), ("ll_per_base", pa.float64())]
        self.done_output = "ll"

    def params(self) -> dict:
        return self.model.params()

    def score(self, values: pa.Array | pa.ChunkedArray) -> dict[str, pa.Array]:
        ll, scored, valid = self.model.loglik(values)
        per_base = np.divide(ll, scored, out=np.zeros_like(ll), where=scored > 0)
        return {"ll": pa.array(ll, pa.float64(), mask=~valid),
                "ll_per_base": pa.array(per_base, pa.float64(), mask=~valid | (scored == 0))}
