"""The Parquet and USR sinks: atomic batches, crash leftovers, identical columns, alignment."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pyarrow.parquet as pq
import pytest

from dnadesign.core.events import Actor
from dnadesign.densegen.outputs import RunOutputs
from dnadesign.densegen.sinks import COLUMNS, Accepted, ParquetSink, UsrSink, build_table
from dnadesign.densegen.solver import Placement
from tests.helpers_validate import assert_dataset_valid


def _acc(seq: str, plan: str = "p") -> Accepted:
    # a real site at offset 2 on the - strand: stored as it reads on the + strand
    site = seq[2:8]
    return Accepted(plan=plan, sequence=seq, placements=(Placement("s1", "LexA", 2, "-", site), Placement("prom:up", "promoter", 10, "+", seq[10:16], True)),
                    objective=1.0, bound=1.0, optimal=True, solve_time_s=0.1, library_hash="abc", library_index=0,
                    library_size=8, accepted_at=datetime.now(UTC))


SEQS = ["ACGTACGTACGTTTGACAGG", "TTTTACGTACGTTTGACAGG", "GGGGACGTACGTTTGACAGG", "CCCCACGTACGTTTGACAGG"]


def test_build_table_types_and_values():
    t = build_table([_acc(SEQS[0])], run_id="r1")
    assert set(COLUMNS) <= set(t.column_names)
    row = t.to_pylist()[0]
    assert row["densegen__n_sites"] == 1 and row["densegen__regulators"] == ["LexA"]
    assert row["densegen__placements"][0] == {"site_id": "s1", "regulator": "LexA", "offset": 2, "end": 8, "strand": "-",
                                              "sequence": SEQS[0][2:8], "fixed": False}
    assert row["source"] == "densegen:r1:p"
    assert row["densegen__sites_per_100bp"] == pytest.approx(5.0)
    assert row["densegen__compression_ratio"] == pytest.approx(6 / 20)


def test_parquet_sink_commits_dedupes_and_exports(tmp_path):
    sink = ParquetSink(tmp_path / "tables" / "records.parquet")
    assert sink.write(build_table([_acc(SEQS[0]), _acc(SEQS[1])], run_id="r")) == 2
    assert sink.write(build_table([_acc(SEQS[1]), _acc(SEQS[2])], run_id="r")) == 1  # SEQS[1] already there
    again = ParquetSink(tmp_path / "tables" / "records.parquet")
    assert again.frame().height == 3 and again.frame()["id"].n_unique() == 3
    again.finalize()
    export = pq.read_table(tmp_path / "tables" / "records.parquet")
    assert export.num_rows == 3 and export.schema.names == again.frame().columns


def test_parquet_sink_ignores_crash_leftovers(tmp_path):
    sink = ParquetSink(tmp_path / "records.parquet")
    sink.write(build_table([_acc(SEQS[0])], run_id="r"))
    # a crash after writing a part but before the manifest swap, and a torn temp file
    (sink.parts_dir / "part-99999999T000000000000Z-deadbeef.parquet").write_bytes(b"PAR1 torn")
    (sink.parts_dir / ".part-x.parquet.123.tmp").write_bytes(b"junk")
    fresh = ParquetSink(tmp_path / "records.parquet")
    assert fresh.frame().height == 1  # reads only what the manifest names
    assert fresh.clean_orphans() == 2
    assert sorted(p.name for p in fresh.parts_dir.iterdir() if p.suffix == ".parquet") == [fresh.part_paths()[0].name]


def test_usr_sink_commits_records_and_overlay_together(tmp_path):
    actor = Actor.current("densegen", run_id="r")
    sink = UsrSink(tmp_path / "usr", "densegen/t", actor)
    assert sink.write(build_table([_acc(SEQS[0]), _acc(SEQS[1], plan="q")], run_id="r")) == 2
    assert sink.write(build_table([_acc(SEQS[0])], run_id="r")) == 0
    df = sink.frame()
    assert df.height == 2
    assert dict(df.group_by("densegen__plan").len().rows()) == {"p": 1, "q": 1}
    flat = df.select("id", "densegen__placements").explode("densegen__placements").unnest("densegen__placements")
    assert set(flat["strand"].to_list()) == {"+", "-"}
    assert sink.all_ids() == set(df["id"].to_list())
    # the list<struct> placements column is recorded as `list<element: ...>` by a parquet round trip:
    # the same type as `list<item: ...>` (usr validate used to call every densegen dataset INVALID)
    assert_dataset_valid(tmp_path / "usr", "densegen/t")


def test_sinks_have_identical_columns_and_align(tmp_path):
    actor = Actor.current("densegen", run_id="r")
    usr = UsrSink(tmp_path / "usr", "densegen/t", actor)
    parquet = ParquetSink(tmp_path / "records.parquet")
    usr.write(build_table([_acc(SEQS[0]), _acc(SEQS[1])], run_id="r"))  # a crash before the parquet write
    parquet.write(build_table([_acc(SEQS[2])], run_id="r"))  # and a row only parquet has
    moved = _outputs(usr, parquet).align()
    assert moved == {"to_parquet": 2, "to_usr": 1}
    u = usr.frame().sort("id")
    p = parquet.frame().sort("id")
    assert u["id"].to_list() == p["id"].to_list()
    assert p.columns == list(u.select(p.columns).columns)
    assert set(u.columns) == set(p.columns)
    cmp_cols = [c for c in p.columns if c != "created_at"]
    assert u.select(cmp_cols).equals(p.select(cmp_cols))
    assert _outputs(usr, parquet).align() == {"to_parquet": 0, "to_usr": 0}


def _outputs(usr, parquet, run_id: str = "r") -> RunOutputs:
    """RunOutputs over two already opened sinks (no config needed)."""
    outs = RunOutputs.__new__(RunOutputs)
    outs.run_id, outs.usr, outs.parquet = run_id, usr, parquet
    return outs


def test_empty_frames_have_schema(tmp_path):
    p = ParquetSink(tmp_path / "none.parquet")
    assert p.frame().height == 0 and "densegen__plan" in p.frame().columns
    u = UsrSink(tmp_path / "usr", "densegen/none", None, create=False)
    assert isinstance(u.frame(), pl.DataFrame) and u.frame().height == 0
