"""Background pool: random filler sites with GC bounds, forbidden k-mers removed, and
(optionally) anything that scores like a PWM site removed (in-process log-odds, no FIMO)."""

from __future__ import annotations

import numpy as np

from ...core.errors import InputError
from .pwm import LogOdds, decode, revcomp


def _gc_ok(seq: str, lo: float | None, hi: float | None) -> bool:
    gc = (seq.count("G") + seq.count("C")) / len(seq)
    return (lo is None or gc >= lo - 1e-9) and (hi is None or gc <= hi + 1e-9)


def sample_background(*, n_sites: int, length: tuple[int, int], gc_min: float | None, gc_max: float | None,
                      forbid: tuple[str, ...], exclude: list[tuple[str, LogOdds]], max_score_norm: float,
                      rng: np.random.Generator, max_candidates: int, name: str = "background") -> tuple[list[tuple[str, dict]], int]:
    """Up to `n_sites` distinct random sequences passing the filters; returns (sites, candidates drawn).

    Each site comes with its info (`gc`, and the best PWM hit it was checked against). Forbidden
    k-mers are checked on both strands. A sequence and its reverse complement count as the same.
    """
    forbidden = set(forbid) | {revcomp(k) for k in forbid}
    lo_len, hi_len = length
    out: list[tuple[str, dict]] = []
    seen: set[str] = set()
    drawn = 0
    batch = max(256, n_sites * 4)
    while len(out) < n_sites and drawn < max_candidates:
        k = min(batch, max_candidates - drawn)
        lens = rng.integers(lo_len, hi_len + 1, size=k)
        X = rng.integers(0, 4, size=(k, hi_len))
        drawn += k
        for seq_full, n in zip(decode(X), lens, strict=False):
            seq = seq_full[:n]
            canon = min(seq, revcomp(seq))
            if canon in seen or not _gc_ok(seq, gc_min, gc_max):
                continue
            if any(f in seq for f in forbidden):
                continue
            best = 0.0
            bad = False
            for _, lo in exclude:
                s = lo.best_hit(seq)
                best = max(best, s)
                if s > max_score_norm:
                    bad = True
                    break
            if bad:
                continue
            seen.add(canon)
            gc = (seq.count("G") + seq.count("C")) / len(seq)
            info = {"gc": round(gc, 4)}
            if exclude:
                info["max_pwm_score_norm"] = round(best, 4)
            out.append((seq, info))
            if len(out) >= n_sites:
                break
    if not out:
        raise InputError(f"input {name!r}: no background sequence passed the GC, k-mer and PWM filters "
                         f"after {drawn} candidates", hint="widen gc bounds, shorten forbid_kmers, or raise max_candidates")
    return out, drawn
