"""JASPAR input (`type: pwm`, `format: jaspar_db`): real matrices from the SQLite databases that
pyjaspar ships, checked against pyjaspar's own reader, clear errors, and a real `dense run`."""

from __future__ import annotations

import shutil
import socket
import sqlite3
from pathlib import Path

import numpy as np
import pytest
import yaml

from dnadesign.core.errors import InputError
from dnadesign.densegen.config import load_config
from dnadesign.densegen.inputs import jaspar, load_input, load_motifs
from dnadesign.densegen.inputs.pwm import LogOdds, revcomp
from tests.densegen.run_fixtures import dense
from tests.helpers_validate import assert_dataset_valid

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Every lookup here must be offline: any connection attempt fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def pyjaspar_counts(matrix_id: str, release: str | None = None) -> np.ndarray:
    """Counts (positions x A,C,G,T) read by pyjaspar's own API: the independent reference."""
    import pyjaspar

    db = pyjaspar.jaspardb(release=release) if release else pyjaspar.jaspardb()
    m = db.fetch_motif_by_id(matrix_id)
    return np.array([m.counts[b] for b in "ACGT"], dtype=float).T


def config(tmp_path: Path, **inp) -> Path:
    raw = {
        "schema_version": 1,
        "run": {"id": "jaspar_demo", "root": "."},
        "inputs": [{"name": "jaspar_tfs", "type": "pwm", "format": "jaspar_db",
                    "sampling": {"strategy": "stochastic", "n_sites": 8, "candidates": 2000, "min_score_norm": 0.75,
                                 "trim_to": 10}, **inp}],
        "output": {"targets": ["usr"], "usr": {"root": "outputs/usr_datasets", "dataset": "densegen/jaspar_demo"}},
        "generation": {"sequence_length": 60,
                       "sampling": {"library_size": 8, "strategy": "coverage_weighted", "cover_all_regulators": True},
                       "plans": [{"name": "jaspar_mix", "sequences": 3, "include_inputs": ["jaspar_tfs"],
                                  "regulator_constraints": {"min_total_sites": 2}}]},
        "solver": {"strategy": "optimal", "time_limit_s": 3, "run_time_limit_s": 8, "solutions_per_library": 2, "workers": 1},
        "runtime": {"seed": 7, "checkpoint_every": 2, "max_seconds": 120},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


# -- lookups against the shipped databases ---------------------------------------------------

def test_releases_are_shipped_and_latest_is_default():
    rel = jaspar.packaged_releases()
    assert "JASPAR2024" in rel and all(p.stat().st_size > 0 for p in rel.values())
    label, path = jaspar.database_path()
    assert label == list(rel)[-1] and path == rel[label]


@pytest.mark.parametrize("key", ["MA0139.2", "MA0299.1", "MA0357.1"])  # CTCF (human), GAL4 and PHO4 (yeast)
def test_matrix_by_versioned_id_equals_pyjaspar(key):
    (m,) = jaspar.fetch([key])
    assert m.matrix_id == key
    assert np.array_equal(m.motif.array(), pyjaspar_counts(key))
    assert m.motif.nsites == pytest.approx(pyjaspar_counts(key)[0].sum())
    assert m.motif.source.endswith(f":{key}")


def test_base_id_is_latest_version():
    with jaspar.JasparDb.open() as db:
        versions = db.versions("MA0139")
        m = db.by_id("ma0139")  # case-insensitive
    assert len(versions) >= 2 and m.matrix_id == f"MA0139.{versions[-1]}" and m.tf_name == "CTCF"
    assert np.array_equal(m.motif.array(), pyjaspar_counts("MA0139"))


@pytest.mark.parametrize("taxon", ["Saccharomyces cerevisiae", "saccharomyces cerevisiae", "4932", "fungi", "Fungi"])
def test_name_and_taxon(taxon):
    (m,) = jaspar.fetch(["gal4"], taxon=taxon)
    assert (m.matrix_id, m.tf_name) == ("MA0299.1", "GAL4") and m.species == ("Saccharomyces cerevisiae",)


def test_older_release_and_explicit_file(tmp_path):
    (old,) = jaspar.fetch(["MA0357"], release="JASPAR2014")
    assert np.array_equal(old.motif.array(), pyjaspar_counts("MA0357", "JASPAR2014"))
    (same,) = jaspar.fetch(["MA0357"], path=jaspar.packaged_releases()["JASPAR2014"])
    assert same.motif.matrix == old.motif.matrix


# -- errors: one line naming the key and what to do ------------------------------------------

@pytest.mark.parametrize(("keys", "kw", "message", "hint"), [
    (["MA9999.1"], {}, "'MA9999.1' is not in JASPAR20", "name the TF"),
    (["MA0139.9"], {}, "'MA0139.9' is not in JASPAR20", "MA0139.1, MA0139.2"),
    (["CTCF"], {}, "matches 4 matrices", "or set `taxon`"),
    (["CTCF"], {"taxon": "Homo sapiens"}, "MA0139.2 (Homo sapiens), MA1929.2 (Homo sapiens), MA1930.2 (Homo sapiens)",
     "name one by its matrix id"),
    (["lexA"], {"taxon": "Escherichia coli"}, "has no matrices for taxon 'Escherichia coli'", "RegulonDB PSSM"),
    (["crp"], {"taxon": "Homo sapiens"}, "no matrix for taxon 'Homo sapiens'", "Drosophila melanogaster (MA2303.1)"),
    (["Gal44"], {}, "'Gal44' not found", "close names: GAL4"),
    (["GAL4"], {"taxon": "plants"}, "no matrix for taxon 'plants'", "Saccharomyces cerevisiae (MA0299.1)"),
    (["CTCF"], {"taxon": "vertebrates"}, "CORE for taxon 'vertebrates': MA0139.2", "matrix id"),
    (["GAL4"], {"release": "JASPAR1999"}, "release 'JASPAR1999' is not available", "JASPAR2024"),
])
def test_lookup_errors(keys, kw, message, hint):
    with pytest.raises(InputError) as err:
        jaspar.fetch(keys, **kw)
    assert message in err.value.message
    assert hint in (err.value.hint or "")
    assert "\n" not in str(err.value.message)


def test_not_a_database(tmp_path):
    bad = tmp_path / "x.sqlite"
    bad.write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(InputError, match="cannot be read as a JASPAR SQLite database"):
        jaspar.fetch(["MA0139.2"], path=bad)
    empty = tmp_path / "empty.sqlite"
    sqlite3.connect(empty).close()
    with pytest.raises(InputError, match="cannot be read as a JASPAR SQLite database"):
        jaspar.fetch(["MA0139.2"], path=empty)


# -- the input in a DenseGen config ----------------------------------------------------------

def test_input_labels_and_sampling(tmp_path):
    cfg = load_config(config(tmp_path, motifs=["MA0139.2", "MA0357", "GAL4"], taxon="Saccharomyces cerevisiae",
                             labels={"MA0139.2": "CTCF_human", "PHO4": "pho4"}))
    inp = cfg.model.inputs[0]
    assert [m.name for m in load_motifs(cfg, inp)] == ["CTCF_human", "pho4", "GAL4"]
    sites, notes = load_input(cfg, inp, seed=7)
    assert {s.regulator for s in sites} == {"CTCF_human", "pho4", "GAL4"}
    assert any("pho4" in n and "trim_to" in n for n in notes)  # an 8 bp matrix is kept whole
    again, _ = load_input(cfg, inp, seed=7)
    assert [s.sequence for s in again] == [s.sequence for s in sites]  # deterministic for a seed


def test_input_duplicate_regulator_and_stray_label(tmp_path):
    cfg = load_config(config(tmp_path, motifs=["MA0139.2", "MA1929"]))
    with pytest.raises(InputError, match=r"CTCF given by more than one matrix \(MA0139.2, MA1929.2\)") as err:
        load_motifs(cfg, cfg.model.inputs[0])
    assert "labels" in (err.value.hint or "")
    cfg = load_config(config(tmp_path, motifs=["MA0139.2"], labels={"MA0001.1": "x"}))
    with pytest.raises(InputError, match=r"labels names 'MA0001\.1'"):
        load_motifs(cfg, cfg.model.inputs[0])


@pytest.mark.parametrize(("inp", "message"), [
    ({}, "format jaspar_db takes `motifs`"),
    ({"motifs": ["GAL4"], "paths": ["a", "b"]}, "format jaspar_db takes `motifs`"),
    ({"motifs": ["GAL4"], "path": "j.sqlite", "release": "JASPAR2024"}, "`release` or `path`"),
    ({"format": "meme", "path": "m.txt", "taxon": "9606"}, "apply to format jaspar_db only"),
])
def test_config_shape_errors(tmp_path, inp, message):
    from dnadesign.core.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        load_config(config(tmp_path, **inp))


def test_cli_error_is_one_line(tmp_path):
    cfg = config(tmp_path, motifs=["CTCF"], taxon="Homo sapiens")
    r = dense("inspect", "inputs", "-c", str(cfg), cwd=tmp_path, timeout=120)
    assert r.returncode == 1, r.stdout + r.stderr
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and "Traceback" not in r.stderr
    assert "'CTCF'" in lines[0] and "MA0139.2" in lines[0] and "matrix id" in lines[0]


@pytest.mark.slow
def test_real_dense_run_on_packaged_jaspar_demo(tmp_path):
    """The packaged `demo_jaspar` workspace (yeast regulators by name + taxon, MCM1 by id), run for real."""
    ws = tmp_path / "demo_jaspar"
    shutil.copytree(REPO / "workspaces" / "demo_jaspar", ws, ignore=shutil.ignore_patterns("outputs"))
    raw = yaml.safe_load((ws / "config.yaml").read_text())
    raw["generation"]["plans"][0]["sequences"] = 3
    raw["solver"].update(workers=1)
    (ws / "config.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    r = dense("run", "--no-plot", "-c", str(ws / "config.yaml"), cwd=ws)
    assert r.returncode == 0, r.stdout + r.stderr
    root = ws / "outputs" / "usr_datasets"
    assert_dataset_valid(root, "densegen/demo_jaspar")

    from dnadesign.usr.store import Dataset

    df = Dataset(root, "densegen/demo_jaspar").scan().collect()
    assert df.height == 3 and df.get_column("id").n_unique() == 3
    found = jaspar.fetch(["GAL4", "PHO4", "GCN4", "REB1", "MA0331.1"], taxon="Saccharomyces cerevisiae")
    scorers = {("MCM1" if j.matrix_id == "MA0331.1" else j.tf_name): LogOdds.from_motif(j.motif) for j in found}
    placed = 0
    for seq, places in zip(df.get_column("sequence"), df.get_column("densegen__placements"), strict=True):
        regs = {p["regulator"] for p in places}
        assert regs & {"PHO4", "GAL4"}  # the plan's group constraint
        for p in places:
            assert p["regulator"] in scorers
            assert seq[p["offset"]:p["end"]] == p["sequence"]
            site = p["sequence"] if p["strand"] == "+" else revcomp(p["sequence"])
            assert scorers[p["regulator"]].normalise(scorers[p["regulator"]].score(site)) >= 0.75 - 1e-9
            placed += 1
    assert placed >= 3 * df.height


def test_every_sampled_base_id_resolves_to_its_latest_version_like_pyjaspar():
    """A sample of real base ids across the release: latest version and counts agree with pyjaspar."""
    import pyjaspar

    ref = pyjaspar.jaspardb()
    with jaspar.JasparDb.open() as db:
        bases = [b for (b,) in db.conn.execute("SELECT DISTINCT BASE_ID FROM MATRIX ORDER BY BASE_ID")]
        assert len(bases) > 1000
        for base in bases[:: len(bases) // 40]:
            got = db.by_id(base)
            want = ref.fetch_motif_by_id(base)
            assert got.matrix_id == want.matrix_id and got.tf_name == want.name
            counts = np.array([want.counts[b] for b in "ACGT"], dtype=float).T
            assert np.array_equal(got.motif.array(), counts)


def test_missing_pyjaspar_is_one_clear_error(monkeypatch):
    """Fault injection: the package is not installed."""
    import importlib.util

    from dnadesign.core.errors import NotFoundError

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pyjaspar" else real(name, *a))
    with pytest.raises(NotFoundError, match="pyjaspar is missing") as err:
        jaspar.fetch(["MA0139.2"])
    assert "uv sync" in (err.value.hint or "")
