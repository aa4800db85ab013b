"""GenBank export (`usr export --format genbank`, `dense export genbank`): a real `dense run` on the
demo workspace (RegulonDB sites, a sigma70 promoter plan), exported with the real console scripts,
read back with Biopython and compared feature by feature with the dataset's placements."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
import yaml
from Bio import SeqIO
from Bio.Seq import Seq

from tests.conftest import run_cli
from tests.densegen.run_fixtures import dense, make_workspace
from tests.helpers_validate import assert_dataset_valid

DATASET = "densegen/demo_sites"


@pytest.fixture(scope="module")
def run_ws(tmp_path_factory) -> Path:
    """One real, small `dense run` (both plans, USR + Parquet outputs), shared by the tests here."""
    ws = tmp_path_factory.mktemp("gb") / "ws"
    cfg = make_workspace(ws, quotas={"plain": 3, "sigma70": 3})
    r = dense("run", "--no-plot", "-c", str(cfg), cwd=ws)
    assert r.returncode == 0, r.stdout + r.stderr
    assert_dataset_valid(ws / "outputs" / "usr_datasets", DATASET)
    return ws


def usr_root(ws: Path) -> str:
    return str(ws / "outputs" / "usr_datasets")


def rows(ws: Path) -> pl.DataFrame:
    from dnadesign.usr.store import Dataset

    return Dataset(ws / "outputs" / "usr_datasets", DATASET).scan().collect()


def read_gb(path: Path) -> dict:
    return {rec.id: rec for rec in SeqIO.parse(path, "genbank")}


def assert_matches(records: dict, df: pl.DataFrame) -> None:
    """Every record: sequence, names, and one feature per placement at its place, strand and label."""
    assert set(records) == set(df.get_column("id"))
    names = [r.name for r in records.values()]
    assert len(set(names)) == len(names) and all(1 <= len(n) <= 16 for n in names)
    for row in df.iter_rows(named=True):
        rec = records[row["id"]]
        assert str(rec.seq) == row["sequence"] and rec.name == row["id"][:16]
        assert rec.annotations["molecule_type"] == "DNA" and rec.annotations["topology"] == "linear"
        feats = [f for f in rec.features if f.type != "source"]
        (src,) = [f for f in rec.features if f.type == "source"]
        assert (int(src.location.start), int(src.location.end)) == (0, len(row["sequence"]))
        sites = [f for f in feats if f.type == "protein_bind"]
        elements = [f for f in feats if f.type == "regulatory"]
        placements = row["densegen__placements"]
        expect_sites = sorted((p["offset"], p["end"], 1 if p["strand"] == "+" else -1, p["regulator"])
                              for p in placements if not p["fixed"])
        got_sites = sorted((int(f.location.start), int(f.location.end), f.location.strand, f.qualifiers["label"][0])
                           for f in sites)
        assert got_sites == expect_sites
        assert all(f.qualifiers["bound_moiety"] == f.qualifiers["label"] for f in sites)
        for f in sites:  # the feature's sequence is the site as placed (reverse complement on -)
            p = next(p for p in placements if not p["fixed"] and p["offset"] == int(f.location.start)
                     and p["regulator"] == f.qualifiers["label"][0])
            plus = p["sequence"]  # the site as it reads on the + strand
            assert str(rec.seq[p["offset"]:p["end"]]) == plus
            assert str(f.location.extract(rec.seq)) == (plus if p["strand"] == "+" else str(Seq(plus).reverse_complement()))
        fixed = [p for p in placements if p["fixed"]]
        assert len(elements) == len(fixed)
        if fixed:
            labels = {f.qualifiers["label"][0]: f for f in elements}
            assert set(labels) == {"-35", "-10"}
            assert str(labels["-35"].location.extract(rec.seq)) == "TTGACA"
            assert str(labels["-10"].location.extract(rec.seq)) == "TATAAT"
            assert labels["-35"].qualifiers["regulatory_class"] == ["minus_35_signal"]
            (prom,) = [f for f in feats if f.type == "promoter"]
            assert prom.qualifiers["label"] == ["sigma70"]
            assert int(prom.location.start) == int(labels["-35"].location.start)
            assert int(prom.location.end) == int(labels["-10"].location.end)
        assert row["densegen__plan"] in rec.description


def test_usr_export_genbank_round_trip(run_ws, tmp_path):
    out = tmp_path / "designs.gb"
    r = run_cli("usr", "--root", usr_root(run_ws), "export", DATASET, str(out), "--format", "genbank")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Wrote 6 record(s)" in r.stdout
    df = rows(run_ws)
    assert df.height == 6
    records = read_gb(out)
    assert_matches(records, df)
    assert any(f.type == "promoter" for rec in records.values() for f in rec.features)  # the sigma70 plan is in


def test_extension_limit_and_tombstones(run_ws, tmp_path):
    out = tmp_path / "two.gbk"  # format from the extension
    r = run_cli("usr", "--root", usr_root(run_ws), "export", DATASET, str(out), "--limit", "2")
    assert r.returncode == 0, r.stdout + r.stderr
    records = read_gb(out)
    assert len(records) == 2
    assert_matches(records, rows(run_ws).filter(pl.col("id").is_in(list(records))))

    # a tombstoned record is left out unless --include-deleted (on a copy: the shared run stays whole)
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(usr_root(run_ws), root)
    victim = rows(run_ws).get_column("id")[0]
    r = run_cli("usr", "--root", str(root), "delete", DATASET, "--id", victim, "--reason", "test")
    assert r.returncode == 0, r.stdout + r.stderr
    r = run_cli("usr", "--root", str(root), "export", DATASET, str(tmp_path / "live.gb"))
    assert r.returncode == 0 and victim not in read_gb(tmp_path / "live.gb") and len(read_gb(tmp_path / "live.gb")) == 5
    r = run_cli("usr", "--root", str(root), "export", DATASET, str(tmp_path / "all.gb"), "--include-deleted")
    assert r.returncode == 0 and victim in read_gb(tmp_path / "all.gb")
    assert_dataset_valid(root, DATASET)


def test_limit_applies_to_other_formats(run_ws, tmp_path):
    r = run_cli("usr", "--root", usr_root(run_ws), "export", DATASET, str(tmp_path / "x.fasta"), "--limit", "3")
    assert r.returncode == 0, r.stdout + r.stderr
    assert (tmp_path / "x.fasta").read_text().count(">") == 3


def test_dataset_without_placements_is_one_clear_error(tmp_path):
    fasta = tmp_path / "seqs.fasta"
    fasta.write_text(">a\nACGTACGTACGTAAAC\n>b\nTTTTGGGGCCCCAAAA\n")
    root = str(tmp_path / "usr")
    r = run_cli("usr", "--root", root, "init", "lab/plain")
    assert r.returncode == 0, r.stdout + r.stderr
    r = run_cli("usr", "--root", root, "import", "lab/plain", str(fasta))
    assert r.returncode == 0, r.stdout + r.stderr
    out = tmp_path / "plain.gb"
    r = run_cli("usr", "--root", root, "export", "lab/plain", str(out))
    assert r.returncode == 1
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and "Traceback" not in r.stderr
    assert "lab/plain has no densegen__placements column" in lines[0] and "fasta" in lines[0]
    assert not out.exists() and not list(tmp_path.glob(".plain.gb.*"))
    assert_dataset_valid(root, "lab/plain")


def test_usage_errors(run_ws, tmp_path):
    r = run_cli("usr", "--root", usr_root(run_ws), "export", DATASET, str(tmp_path / "x.gb"), "--columns", "id")
    assert r.returncode == 2 and "--columns does not apply" in r.stderr
    r = run_cli("usr", "--root", usr_root(run_ws), "import", DATASET, str(tmp_path / "x.gb"))
    assert r.returncode != 0 and "Traceback" not in r.stderr  # genbank is export-only


def test_dense_export_genbank_from_usr_and_from_parquet(run_ws, tmp_path):
    cfg = run_ws / "config.yaml"
    out = tmp_path / "dense.gb"
    r = dense("export", "genbank", str(out), "-c", str(cfg), cwd=run_ws)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "from usr:densegen/demo_sites" in r.stdout
    df = rows(run_ws)
    assert_matches(read_gb(out), df)

    r = dense("export", "genbank", str(tmp_path / "sigma.gb"), "--plan", "sigma70", "-c", str(cfg), cwd=run_ws)
    assert r.returncode == 0, r.stdout + r.stderr
    sig = read_gb(tmp_path / "sigma.gb")
    assert_matches(sig, df.filter(pl.col("densegen__plan") == "sigma70"))

    # the same run read from its Parquet output (a config with only the parquet target)
    raw = yaml.safe_load(cfg.read_text())
    raw["output"]["targets"] = ["parquet"]
    pq_cfg = run_ws / "config_parquet.yaml"
    pq_cfg.write_text(yaml.safe_dump(raw, sort_keys=False))
    r = dense("export", "genbank", str(tmp_path / "pq.gb"), "-c", str(pq_cfg), "--limit", "4", "--json", cwd=run_ws)
    assert r.returncode == 0, r.stdout + r.stderr
    assert '"records": 4' in r.stdout
    from_pq = read_gb(tmp_path / "pq.gb")
    assert_matches(from_pq, df.filter(pl.col("id").is_in(list(from_pq))))

    r = dense("export", "genbank", str(tmp_path / "none.gb"), "--plan", "nope", "-c", str(cfg), cwd=run_ws)
    assert r.returncode == 1 and "plan 'nope' is not in" in r.stderr and "plain, sigma70" in r.stderr
    assert not (tmp_path / "none.gb").exists()


# -- the writer on hand-made tables (fault cases a real run does not produce) ----------------

def _table(ids: list[str], seqs: list[str], placements: list[list[dict]]):
    import pyarrow as pa

    from dnadesign.densegen.sinks.records import PLACEMENT_TYPE

    return pa.table({"id": ids, "sequence": seqs, "densegen__placements": pa.array(placements, type=pa.list_(PLACEMENT_TYPE))})


def _site(offset: int, end: int, strand: str = "+", seq: str | None = None, reg: str = "LexA", fixed: bool = False,
          site_id: str = "s1") -> dict:
    return {"site_id": site_id, "regulator": reg, "offset": offset, "end": end, "strand": strand, "sequence": seq, "fixed": fixed}


@pytest.mark.parametrize(("place", "message"), [
    (_site(10, 30), "does not fit its 20-bp sequence"),
    (_site(0, 4, strand="?"), "strand '?'"),
    (_site(0, 4, seq="TTTT"), "says TTTT but the sequence has ACGT"),
])
def test_bad_placement_fails_whole_export(tmp_path, place, message):
    from dnadesign.core.errors import InputError
    from dnadesign.usr.export_genbank import write_genbank

    out = tmp_path / "bad.gb"
    out.write_text("previous export\n")
    good = _table(["a" * 40], ["ACGTACGTACGTACGTACGT"], [[_site(0, 4)]])
    bad = _table(["b" * 40], ["ACGTACGTACGTACGTACGT"], [[place]])
    with pytest.raises(InputError, match=message):
        write_genbank([good, bad], out)
    assert out.read_text() == "previous export\n"  # atomic: the old file stays whole
    assert [p.name for p in tmp_path.iterdir()] == ["bad.gb"]


def test_locus_names_short_unique_or_refused(tmp_path):
    from dnadesign.core.errors import InputError
    from dnadesign.usr.export_genbank import locus_name, write_genbank

    assert locus_name("my id/with spaces:and more") == "my_id_with_space"
    seq = "ACGTACGTACGTACGTACGT"
    ok = _table(["short", "x" * 40], [seq, seq], [[_site(0, 4, strand="-")], []])
    assert write_genbank([ok], tmp_path / "ok.gb") == 2
    recs = list(SeqIO.parse(tmp_path / "ok.gb", "genbank"))
    assert [r.name for r in recs] == ["short", "x" * 16] and [r.id for r in recs] == ["short", "x" * 40]
    assert recs[0].features[1].location.strand == -1 and str(recs[0].features[1].extract(recs[0].seq)) == "ACGT"
    clash = _table(["c" * 16 + "0" * 24], [seq], [[]])
    clash2 = _table(["c" * 16 + "1" * 24], [seq], [[]])
    with pytest.raises(InputError, match="share a LOCUS name"):
        write_genbank([clash, clash2], tmp_path / "clash.gb")
    assert not (tmp_path / "clash.gb").exists()


def test_odd_names_stay_readable(tmp_path):
    from dnadesign.usr.export_genbank import write_genbank

    seq = "ACGTACGTACGTACGTACGT"
    t = _table(["id with space"], [seq], [[_site(0, 4, reg='Lex"Aé', site_id='in:"x"')]])
    assert write_genbank([t], tmp_path / "odd.gb") == 1
    (rec,) = SeqIO.parse(tmp_path / "odd.gb", "genbank")
    assert rec.id == "id_with_space" and rec.name == "id_with_space"
    assert rec.features[1].qualifiers["label"] == ["Lex'A?"]
