"""The id index: which part, and which row group of it, holds an id; memory-mapped, O(log n) per id.

It is a local cache beside the data (`_index/`, never synced, rebuilt from the parts when missing
or stale). One index exists per *group* of parts: the base records (`base`) and each overlay
namespace (`ov.<ns>`). A group's index is a handful of sorted *runs* (an LSM tree):

```
_index/<group>-<stamp>-<rand>.run
  b"USRRUN1\\n" | header length (uint64 LE) | header JSON | zero pad to 8 | entries: uint64 LE, sorted
  header: {"group": "base", "n": entries, "parts": [[file, sha256, [rows of each row group]], ...]}
  entry:  the id's first 48 bits << 16 | ordinal of its row group within the run (< 65536)
```

A lookup answers "these row groups may hold the id"; readers then match the full id inside the
row group (48 bits make a wrong candidate rare: n / 2^48 per id). Writers add one small run per
new part and merge runs of similar size (factor 4), so a group has O(log n) runs and appending
N rows costs O(N log n). Runs name their parts with sha256, so a run is only trusted for parts the
current manifest lists with the same content; parts it does not cover are indexed on demand.
"""

from __future__ import annotations

import contextlib
import json
import math
import mmap
import os
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..core.atomic import atomic_write_with
from ..core.timeutil import compact_stamp
from .keys import arrow_ints, id_keys
from .manifest import FileEntry, MissingPart

MAGIC = b"USRRUN1\n"
RG_BITS = 16
MAX_RGS = 1 << RG_BITS
RG_MASK = np.uint64(MAX_RGS - 1)
KEY_MASK = np.uint64(0xFFFF_FFFF_FFFF_0000)
TIER_FACTOR = 4
DEAD_SHARE = 0.2  # a run whose retired parts hold at least this share of its entries is rewritten
RELEASE_AFTER = 16_384  # a lookup of this many keys touches up to that many pages of a run: unmap after it
BIG_RUN_BYTES = 64 << 20  # runs bigger than this are searched in slices of RELEASE_AFTER keys
RELEASE_MIN_KEYS = 1024  # smaller lookups leave the (few) pages they touched mapped
BASE_GROUP = "base"
ADOPT_ATTEMPTS = 8  # listings of a group's runs tried when a concurrent merge removes one (then: scan parts)


def overlay_group(namespace: str) -> str:
    return f"ov.{namespace}"


@dataclass
class RunPart:
    file: str
    sha256: str
    rg_rows: list[int]


@dataclass(eq=False)
class Run:
    """One sorted run file (header parsed; entries memory-mapped on first use)."""

    path: Path
    group: str
    parts: list[RunPart]
    n: int
    data_offset: int
    _entries: np.ndarray | None = field(default=None, repr=False)

    @property
    def rg_start(self) -> np.ndarray:
        """Ordinal of each part's first row group (length parts + 1)."""
        return np.concatenate([[0], np.cumsum([len(p.rg_rows) for p in self.parts])]).astype(np.int64)

    @property
    def entries(self) -> np.ndarray:
        """All entries, memory-mapped (point lookups touch a few pages)."""
        return self.mapped()

    def mapped(self) -> np.ndarray:
        """Map the entries now (FileNotFoundError if the run is gone). A mapping outlives the
        file's unlink, so a reader that mapped its runs is safe from a writer merging them."""
        if self._entries is None:
            if self.n == 0:
                self._entries = np.zeros(0, np.uint64)
            else:
                self._entries = np.memmap(self.path, dtype="<u8", mode="r", offset=self.data_offset, shape=(self.n,))
        return self._entries

    def release(self) -> None:
        """Drop the mapped pages from this process (they stay in the page cache): after a lookup
        that touched much of the run, so peak memory does not add up across runs and batches."""
        mm = getattr(self._entries, "_mmap", None)
        if mm is not None and hasattr(mmap, "MADV_DONTNEED"):
            with contextlib.suppress(OSError, ValueError):
                mm.madvise(mmap.MADV_DONTNEED)

    def chunks(self, size: int = 1 << 20) -> Iterator[np.ndarray]:
        """The entries in order, `size` at a time, read (not mapped): bulk passes with flat memory."""
        if self.n == 0:
            return
        with open(self.path, "rb") as fh:
            for start in range(0, self.n, size):
                fh.seek(self.data_offset + 8 * start)
                yield np.fromfile(fh, dtype="<u8", count=min(size, self.n - start))


# -- run files -------------------------------------------------------------------------------------
def _run_name(group: str) -> str:
    return f"{group}-{compact_stamp()}-{uuid.uuid4().hex[:8]}.run"


def write_run(index_dir: Path, group: str, parts: Sequence[RunPart], entries: np.ndarray) -> Path:
    """Write sorted `entries` for `parts` as a new run file (atomic); returns its path."""
    header = json.dumps({"group": group, "n": len(entries),
                         "parts": [[p.file, p.sha256, list(map(int, p.rg_rows))] for p in parts]}).encode()
    pad = (-(len(MAGIC) + 8 + len(header))) % 8
    path = index_dir / _run_name(group)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            fh.write(MAGIC + len(header).to_bytes(8, "little") + header + b"\0" * pad)
            fh.write(np.ascontiguousarray(entries, dtype="<u8").tobytes())

    index_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_with(path, write)
    return path


_HEADERS: dict[tuple[str, int, int], Run] = {}


def read_run(path: Path) -> Run | None:
    """Parse a run's header (cached by path, size and mtime); None if the file is gone or damaged.
    Each call returns its own Run, so mapped entries live only as long as the caller keeps it."""
    try:
        st = path.stat()
        key = (str(path), st.st_size, st.st_mtime_ns)
        if key in _HEADERS:
            c = _HEADERS[key]
            return Run(c.path, c.group, c.parts, c.n, c.data_offset)
        with open(path, "rb") as fh:
            head = fh.read(16)
            if head[:8] != MAGIC:
                return None
            hlen = int.from_bytes(head[8:16], "little")
            doc = json.loads(fh.read(hlen))
        offset = 16 + hlen + ((-(16 + hlen)) % 8)
        n = int(doc["n"])
        if st.st_size != offset + 8 * n:
            return None
        run = Run(path, str(doc["group"]), [RunPart(str(f), str(s), [int(r) for r in rg]) for f, s, rg in doc["parts"]], n, offset)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if len(_HEADERS) > 4096:
        _HEADERS.clear()
    _HEADERS[key] = run
    return Run(run.path, run.group, run.parts, run.n, run.data_offset)


def list_runs(index_dir: Path, group: str) -> list[Run]:
    if not index_dir.is_dir():
        return []
    runs = [read_run(p) for p in sorted(index_dir.glob(f"{group}-*.run"))]
    return [r for r in runs if r is not None and r.group == group]


# -- building entries ------------------------------------------------------------------------------
def pack(keys: np.ndarray, rg_ordinals: np.ndarray) -> np.ndarray:
    """Entries from 64-bit keys and row-group ordinals, sorted."""
    out = (keys.astype(np.uint64) & KEY_MASK) | rg_ordinals.astype(np.uint64)
    out.sort()
    return out


def part_entries(ids: pa.Array | pa.ChunkedArray, rg_rows: Sequence[int], first_rg: int = 0) -> np.ndarray:
    """Unsorted entries for one part's ids (in row order) with the given row-group sizes."""
    keys, _ = id_keys(ids)
    ords = np.repeat(np.arange(first_rg, first_rg + len(rg_rows), dtype=np.uint64), np.asarray(rg_rows, dtype=np.int64))
    return (keys & KEY_MASK) | ords


def scan_part(dataset_dir: Path, entry: FileEntry) -> tuple[RunPart, np.ndarray]:
    """Read a part's id column row group by row group: its RunPart and (unsorted) entries."""
    path = dataset_dir / entry.file
    if not path.exists():
        raise MissingPart(f"{path} is listed in the manifest but missing",
                          hint="run `usr validate`; restore the file (e.g. `usr pull`) or a snapshot")
    pf = pq.ParquetFile(path, pre_buffer=False)
    rg_rows = [pf.metadata.row_group(i).num_rows for i in range(pf.num_row_groups)]
    chunks = [part_entries(pf.read_row_group(i, columns=["id"]).column("id"), [rg_rows[i]], i) for i in range(pf.num_row_groups)]
    ents = np.concatenate(chunks) if chunks else np.zeros(0, np.uint64)
    return RunPart(entry.file, entry.sha256, rg_rows), ents


def _split_for_cap(items: list[tuple[RunPart, np.ndarray]]) -> list[list[tuple[RunPart, np.ndarray]]]:
    groups: list[list[tuple[RunPart, np.ndarray]]] = [[]]
    rgs = 0
    for part, ents in items:
        if groups[-1] and rgs + len(part.rg_rows) > MAX_RGS:
            groups.append([])
            rgs = 0
        groups[-1].append((part, ents))
        rgs += len(part.rg_rows)
    return [g for g in groups if g]


def runs_from_parts(items: list[tuple[RunPart, np.ndarray]]) -> list[tuple[list[RunPart], np.ndarray]]:
    """Combine per-part entries (ordinals local to each part) into run contents."""
    out = []
    for group in _split_for_cap(items):
        offset = 0
        chunks = []
        for part, ents in group:
            chunks.append((ents & KEY_MASK) | ((ents & RG_MASK) + np.uint64(offset)))
            offset += len(part.rg_rows)
        ents = np.concatenate(chunks) if chunks else np.zeros(0, np.uint64)
        ents.sort()
        out.append(([p for p, _ in group], ents))
    return out


# -- lookups ---------------------------------------------------------------------------------------
@dataclass
class Hits:
    """Candidate locations: query index, position of the part in the manifest list, row group."""

    q: np.ndarray
    pos: np.ndarray
    rg: np.ndarray

    def __len__(self) -> int:
        return len(self.q)

    @classmethod
    def empty(cls) -> Hits:
        z = np.zeros(0, np.int64)
        return cls(z, z.copy(), z.copy())


def _expand(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For ranges [lo, hi): (owner index, position) of every element."""
    counts = hi - lo
    total = int(counts.sum())
    if total == 0:
        z = np.zeros(0, np.int64)
        return z, z.copy()
    owner = np.repeat(np.arange(len(lo)), counts)
    starts = np.repeat(lo - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
    return owner, starts + np.arange(total)


def _match_arrays(entries: np.ndarray, sorted_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (index into sorted_keys, entry value) whose 48-bit keys are equal."""
    s, q = len(entries), len(sorted_keys)
    if s == 0 or q == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.uint64)
    hi_q = sorted_keys & KEY_MASK
    if q * math.log2(s + 1) <= s * math.log2(q + 1):  # search the queries in the run
        lo = np.searchsorted(entries, hi_q, "left")
        hi = np.searchsorted(entries, hi_q | RG_MASK, "right")
        qi, ei = _expand(lo, hi)
        return qi, np.asarray(entries[ei])
    ent = np.asarray(entries)  # a small run against many queries: search the run's entries in the queries
    hi_e = ent & KEY_MASK
    lo = np.searchsorted(hi_q, hi_e, "left")
    hi = np.searchsorted(hi_q, hi_e, "right")
    ei, qi = _expand(lo, hi)
    return qi, ent[ei]


def _match_bounded(run: Run, sorted_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`_match_arrays` against a run, in slices of keys with the run's pages unmapped after each slice
    when the run is big: random keys touch a page each, so peak memory stays near
    RELEASE_AFTER pages however large the index grows."""
    if len(sorted_keys) < RELEASE_MIN_KEYS:  # point lookups touch a few pages
        return _match_arrays(run.entries, sorted_keys)
    if len(sorted_keys) <= RELEASE_AFTER or run.n * 8 < BIG_RUN_BYTES:
        out = _match_arrays(run.entries, sorted_keys)
        run.release()
        return out
    qs, vs = [], []
    for i in range(0, len(sorted_keys), RELEASE_AFTER):
        qi, vals = _match_arrays(run.entries, sorted_keys[i:i + RELEASE_AFTER])
        qs.append(qi + i)
        vs.append(vals)
        run.release()
    return np.concatenate(qs), np.concatenate(vs)


class GroupIndex:
    """The index of one group of parts (`entries`, in manifest order), covering every part.

    Runs that cover parts the manifest no longer lists are used with those parts masked out;
    parts no run covers are scanned and indexed (saved as a new run when the directory is writable).
    """

    def __init__(self, dataset_dir: Path, index_dir: Path, group: str, entries: Sequence[FileEntry], *, save: bool = True):
        self.dataset_dir = dataset_dir
        self.index_dir = index_dir
        self.group = group
        self.entries = list(entries)
        self.runs: list[tuple[Run, np.ndarray]] = []  # (run, manifest position of each run part or -1)
        want = {(e.file, e.sha256): i for i, e in enumerate(self.entries)}
        covered = np.zeros(len(self.entries), bool)
        for _attempt in range(ADOPT_ATTEMPTS):
            # Readers take no lock: another process may merge the listed runs (and unlink them)
            # before they are mapped. Then the merged run is on disk: list again.
            try:
                self.runs, covered = self._adopt(list_runs(index_dir, group), want)
                break
            except FileNotFoundError:
                continue
        missing = [self.entries[i] for i in np.flatnonzero(~covered)]
        if missing:
            self._index_missing(missing, want, save and not env_disabled())

    def _adopt(self, runs: list[Run], want: dict[tuple[str, str], int]) -> tuple[list[tuple[Run, np.ndarray]], np.ndarray]:
        """The runs covering the most live parts, without overlaps, each mapped at once; and the
        parts they cover (the others are indexed on demand)."""
        covered = np.zeros(len(self.entries), bool)
        candidates = []
        for run in runs:
            live = np.array([want.get((p.file, p.sha256), -1) for p in run.parts], dtype=np.int64)
            n_live = int((live >= 0).sum())
            if n_live:
                candidates.append((n_live, -len(run.parts), run, live))
        adopted = []
        for _, _, run, live in sorted(candidates, key=lambda c: (-c[0], -c[1])):
            mine = live[live >= 0]
            if covered[mine].any():
                continue
            run.mapped()
            covered[mine] = True
            adopted.append((run, live))
        return adopted, covered

    def _index_missing(self, missing: list[FileEntry], want: dict[tuple[str, str], int], save: bool) -> None:
        items = [scan_part(self.dataset_dir, e) for e in missing]
        for parts, ents in runs_from_parts(items):
            run = None
            if save:
                try:
                    run = read_run(write_run(self.index_dir, self.group, parts, ents))
                except OSError:
                    run = None
            if run is None:
                run = Run(Path("<memory>"), self.group, parts, len(ents), 0, ents)
            live = np.array([want.get((p.file, p.sha256), -1) for p in run.parts], dtype=np.int64)
            self.runs.append((run, live))

    def lookup(self, keys: np.ndarray) -> Hits:
        """Every (query, part, row group) whose 48-bit key matches; parts not in the manifest excluded."""
        keys = np.asarray(keys, dtype=np.uint64)
        if len(keys) == 0 or not self.runs:
            return Hits.empty()
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        qs, poss, rgs = [], [], []
        for run, live in self.runs:
            qi, vals = _match_bounded(run, sorted_keys)
            if not len(qi):
                continue
            ords = (vals & RG_MASK).astype(np.int64)
            start = run.rg_start
            pidx = np.searchsorted(start, ords, "right") - 1
            pos = live[pidx]
            keep = pos >= 0
            qs.append(order[qi[keep]])
            poss.append(pos[keep])
            rgs.append((ords - start[pidx])[keep])
        if not qs:
            return Hits.empty()
        q, pos, rg = np.concatenate(qs), np.concatenate(poss), np.concatenate(rgs)
        o = np.lexsort((rg, pos, q))
        return Hits(q[o], pos[o], rg[o])

    def may_contain(self, keys: np.ndarray) -> np.ndarray:
        """Per key: whether some part may hold it (false positives about n / 2^48; no false negatives)."""
        hits = self.lookup(keys)
        out = np.zeros(len(keys), bool)
        out[hits.q] = True
        return out


def confirm(dataset_dir: Path, entries: Sequence[FileEntry], hits: Hits, ids: pa.Array) -> np.ndarray:
    """Which candidate hits are real: the row group holds the exact id (reads only those row groups)."""
    ok = np.zeros(len(hits), bool)
    if not len(hits):
        return ok
    files: dict[int, pq.ParquetFile] = {}
    for pos, rg in sorted(set(zip(hits.pos.tolist(), hits.rg.tolist(), strict=True))):
        sel = np.flatnonzero((hits.pos == pos) & (hits.rg == rg))
        pf = files.setdefault(pos, pq.ParquetFile(dataset_dir / entries[pos].file, pre_buffer=False))
        stored = pf.read_row_group(rg, columns=["id"]).column("id")
        wanted = ids.take(arrow_ints(hits.q[sel])).cast(pa.large_string())
        found = pc.is_in(wanted, value_set=stored.combine_chunks().cast(pa.large_string()))
        ok[sel] = np.asarray(found.to_numpy(zero_copy_only=False), bool)
    return ok


def contains_exact(dataset_dir: Path, index: GroupIndex, ids: pa.Array, keys: np.ndarray | None = None) -> np.ndarray:
    """Per id: whether the group holds exactly this id (candidates confirmed in their row groups)."""
    if keys is None:
        keys, _ = id_keys(ids)
    hits = index.lookup(keys)
    found = np.zeros(len(keys), bool)
    if len(hits):
        real = confirm(dataset_dir, index.entries, hits, ids)
        found[hits.q[real]] = True
    return found


# -- maintenance (writers, under the dataset lock) ---------------------------------------------------
def add_run(index_dir: Path, group: str, items: list[tuple[RunPart, np.ndarray]]) -> None:
    """Save runs for freshly written parts (entries with part-local row-group ordinals)."""
    for parts, ents in runs_from_parts(items):
        write_run(index_dir, group, parts, ents)


def _tier(n: int) -> int:
    return int(math.log(max(n, 1), TIER_FACTOR))


def maintain(index_dir: Path, group: str, entries: Sequence[FileEntry]) -> int:
    """Drop runs that cover no listed part, rewrite runs that are mostly retired parts (compaction
    and folds retire parts), and merge runs of the same size tier; returns runs merged."""
    want = {(e.file, e.sha256) for e in entries}
    runs = []
    for run in list_runs(index_dir, group):
        if not any((p.file, p.sha256) in want for p in run.parts):
            run.path.unlink(missing_ok=True)
            continue
        live = sum(sum(p.rg_rows) for p in run.parts if (p.file, p.sha256) in want)
        if run.n - live >= DEAD_SHARE * run.n:  # amortised: a run is rewritten once a fifth of it died
            new = merge_runs(index_dir, group, [run], want)
            if new is not None:
                run.path.unlink(missing_ok=True)
                run = new
        runs.append(run)
    merged = 0
    while True:
        tiers: dict[int, list[Run]] = {}
        for run in runs:
            tiers.setdefault(_tier(run.n), []).append(run)
        full = [t for t, rs in tiers.items() if len(rs) >= TIER_FACTOR]
        if not full:
            return merged
        batch = tiers[min(full)]
        new = merge_runs(index_dir, group, batch, want)
        if new is None:
            return merged
        for run in batch:
            run.path.unlink(missing_ok=True)
        runs = [r for r in runs if r not in batch] + [new]
        merged += len(batch)


def merge_runs(index_dir: Path, group: str, runs: Sequence[Run], want: set[tuple[str, str]]) -> Run | None:
    """One run holding the live parts of `runs` (None if it would exceed the row-group cap)."""
    parts: list[RunPart] = []
    chunks = []
    seen: set[tuple[str, str]] = set()
    offset = 0
    for run in runs:
        start = run.rg_start
        keep_part = np.array([(p.file, p.sha256) in want and (p.file, p.sha256) not in seen for p in run.parts], bool)
        new_start = np.zeros(len(run.parts), np.int64)
        for i, p in enumerate(run.parts):
            if keep_part[i]:
                seen.add((p.file, p.sha256))
                new_start[i] = offset
                parts.append(p)
                offset += len(p.rg_rows)
        if offset > MAX_RGS:
            return None
        vals = np.asarray(run.entries)
        ords = (vals & RG_MASK).astype(np.int64)
        pidx = np.searchsorted(start, ords, "right") - 1
        keep = keep_part[pidx]
        new_ords = (new_start[pidx] + ords - start[pidx])[keep].astype(np.uint64)
        chunks.append((vals[keep] & KEY_MASK) | new_ords)
    ents = np.concatenate(chunks) if chunks else np.zeros(0, np.uint64)
    ents.sort(kind="stable")
    return read_run(write_run(index_dir, group, parts, ents))


def remove_legacy(index_dir: Path) -> None:
    """Delete index files of the older one-file-per-part format (`*.ids`)."""
    if index_dir.is_dir():
        for p in index_dir.glob("*.ids"):
            p.unlink(missing_ok=True)


def clean(index_dir: Path, keep: set[tuple[str, str]]) -> int:
    """Remove runs that cover none of the (file, sha256) pairs in `keep`; returns files removed."""
    removed = 0
    if not index_dir.is_dir():
        return 0
    for p in index_dir.glob("*.run"):
        run = read_run(p)
        if run is None or not any((rp.file, rp.sha256) in keep for rp in run.parts):
            p.unlink(missing_ok=True)
            removed += 1
    for p in index_dir.glob(".*.tmp"):
        p.unlink(missing_ok=True)
    return removed


def index_bytes(index_dir: Path) -> int:
    return sum(p.stat().st_size for p in index_dir.glob("*.run")) if index_dir.is_dir() else 0


def rows_per_rg(pf: pq.ParquetFile) -> list[int]:
    return [pf.metadata.row_group(i).num_rows for i in range(pf.num_row_groups)]


def env_disabled() -> bool:
    """`USR_INDEX_READONLY=1` keeps readers from saving runs (e.g. on a shared read-only mount)."""
    return os.environ.get("USR_INDEX_READONLY", "") not in ("", "0")
