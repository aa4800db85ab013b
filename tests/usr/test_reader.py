"""Streaming reads, compaction and materialize against a plain-Python model of the dataset.

Random sequences of appends (with and without an overlay in the same commit), overlay writes
(partial columns, nulls, ids written twice), deletes, restores, tiered compactions and
materializations; after each sequence, `scan`, `head`, `get`, `grep` and the exports must show
exactly what the model says: records in append order, newest non-null overlay value per column,
tombstoned records hidden. Compaction and materialize must not change what a read returns.
"""

from __future__ import annotations

import json

import polars as pl
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dnadesign.usr import query
from dnadesign.usr.cli import app
from dnadesign.usr.schema import make_records
from dnadesign.usr.store import Dataset
from dnadesign.usr.validate import validate
from tests.conftest import invoke

POOL = ["".join("ACGT"[(i >> (2 * k)) & 3] for k in range(7)) + "GA" for i in range(64)]
COLUMNS = {"lab": {"lab__score": pa.float64(), "lab__tag": pa.string()}, "infer": {"infer__p": pa.float64()}}


class Model:
    def __init__(self) -> None:
        self.order: list[str] = []
        self.seq: dict[str, str] = {}
        self.values: dict[str, dict[str, object]] = {}
        self.deleted: dict[str, bool] = {}

    def write(self, ns_cols: dict[str, list], ids: list[str]) -> None:
        for col, vals in ns_cols.items():
            for rid, v in zip(ids, vals):
                if v is not None:
                    self.values.setdefault(col, {})[rid] = v

    def rows(self, columns: list[str]) -> list[dict]:
        out = []
        for rid in self.order:
            if self.deleted.get(rid):
                continue
            out.append({"id": rid, "sequence": self.seq[rid], **{c: self.values.get(c, {}).get(rid) for c in columns}})
        return out


ops = st.lists(st.one_of(
    st.tuples(st.just("append"), st.lists(st.integers(0, 63), min_size=1, max_size=7, unique=True), st.booleans()),
    st.tuples(st.just("overlay"), st.sampled_from(["lab", "infer"]), st.lists(st.integers(0, 40), min_size=1, max_size=8, unique=True),
              st.integers(0, 2)),
    st.tuples(st.just("delete"), st.lists(st.integers(0, 40), min_size=1, max_size=3, unique=True), st.booleans()),
    st.tuples(st.just("compact"), st.integers(2, 9)),
    st.tuples(st.just("materialize"), st.sampled_from(["lab", "infer"])),
), min_size=1, max_size=9)


def _apply(ds: Dataset, model: Model, op: tuple, step: int) -> None:
    kind = op[0]
    if kind == "append":
        seqs = [POOL[i] for i in op[1] if make_records([POOL[i]]).column("id")[0].as_py() not in model.seq]
        if not seqs:
            return
        recs = make_records(seqs)
        ids = recs.column("id").to_pylist()
        overlays = None
        if op[2]:
            vals = [float(step + j) for j in range(len(ids))]
            overlays = {"lab": pa.table({"id": ids, "score": vals})}
            model.write({"lab__score": vals}, ids)
        ds.append(recs, overlays=overlays)
        for rid, s in zip(ids, seqs):
            model.order.append(rid)
            model.seq[rid] = s
    elif kind == "overlay":
        ids = [model.order[i] for i in op[2] if i < len(model.order)]
        if not ids:
            return
        ns, mode = op[1], op[3]
        if ns == "lab":
            score = [None if (mode == 1 and j % 2) else float(100 * step + j) for j in range(len(ids))]
            cols = {"score": score} if mode != 2 else {"tag": [f"t{step}" for _ in ids]}
            if mode == 1:
                cols["tag"] = [None if j % 3 == 1 else f"s{step}" for j in range(len(ids))]  # never all null
        else:
            cols = {"p": [0.5 + step for _ in ids]}
        ds.write_overlay(ns, pa.table({"id": ids, **cols}))
        model.write({f"{ns}__{k}": v for k, v in cols.items()}, ids)
    elif kind == "delete":
        ids = [model.order[i] for i in op[1] if i < len(model.order)]
        if not ids:
            return
        (ds.delete if op[2] else ds.restore)(ids)
        for rid in ids:
            model.deleted[rid] = op[2]
    elif kind == "compact":
        ds.compact(target_rows=op[1])
    elif kind == "materialize" and op[1] in ds.manifest().overlays:
        ds.materialize([op[1]])


def _check(ds: Dataset, model: Model) -> None:
    frame = ds.scan().collect()
    derived = [c for c in frame.columns if "__" in c and not c.startswith("usr__")]
    got = frame.select(["id", "sequence", *derived]).to_dicts()
    assert got == model.rows(derived)
    if got:
        assert query.head(ds, 3).select(["id", *derived]).to_dicts() == [{k: r[k] for k in ["id", *derived]} for r in got[:3]]
        rid = got[-1]["id"]
        one = query.get(ds, rid)
        assert one is not None and {k: one[k] for k in ["id", *derived]} == {k: got[-1][k] for k in ["id", *derived]}
        pattern = got[0]["sequence"][:5]
        hits = query.grep(ds, pattern, limit=50)
        assert hits["id"].to_list() == [r["id"] for r in got if pattern in r["sequence"]][:50]
    # narrow projections and a filter on an overlay column go through the same source
    if "lab__score" in frame.columns:
        sub = ds.scan().filter(pl.col("lab__score") > 10).select(["id", "lab__score"]).collect()
        assert sub.to_dicts() == [{"id": r["id"], "lab__score": r["lab__score"]} for r in got
                                  if r["lab__score"] is not None and r["lab__score"] > 10]
    assert ds.scan(include_deleted=True).select(pl.len()).collect().item() == len(model.order)
    rep = validate(ds)
    assert rep.ok, rep.errors


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops)
def test_reads_match_the_model_through_writes_compactions_and_materialize(tmp_path_factory, sequence):
    root = tmp_path_factory.mktemp("r")
    ds = Dataset.create(root, "test/r")
    model = Model()
    for step, op in enumerate(sequence):
        _apply(ds, model, op, step)
    _check(ds, model)
    before = ds.scan(include_deleted=True).collect()
    ds.compact(target_rows=4)
    after = ds.scan(include_deleted=True).collect()
    assert after.columns == before.columns and after.equals(before)  # compaction changes no value and no order
    _check(ds, model)


def test_exports_stream_every_format(usr_root, tmp_path):
    ds = Dataset.create(usr_root, "test/e")
    ids = ds.append(make_records(POOL[:20]), overlays={"lab": pa.table({"id": make_records(POOL[:20]).column("id"),
                                                                          "score": [float(i) for i in range(20)]})}).ids
    ds.append(make_records(POOL[20:30]))
    ds.write_overlay("nested", pa.table({"id": ids[:2], "sites": pa.array([[{"a": 1, "b": "x"}], []], pa.list_(pa.struct([("a", pa.int32()), ("b", pa.string())])))}))
    ds.delete(ids[5:6])
    expected = ds.scan().collect()
    assert expected.height == 29
    for fmt in ("parquet", "csv", "fasta"):
        out = tmp_path / f"all.{fmt}"
        r = invoke(app, "--root", str(usr_root), "export", "test/e", str(out))
        assert r.returncode == 0 and f"Wrote {expected.height} record(s)" in r.stdout
    assert pl.read_parquet(tmp_path / "all.parquet").equals(expected)
    csv = pl.read_csv(tmp_path / "all.csv", infer_schema=False)
    assert csv["id"].to_list() == expected["id"].to_list()
    assert json.loads(csv["nested__sites"][0]) == [{"a": 1, "b": "x"}] and csv["nested__sites"][1] == "[]"
    fasta = (tmp_path / "all.fasta").read_text().split(">")[1:]
    assert [f.split("\n")[0] for f in fasta] == expected["id"].to_list()
    r = invoke(app, "--root", str(usr_root), "export", "test/e", str(tmp_path / "some.csv"), "--columns", "id,lab__score")
    assert r.returncode == 0 and pl.read_csv(tmp_path / "some.csv").columns == ["id", "lab__score"]
    r = invoke(app, "--root", str(usr_root), "export", "test/e", str(tmp_path / "bad.csv"), "--columns", "nope")
    assert r.returncode == 1 and "unknown column(s) nope" in r.stderr and not (tmp_path / "bad.csv").exists()


@pytest.mark.parametrize("namespaces", [None, [], ["lab"]])
def test_scan_namespaces_select_columns_wherever_stored(usr_root, namespaces):
    ds = Dataset.create(usr_root, "test/n")
    recs = make_records(POOL[:6])
    ids = recs.column("id").to_pylist()
    ds.append(recs, overlays={"lab": pa.table({"id": ids, "score": [1.0] * 6})})
    ds.write_overlay("infer", pa.table({"id": ids[:3], "p": [0.1, 0.2, 0.3]}))
    ds.compact(target_rows=100)  # folds both namespaces into the base part
    assert ds.manifest().overlays == {}
    cols = ds.scan(namespaces=namespaces).collect().columns
    derived = sorted(c for c in cols if "__" in c)
    assert derived == {None: ["infer__p", "lab__score"], (): [], ("lab",): ["lab__score"]}[tuple(namespaces) if namespaces is not None else None]


def test_repeated_tiered_compactions_keep_the_order(usr_root):
    """Small parts between big ones merge in place, again and again; names stay ordered and short."""
    ds = Dataset.create(usr_root, "test/o")
    expected: list[str] = []
    k = 0

    def add(n: int) -> None:
        nonlocal k
        seqs = [POOL[(k + i) % 64] + "ACGT"[(k + i) // 64 % 4] * 3 for i in range(n)]
        k += n
        expected.extend(ds.append(make_records(seqs)).ids)

    for n in (5, 1, 1, 5, 1, 1, 5):
        add(n)
    for _ in range(5):
        ds.compact(target_rows=8)
        assert ds.scan().select("id").collect()["id"].to_list() == expected
        names = [e.file for e in ds.manifest().parts]
        assert names == sorted(names) and max(len(n) for n in names) < 120
        add(1)
        add(2)
    assert validate(ds).ok
