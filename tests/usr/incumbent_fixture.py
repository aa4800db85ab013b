"""Build datasets in the incumbent usr's on-disk layout (see ../shared/reference/usr.md, section 2).

Generated from the description, not copied: a root `registry.yaml`; per dataset one
`records.parquet` (usr metadata keys, zstd, a materialized column), `meta.md` with the `name:`
header and a changelog, an `.events.log` in the incumbent's line format (`timestamp_utc`,
`dataset{name,root}`, actor without correlation id, ...), DenseGen overlay parts under
`_derived/densegen/` (newest part wins per key, nested list<struct> columns), a compact
sequence-keyed overlay, tombstones and `usr_state`, full-copy snapshots, and auxiliary files.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DETAIL = pa.struct([("part_index", pa.int32()), ("regulator", pa.string()), ("sequence", pa.string()),
                    ("orientation", pa.string()), ("offset", pa.int32()), ("length", pa.int32())])


def incumbent_id(bio: str, seq: str) -> str:
    """The incumbent's id: sha1 of bio|trimmed sequence, case kept as written."""
    return hashlib.sha1(f"{bio}|{seq.strip()}".encode()).hexdigest()


def _stamp(t: datetime) -> str:
    return t.strftime("%Y%m%dT%H%M%S%f")


@dataclass
class Incumbent:
    """What was written, so tests can compare the migrated dataset against it."""

    path: Path
    old_id: str
    sequences: list[str]
    ids: list[str]
    plan: dict[str, str] = field(default_factory=dict)  # old id -> densegen__plan shown by the incumbent
    score: dict[str, float] = field(default_factory=dict)  # old id -> infer__score
    deleted: list[str] = field(default_factory=list)
    events: int = 0


def _records(seqs: list[str], start: int = 0, extra: dict | None = None) -> pa.Table:
    n = len(seqs)
    cols = {
        "id": pa.array([incumbent_id("dna", s) for s in seqs], pa.string()),
        "bio_type": pa.array(["dna"] * n, pa.string()),
        "sequence": pa.array(seqs, pa.string()),
        "alphabet": pa.array(["dna_4"] * n, pa.string()),
        "length": pa.array([len(s) for s in seqs], pa.int32()),
        "source": pa.array([f"densegen:regulondb:plan_{(start + i) % 2}" for i in range(n)], pa.string()),
        "created_at": pa.array([T0 + timedelta(minutes=start + i) for i in range(n)], pa.timestamp("us", tz="UTC")),
    }
    cols.update(extra or {})
    meta = {b"usr:schema_version": b"1", b"usr:id_hash": b"sha1_utf8_pipe",
            b"usr:dataset_created_at": T0.isoformat().encode(), b"usr:registry_hash": b"e407" * 16}
    return pa.table(cols).replace_schema_metadata(meta)


def _overlay(path: Path, table: pa.Table, ns: str, key: str, created: datetime) -> None:
    meta = {b"usr:overlay_namespace": ns.encode(), b"usr:overlay_key": key.encode(),
            b"usr:overlay_created_at": created.isoformat().encode(), b"usr:registry_hash": b"e407" * 16}
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table.replace_schema_metadata(meta), path, compression="zstd")


def _event(action: str, name: str, root: Path, t: datetime, rows: int, **kw) -> str:
    line = {"event_version": 1, "timestamp_utc": t.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "action": action,
            "dataset": {"name": name, "root": str(root)}, "args": kw.get("args", {}), "metrics": kw.get("metrics", {}),
            "artifacts": kw.get("artifacts", {}), "maintenance": {}, "fingerprint": {"rows": rows, "cols": 7, "size_bytes": 4305},
            "registry_hash": "e407" * 16, "actor": kw.get("actor", {"tool": "usr", "run_id": "usr-pid-14249", "host": "scc-login1", "pid": 14249}),
            "version": "0.1.0"}
    return json.dumps(line, separators=(",", ":"))


def sequences(n: int, length: int = 24, seed: int = 7) -> list[str]:
    """`n` distinct DNA sequences, deterministic."""
    import random

    rng = random.Random(seed)
    out: list[str] = []
    seen = set()
    while len(out) < n:
        s = "".join(rng.choice("ACGT") for _ in range(length))
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out


def write_registry(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "registry.yaml").write_text(
        "namespaces:\n"
        "  densegen:\n    owner: densegen\n    description: DenseGen placements\n    columns:\n"
        "    - {name: densegen__plan, type: string}\n    - {name: densegen__compression_ratio, type: float64}\n"
        "    - {name: densegen__used_tfbs, type: list<string>}\n"
        "    - {name: densegen__used_tfbs_detail, type: 'list<struct<part_index:int32,regulator:string,sequence:string,orientation:string,offset:int32,length:int32>>'}\n"
        "  infer:\n    owner: infer\n    description: scores\n    columns:\n    - {name: infer__score, type: float64}\n"
        "  quickstart:\n    owner: demo\n    description: demo\n    columns:\n    - {name: quickstart__X_value, type: float64}\n"
        "  usr_state:\n    owner: usr\n    description: reserved\n    columns:\n    - {name: usr_state__masked, type: bool}\n"
    )


def build(root: Path, old_id: str = "densegen_demo", n: int = 12, *, lower_case: int = 2, snapshots: bool = True,
          events: bool = True, torn_event: bool = True, aux: bool = True) -> Incumbent:
    """One incumbent dataset under `root` with everything the reference describes."""
    write_registry(root)
    d = root / old_id
    d.mkdir(parents=True)
    seqs = sequences(n)
    for i in range(lower_case):  # the incumbent keeps case; this store upper-cases DNA
        seqs[i] = seqs[i].lower()
    ids = [incumbent_id("dna", s) for s in seqs]
    inc = Incumbent(d, old_id, seqs, ids)
    # materialized column from an old `materialize` (quickstart namespace), plus a null-only one
    extra = {"quickstart__X_value": pa.array([float(i) / 2 for i in range(n)], pa.float64())}
    pq.write_table(_records(seqs, extra=extra), d / "records.parquet", compression="zstd")
    # snapshots: the first half, then the first 3/4 (full copies, base grew)
    if snapshots:
        (d / "_snapshots").mkdir()
        for k, frac in enumerate((2, 4 / 3)):
            m = int(n / frac)
            pq.write_table(_records(seqs[:m]), d / "_snapshots" / f"records-{_stamp(T0 + timedelta(hours=k))}.parquet")
    # DenseGen overlay parts: part 1 covers all, part 2 (newer) re-plans the first three
    def detail(i: int) -> list[dict]:
        return [{"part_index": 0, "regulator": "lexA", "sequence": "CTGTATATATATACAG", "orientation": "fwd", "offset": i % 5, "length": 16}]

    part1 = pa.table({"id": pa.array(ids, pa.string()),
                      "densegen__plan": pa.array([f"plan_{i % 2}" for i in range(n)], pa.string()),
                      "densegen__compression_ratio": pa.array([1.0 + i / 10 for i in range(n)], pa.float64()),
                      "densegen__used_tfbs": pa.array([["lexA:CTGTATATATATACAG"]] * n, pa.list_(pa.string())),
                      "densegen__used_tfbs_detail": pa.array([detail(i) for i in range(n)], pa.list_(DETAIL))})
    _overlay(d / "_derived" / "densegen" / f"part-{_stamp(T0)}Z-{uuid.UUID(int=1).hex}.parquet", part1, "densegen", "id", T0)
    part2 = pa.table({"id": pa.array(ids[:3], pa.string()), "densegen__plan": pa.array(["replanned"] * 3, pa.string())})
    _overlay(d / "_derived" / "densegen" / f"part-{_stamp(T0 + timedelta(hours=2))}Z-{uuid.UUID(int=2).hex}.parquet",
             part2, "densegen", "id", T0 + timedelta(hours=2))
    inc.plan = {i: ("replanned" if k < 3 else f"plan_{k % 2}") for k, i in enumerate(ids)}
    # compact overlay keyed by sequence (case as written: the incumbent's sequence key)
    scored = list(range(0, n, 2))
    infer = pa.table({"sequence": pa.array([seqs[i] for i in scored], pa.string()),
                      "infer__score": pa.array([0.25 * i for i in scored], pa.float64())})
    _overlay(d / "_derived" / "infer.parquet", infer, "infer", "sequence", T0 + timedelta(hours=1))
    inc.score = {ids[i]: 0.25 * i for i in scored}
    # tombstones: one deleted, one deleted then restored
    tomb = pa.table({"id": pa.array([ids[-1], ids[-2]], pa.string()),
                     "usr__deleted": pa.array([True, False]),
                     "usr__deleted_at": pa.array([T0, T0], pa.timestamp("us", tz="UTC")),
                     "usr__deleted_reason": pa.array(["bad design", ""], pa.string())})
    _overlay(d / "_derived" / "usr.parquet", tomb, "usr", "id", T0)
    inc.deleted = [ids[-1]]
    state = pa.table({"id": pa.array([ids[0], ids[4]], pa.string()),
                      "usr_state__masked": pa.array([True, False]),
                      "usr_state__qc_status": pa.array(["fail", "pass"], pa.string()),
                      "usr_state__supersedes": pa.array([ids[1], None], pa.string()),
                      "usr_state__lineage": pa.array([[ids[1], ids[2]], []], pa.list_(pa.string()))})
    _overlay(d / "_derived" / "usr_state.parquet", state, "usr_state", "id", T0)
    if events:
        lines = [_event("init", old_id, root, T0, 0),
                 _event("import_rows", old_id, root, T0 + timedelta(seconds=1), n, args={"n": n, "source_param": "x.csv"},
                        metrics={"rows_written": n, "rows_skipped": 0}),
                 _event("densegen_health", old_id, root, T0 + timedelta(seconds=2), n, args={"status": "completed"},
                        metrics={"quota_progress_pct": 100.0},
                        actor={"tool": "densegen", "run_id": "demo-run", "host": "scc-i01", "pid": 77}),
                 _event("attach", old_id, root, T0 + timedelta(seconds=3), n,
                        args={"namespace": "infer", "webhook_url": "https://hooks.slack.com/services/T0/B0/SECRET"})]
        inc.events = len(lines)
        text = "\n".join(lines) + "\n" + "this line is not json\n"
        if torn_event:
            text += '{"event_version":1,"action":"imp'
        (d / ".events.log").write_text(text)
    (d / "meta.md").write_text(f"name: {old_id}\ncreated_at: {T0.isoformat()}\nsource: regulondb demo\nnotes: \n"
                               "schema: USR v1\n\n### Updates (2026-03-01)\n- 2026-03-01T12:00:01Z: imported 12 rows\n"
                               "```bash\nusr import densegen_demo --from csv --path x.csv\n```\n")
    (d / ".usr.lock").write_text("")
    if aux:
        (d / "_registry").mkdir()
        (d / "_registry" / "registry.abc.yaml").write_text("namespaces: {}\n")
        (d / "_artifacts" / "densegen_npz").mkdir(parents=True)
        (d / "_artifacts" / "_densegen_ids.sqlite").write_bytes(b"SQLite format 3\x00")
    return inc
