"""What the plots draw, aggregated in one streaming pass over the run's committed rows.

Memory is bounded whatever the dataset holds: the rows are read in batches of the few columns the
plots need (`run_scan.iter_run_batches`), each batch's placements are exploded and added to
counts and histograms (sites per regulator and plan, site starts per regulator and strand,
per-position coverage per plan and role, sites per sequence, a fine GC histogram), and
per-sequence figures draw from a bounded, seeded sample: for each plan the `SAMPLE_ROWS` rows
with the smallest key, where the key mixes the record id (a content hash) with `runtime.seed`,
so the sample does not depend on batch sizes or the order of parts. The progress curve uses
the accepted times of such a sample (`TIME_SAMPLE` per plan, plus each plan's first and last
time), scaled to the plan's row count. A run smaller than the samples is drawn from every row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

import numpy as np
import polars as pl

from ..sinks.records import PLAN_COL
from .data import ROLE_FILLER, ROLE_PROMOTER, ROLE_SITE, InputsView, explode_placements

SAMPLE_ROWS = 1_000  # rows per plan kept for per-sequence figures (the gallery picks the densest of them)
TIME_SAMPLE = 20_000  # accepted times per plan kept for the progress curve
GC_BINS = 1_000  # fine GC histogram over [0, 1]; figures re-bin it
ROLES = (ROLE_SITE, ROLE_PROMOTER, ROLE_FILLER)
ACCEPTED = "densegen__accepted_at"
STREAM_COLUMNS = ["id", PLAN_COL, "length", "densegen__gc", ACCEPTED, "densegen__placements", "densegen__filler"]


def sample_keys(ids: pl.Series, seed: int) -> np.ndarray:
    """A uniform 64-bit key per record id, mixed with `seed` (splitmix64 of the id's first 60 bits).

    Ids are sha1 hex digests, so the key is stable across machines, versions and batchings.
    """
    x = ids.str.slice(0, 15).str.to_integer(base=16, strict=False).fill_null(0).to_numpy().astype(np.uint64)
    x = x ^ np.uint64((seed * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF)
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def covered_positions(placements: pl.DataFrame, L: int) -> np.ndarray:
    """Per position, how many sequences have it covered by at least one of `placements` (overlaps counted once).

    `placements` has `offset`, `end` and the sequence as `_row` (a row number) or `id`. The
    intervals of each sequence are sorted and cut into disjoint pieces (each starts where the
    sequence's earlier intervals end), so coverage is one difference array: O(placements), no
    sequences x L matrix.
    """
    if placements.height == 0:
        return np.zeros(L)
    if "_row" in placements.columns:
        row = placements["_row"].to_numpy().astype(np.int64)
    else:
        row = placements["id"].rank("dense").cast(pl.Int64).to_numpy()
    off = np.clip(placements["offset"].to_numpy().astype(np.int64), 0, L)
    end = np.clip(placements["end"].to_numpy().astype(np.int64), 0, L)
    order = np.lexsort((off, row))
    row, off, end = row[order], off[order], end[order]
    width = L + 1
    reach = np.maximum.accumulate(row * width + end) - row * width  # furthest end so far within the sequence
    prev = np.concatenate([[0], reach[:-1]])
    prev[np.concatenate([[True], row[1:] != row[:-1]])] = 0  # a sequence's first interval: nothing before it
    lo, hi = np.maximum(off, prev), np.maximum(end, prev)
    keep = hi > lo
    diff = np.bincount(lo[keep], minlength=width) - np.bincount(hi[keep], minlength=width)
    return np.cumsum(diff)[:L].astype(np.float64)


def _grow(a: np.ndarray, n: int) -> np.ndarray:
    return a if len(a) >= n else np.concatenate([a, np.zeros(n - len(a), dtype=a.dtype)])


def _add(store: dict, key, vec: np.ndarray) -> None:
    old = store.get(key)
    if old is None:
        store[key] = vec.astype(np.float64)
        return
    n = max(len(old), len(vec))
    store[key] = _grow(old, n) + _grow(vec.astype(np.float64), n)


@dataclass
class PlanStats:
    rows: int = 0
    gc_hist: np.ndarray = field(default_factory=lambda: np.zeros(GC_BINS, dtype=np.int64))
    gc_min: float = 1.0
    gc_max: float = 0.0
    sites_hist: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=np.int64))  # index = sites in a sequence
    sites: int = 0
    first_at: float = float("inf")
    last_at: float = float("-inf")
    time_keys: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.uint64))
    times: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def mean_sites(self) -> float:
        return self.sites / self.rows if self.rows else 0.0

    def gc_median(self) -> float:
        """Median GC from the fine histogram (to 1/GC_BINS)."""
        c = np.cumsum(self.gc_hist)
        i = int(np.searchsorted(c, c[-1] / 2.0))
        return (i + 0.5) / GC_BINS


@dataclass
class Aggregate:
    """Counts, histograms and samples of a run's committed rows (see the module docstring)."""

    rows: int = 0
    L: int = 0
    plans: dict[str, PlanStats] = field(default_factory=dict)
    site_counts: dict[tuple[str, str], int] = field(default_factory=dict)  # (regulator, plan) -> binding sites
    starts: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)  # (regulator, strand) -> starts per bp
    cover: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)  # (plan, role) -> sequences covered per bp
    sample: pl.DataFrame | None = None  # sampled rows: id, plan, length, gc, _sites (binding sites), _key
    plan_first: dict[str, float] = field(default_factory=dict)

    @property
    def plan_order(self) -> list[str]:
        """Plans in the order of their first accepted row."""
        return sorted(self.plans, key=lambda p: (self.plans[p].first_at, p))


def add_batch(agg: Aggregate, batch: pl.DataFrame, view: InputsView, seed: int) -> None:
    """Fold one batch of rows (STREAM_COLUMNS) into `agg`."""
    if batch.height == 0:
        return
    batch = batch.with_columns(pl.col("length").cast(pl.Int64))
    agg.rows += batch.height
    L = int(batch["length"].max())  # type: ignore[arg-type]
    agg.L = max(agg.L, L)
    batch = batch.with_row_index("_row").with_columns(pl.col("_row").cast(pl.Int64))
    placements = explode_placements(batch, view)
    sites = placements.filter(pl.col("role") == ROLE_SITE)
    n_sites_all = np.bincount(sites["_row"].to_numpy(), minlength=batch.height)  # binding sites per sequence
    batch = batch.with_columns(pl.Series("_sites", n_sites_all), pl.Series("_key", sample_keys(batch["id"], seed)))
    has_times = ACCEPTED in batch.columns
    for (plan,), part in batch.group_by(PLAN_COL):
        ps = agg.plans.setdefault(str(plan), PlanStats())
        ps.rows += part.height
        gc = part["densegen__gc"].fill_null(0.0).to_numpy()
        ps.gc_hist += np.bincount(np.clip((gc * GC_BINS).astype(np.int64), 0, GC_BINS - 1), minlength=GC_BINS)
        ps.gc_min, ps.gc_max = min(ps.gc_min, float(gc.min())), max(ps.gc_max, float(gc.max()))
        n_sites = part["_sites"].to_numpy().astype(np.int64)
        ps.sites += int(n_sites.sum())
        ps.sites_hist = _grow(ps.sites_hist, int(n_sites.max()) + 1)
        ps.sites_hist[: int(n_sites.max()) + 1] += np.bincount(n_sites)
        if has_times:
            t = part[ACCEPTED].dt.epoch("us").to_numpy().astype(np.float64) / 1e6
            keys = part["_key"].to_numpy()
            ps.first_at, ps.last_at = min(ps.first_at, float(t.min())), max(ps.last_at, float(t.max()))
            ks, ts = np.concatenate([ps.time_keys, keys]), np.concatenate([ps.times, t])
            if len(ks) > TIME_SAMPLE:
                keep = np.argpartition(ks, TIME_SAMPLE)[:TIME_SAMPLE]
                ks, ts = ks[keep], ts[keep]
            ps.time_keys, ps.times = ks, ts
    # the sample of rows for per-sequence figures: the SAMPLE_ROWS smallest keys of each plan (scalars only:
    # the few rows drawn are read again by id, so the sample holds no slice of a batch's buffers)
    cand = batch.select("id", PLAN_COL, "length", "densegen__gc", "_sites", "_key")
    cand = cand if agg.sample is None else pl.concat([agg.sample, cand], how="diagonal_relaxed")
    kept = (cand.with_columns(pl.col("_key").rank("ordinal").over(PLAN_COL).alias("_r"))
            .filter(pl.col("_r") <= SAMPLE_ROWS).drop("_r"))
    # a copy: strings filtered out of a batch would otherwise keep that batch's whole buffers alive
    agg.sample = cast(pl.DataFrame, pl.from_arrow(kept.to_arrow(compat_level=pl.CompatLevel.oldest())))
    # counts along the sequence
    for reg, plan, n in sites.group_by("regulator", "plan").len().iter_rows():
        agg.site_counts[(reg, plan)] = agg.site_counts.get((reg, plan), 0) + int(n)
    for (reg, strand), grp in sites.group_by("regulator", "strand"):
        off = np.clip(grp["offset"].to_numpy().astype(np.int64), 0, L)
        _add(agg.starts, (str(reg), str(strand)), np.bincount(off, minlength=L + 1)[: L + 1])
    for (plan, role), grp in placements.group_by("plan", "role"):
        _add(agg.cover, (str(plan), str(role)), covered_positions(grp, L))


class AggregateFold:
    """`add_batch` as a `run_scan.Fold` (STREAM_COLUMNS), so the aggregate can share a pass with other folds."""

    columns = STREAM_COLUMNS

    def __init__(self, view: InputsView, seed: int) -> None:
        self.agg = Aggregate()
        self._view, self._seed = view, seed

    def add(self, frame: pl.DataFrame) -> None:
        add_batch(self.agg, frame, self._view, self._seed)


def aggregate(batches, view: InputsView, seed: int) -> Aggregate:
    """One pass over `batches` (frames of STREAM_COLUMNS) into an Aggregate."""
    agg = Aggregate()
    for batch in batches:
        add_batch(agg, batch, view, seed)
    return agg


__all__ = ["GC_BINS", "SAMPLE_ROWS", "STREAM_COLUMNS", "TIME_SAMPLE", "Aggregate", "AggregateFold", "PlanStats", "add_batch",
           "aggregate", "covered_positions", "sample_keys"]
