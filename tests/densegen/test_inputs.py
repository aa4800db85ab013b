"""Inputs: table readers, USR sequences, PWM parsers (real RegulonDB data), log-odds scoring,
in-process PWM sampling and the background pool."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dnadesign.core.errors import InputError
from dnadesign.densegen.config import load_config
from dnadesign.densegen.inputs import derive_rng, load_input
from dnadesign.densegen.inputs.background import sample_background
from dnadesign.densegen.inputs.pwm import (
    LogOdds,
    Motif,
    format_artifact,
    format_jaspar,
    format_meme,
    format_regulondb,
    parse_artifact,
    parse_jaspar,
    parse_meme,
    parse_regulondb,
    revcomp,
    sample_sites,
)

REPO = Path(__file__).resolve().parents[2]
PSSM_SUBSET = REPO / "workspaces" / "demo_pwm" / "inputs" / "regulondb_pssm_subset.txt"
PSSM_FULL = REPO.parent / "shared" / "data" / "regulondb_pssm_v4.0.txt"


# -- tables ----------------------------------------------------------------------------------

def test_binding_sites_csv_dedupes_and_labels(minimal):
    cfg = load_config(minimal())
    sites, notes = load_input(cfg, cfg.model.inputs[0], seed=1)
    assert len(sites) == len({(s.regulator, s.sequence) for s in sites})
    assert {s.regulator for s in sites} <= {"LexA", "CpxR", "Fur", "ArcA", "Fis", "FNR"}
    assert all(set(s.sequence) <= set("ACGT") for s in sites)
    assert all(s.id.startswith("sites:") for s in sites)
    again, _ = load_input(cfg, cfg.model.inputs[0], seed=2)
    assert [s.id for s in again] == [s.id for s in sites]  # ids are content-derived


def test_binding_sites_parquet_custom_columns_and_filters(tmp_path, write_config):
    pq.write_table(pa.table({"regulator_name": ["LexA", "Fur", "Fur", "LexA"],
                             "site": ["tactgtatataaaaacagta", "GATAATGATAATCATTATC", "AAAA", "TACTGTATATAAAAACAGTA"],
                             "sid": ["a", "b", "c", "d"]}), tmp_path / "s.parquet")
    cfg = load_config(write_config({
        "schema_version": 1, "run": {"id": "t"},
        "inputs": [{"name": "s", "type": "binding_sites", "path": "s.parquet",
                    "columns": {"regulator": "regulator_name", "sequence": "site", "site_id": "sid"},
                    "length": {"min": 5}}],
        "generation": {"sequence_length": 40, "plans": [{"name": "p", "sequences": 1, "include_inputs": ["s"]}]}}))
    sites, notes = load_input(cfg, cfg.model.inputs[0], seed=1)
    assert [(s.id, s.regulator, s.sequence) for s in sites] == [
        ("s:a", "LexA", "TACTGTATATAAAAACAGTA"), ("s:b", "Fur", "GATAATGATAATCATTATC")]
    assert any("duplicate" in n for n in notes)


def test_invalid_alphabet_names_file_and_row(tmp_path, minimal):
    (tmp_path / "sites.csv").write_text("tf,tfbs\nLexA,ACGTACGT\nFur,ACGNNT\n")
    cfg = load_config(minimal())
    with pytest.raises(InputError, match=r"sites.csv row 3: sequence 'ACGNNT' is not DNA"):
        load_input(cfg, cfg.model.inputs[0], seed=1)
    cfg = load_config(minimal(lambda r: r["inputs"][0].update(skip_invalid=True)))
    sites, notes = load_input(cfg, cfg.model.inputs[0], seed=1)
    assert len(sites) == 1 and "skipped 1" in notes[0]


def test_missing_file_and_column(tmp_path, minimal):
    cfg = load_config(minimal(lambda r: r["inputs"][0].update(path="nope.csv")))
    with pytest.raises(InputError, match="nope.csv not found"):
        load_input(cfg, cfg.model.inputs[0], seed=1)
    cfg = load_config(minimal(lambda r: r["inputs"][0].update(columns={"regulator": "TF"})))
    with pytest.raises(InputError, match="column 'TF' not found"):
        load_input(cfg, cfg.model.inputs[0], seed=1)


def test_sequence_library_and_usr_sequences(tmp_path, write_config):
    from dnadesign.usr.store import Dataset

    (tmp_path / "lib.tsv").write_text("sequence\tgroup\nACGTACGTTT\tx\nacgtacgttt\tx\nGGGGCCCCAA\ty\n")
    root = tmp_path / "usr"
    ds = Dataset.create(root, "demo/seqs")
    from dnadesign.core.ids import record_id
    from dnadesign.core.timeutil import utc_now_iso

    seqs = ["TTGACAATTAATCATCGGCT", "GGCTCGTATAATGTGTGGAA"]
    ds.append(pa.table({"id": [record_id("dna", s) for s in seqs], "bio_type": ["dna"] * 2, "sequence": seqs,
                        "alphabet": ["dna_4"] * 2, "length": [len(s) for s in seqs], "source": ["t"] * 2,
                        "created_at": [utc_now_iso()] * 2}))
    cfg = load_config(write_config({
        "schema_version": 1, "run": {"id": "t"},
        "inputs": [{"name": "lib", "type": "sequence_library", "path": "lib.tsv", "regulator_column": "group"},
                   {"name": "u", "type": "usr_sequences", "dataset": "demo/seqs", "root": "usr", "regulator": "promoters"}],
        "generation": {"sequence_length": 40, "plans": [{"name": "p", "sequences": 1, "include_inputs": ["lib", "u"]}]}}))
    lib, _ = load_input(cfg, cfg.model.inputs[0], seed=1)
    assert [(s.regulator, s.sequence) for s in lib] == [("x", "ACGTACGTTT"), ("y", "GGGGCCCCAA")]
    usr, _ = load_input(cfg, cfg.model.inputs[1], seed=1)
    assert sorted(s.sequence for s in usr) == sorted(seqs) and {s.regulator for s in usr} == {"promoters"}
    bad = load_config(write_config({**cfg.raw, "inputs": [{"name": "u", "type": "usr_sequences", "dataset": "demo/none", "root": "usr"}],
                                    "generation": {"sequence_length": 40, "plans": [{"name": "p", "sequences": 1, "include_inputs": ["u"]}]}},
                                   name="bad.yaml"))
    with pytest.raises(InputError, match="demo/none"):
        load_input(bad, bad.model.inputs[0], seed=1)


# -- PWM parsers -----------------------------------------------------------------------------

def test_regulondb_subset_parses_real_counts():
    motifs = parse_regulondb(PSSM_SUBSET.read_text(), str(PSSM_SUBSET))
    names = [m.name for m in motifs]
    assert names == ["ArcA", "CpxR", "Fur", "LexA", "PhoB"]
    lexa = motifs[names.index("LexA")]
    assert lexa.width == 22 and lexa.nsites == 44
    assert all(sum(row) == 44 for row in lexa.matrix)  # count columns sum to the number of sites


def test_regulondb_full_file_parses():
    if not PSSM_FULL.exists():
        pytest.skip(f"{PSSM_FULL} not available")
    motifs = parse_regulondb(PSSM_FULL.read_text(), str(PSSM_FULL))
    assert len(motifs) == 92  # the file holds 92 TF blocks
    assert {m.width for m in motifs} >= {6, 43}


@pytest.mark.parametrize("text, match", [
    ("MOTIF a\nletter-probability matrix: alength= 4 w= 2\n0.5 0.5 0 0\n", "declares w=2 but has 1 rows"),
    ("ALPHABET= ACDEFGHIKLMNPQRSTVWY\nMOTIF a\n", "only ACGT"),
    ("MOTIF a\nletter-probability matrix: alength= 4 w= 1\n0.5 0.5 0\n", "3 values, expected 4"),
    ("nothing here\n", "no MOTIF blocks"),
])
def test_meme_errors(text, match):
    with pytest.raises(InputError, match=match):
        parse_meme(text, "x.meme")


def test_jaspar_formats_and_errors():
    text = ">MA0001.1 AGL3\nA [ 0 3 79 ]\nC [ 94 75 4 ]\nG [ 1 0 3 ]\nT [ 2 19 11 ]\n"
    (m,) = parse_jaspar(text)
    assert m.name == "AGL3" and m.matrix[0] == (0.0, 94.0, 1.0, 2.0)
    (bare,) = parse_jaspar("0 3 79\n94 75 4\n1 0 3\n2 19 11\n", default_name="x")
    assert bare.matrix == m.matrix and bare.name == "x"
    with pytest.raises(InputError, match="needs rows A, C, G and T"):
        parse_jaspar(">M1 x\nA [ 1 2 ]\nC [ 1 2 ]\nG [ 1 2 ]\n")
    with pytest.raises(InputError, match="unexpected row 'N'"):
        parse_jaspar(">M1 x\nA [ 1 2 ]\nN [ 1 2 ]\n")


def test_artifact_shapes_and_errors():
    rows = [{"A": 0.7, "C": 0.1, "G": 0.1, "T": 0.1}, {"A": 0.1, "C": 0.1, "G": 0.1, "T": 0.7}]
    (m,) = parse_artifact('{"motif_id": "x", "alphabet": "ACGT", "probabilities": %s}' % str(rows).replace("'", '"'))
    assert m.matrix[0] == (0.7, 0.1, 0.1, 0.1)
    with pytest.raises(InputError, match="alphabet 'ACGU'"):
        parse_artifact('{"motif_id": "x", "alphabet": "ACGU", "counts": [[1,1,1,1]]}')
    with pytest.raises(InputError, match="invalid JSON"):
        parse_artifact("{nope")


matrices = st.lists(st.lists(st.integers(0, 60), min_size=4, max_size=4).filter(lambda r: sum(r) > 0),
                    min_size=1, max_size=12)
names = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,8}", fullmatch=True)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(names, matrices), min_size=1, max_size=3, unique_by=lambda t: t[0]))
def test_count_formats_round_trip(items):
    motifs = [Motif(n, tuple(tuple(float(x) for x in r) for r in m), nsites=7) for n, m in items]
    for fmt, parse in ((format_jaspar, parse_jaspar), (format_regulondb, parse_regulondb), (format_artifact, parse_artifact)):
        back = parse(fmt(motifs))
        assert [(b.name, b.matrix) for b in back] == [(m.name, m.matrix) for m in motifs]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(names, matrices), min_size=1, max_size=3, unique_by=lambda t: t[0]))
def test_meme_round_trip_keeps_probabilities(items):
    motifs = [Motif(n, tuple(tuple(float(x) for x in r) for r in m)) for n, m in items]
    back = parse_meme(format_meme(motifs))
    assert [b.name for b in back] == [m.name for m in motifs]
    for b, m in zip(back, motifs):
        p = m.array() / m.array().sum(axis=1, keepdims=True)
        assert np.allclose(b.array(), p, atol=1e-5)


# -- log-odds scoring ------------------------------------------------------------------------

@settings(max_examples=50, deadline=None)
@given(matrices, st.data())
def test_log_odds_invariants(mat, data):
    m = Motif("m", tuple(tuple(float(x) for x in r) for r in mat))
    lo = LogOdds.from_motif(m, pseudocount=0.5)
    seq = data.draw(st.text("ACGT", min_size=m.width, max_size=m.width))
    s = lo.score(seq)
    assert lo.min_score - 1e-9 <= s <= lo.max_score + 1e-9
    assert lo.score(lo.consensus()) == pytest.approx(lo.max_score)
    assert 0.0 <= lo.normalise(s) <= 1.0 + 1e-12
    # scoring the reverse complement equals scoring with the reverse-complemented matrix
    rc_matrix = Motif("rc", tuple(tuple(r[::-1]) for r in m.matrix[::-1]))
    assert LogOdds.from_motif(rc_matrix).score(revcomp(seq)) == pytest.approx(s)
    # a sequence containing the consensus has a best hit of 1 on either strand
    assert lo.best_hit("A" + revcomp(lo.consensus()) + "C") == pytest.approx(1.0)
    # a piece of the consensus shorter than the motif is slid along it and also scores 1
    if m.width > 2:
        assert lo.best_hit(lo.consensus()[1:-1]) == pytest.approx(1.0)


def test_sampling_is_seeded_scored_and_thresholded():
    lexa = [m for m in parse_regulondb(PSSM_SUBSET.read_text()) if m.name == "LexA"][0]
    kw = dict(n_sites=25, strategy="stochastic", candidates=3000, min_score_norm=0.7)
    a = sample_sites(lexa, rng=derive_rng(5, "x"), **kw)
    b = sample_sites(lexa, rng=derive_rng(5, "x"), **kw)
    c = sample_sites(lexa, rng=derive_rng(6, "x"), **kw)
    assert a == b and a != c
    assert len(a) == 25 and len({x.sequence for x in a}) == 25
    lo = LogOdds.from_motif(lexa)
    for x in a:
        assert x.score_norm >= 0.7 and lo.score(x.sequence) == pytest.approx(x.score)
    top = sample_sites(lexa, rng=derive_rng(5, "x"), **{**kw, "strategy": "top"})
    assert min(t.score for t in top) >= max(sorted(x.score for x in a)[:1])
    (cons,) = sample_sites(lexa, rng=derive_rng(5, "x"), **{**kw, "strategy": "consensus", "n_sites": 1})
    assert cons.sequence == lo.consensus() and cons.score_norm == 1.0
    trimmed = sample_sites(lexa, rng=derive_rng(5, "x"), **{**kw, "trim_to": 16})
    assert {len(x.sequence) for x in trimmed} == {16}


def test_pwm_input_labels_and_missing_motif(demo_workspace):
    def edit(r):
        r["inputs"][0]["labels"] = {"LexA": "lexA_SOS"}
    cfg = load_config(demo_workspace("demo_pwm", edit=edit))
    sites, _ = load_input(cfg, cfg.model.inputs[0], seed=3)
    assert {s.regulator for s in sites} == {"lexA_SOS", "CpxR", "Fur", "PhoB"}
    cfg = load_config(demo_workspace("demo_pwm", dest="other", edit=lambda r: r["inputs"][0].update(motifs=["LexA", "NoSuch"])))
    with pytest.raises(InputError, match="NoSuch"):
        load_input(cfg, cfg.model.inputs[0], seed=3)


# -- background ------------------------------------------------------------------------------

def test_background_pool_respects_filters():
    lexa = [m for m in parse_regulondb(PSSM_SUBSET.read_text()) if m.name == "LexA"][0]
    lo = LogOdds.from_motif(lexa)
    got, drawn = sample_background(n_sites=80, length=(10, 14), gc_min=0.4, gc_max=0.6, forbid=("TTGACA", "TATAAT"),
                                   exclude=[("LexA", lo)], max_score_norm=0.7, rng=derive_rng(1, "bg"), max_candidates=50_000)
    assert len(got) == 80 and drawn >= 80
    seqs = [s for s, _ in got]
    assert len({min(s, revcomp(s)) for s in seqs}) == 80
    for s in seqs:
        assert 10 <= len(s) <= 14
        assert 0.4 <= (s.count("G") + s.count("C")) / len(s) <= 0.6
        for k in ("TTGACA", "TATAAT", "TGTCAA", "ATTATA"):
            assert k not in s
        assert lo.best_hit(s) <= 0.7
    with pytest.raises(InputError, match="no background sequence passed"):
        sample_background(n_sites=5, length=(8, 8), gc_min=1.0, gc_max=1.0, forbid=("GG", "CC", "GC", "CG"), exclude=[],
                          max_score_norm=1.0, rng=derive_rng(1, "bg"), max_candidates=2000)


@pytest.mark.parametrize("fmt, writer, suffix", [("meme", format_meme, "meme"), ("jaspar", format_jaspar, "jaspar"),
                                                 ("artifact", format_artifact, "json")])
def test_same_pwm_in_every_format_gives_the_same_pool(demo_workspace, fmt, writer, suffix):
    """RegulonDB counts converted to MEME (with nsites) / JASPAR / JSON sample exactly the same sites."""
    base = load_config(demo_workspace("demo_pwm"))
    ref, _ = load_input(base, base.model.inputs[0], seed=4)
    motifs = parse_regulondb(PSSM_SUBSET.read_text())
    cfg_path = demo_workspace("demo_pwm", dest=f"as_{fmt}",
                              edit=lambda r: r["inputs"][0].update(format=fmt, path=f"inputs/motifs.{suffix}"))
    (cfg_path.parent / "inputs" / f"motifs.{suffix}").write_text(writer(motifs))
    cfg = load_config(cfg_path)
    got, _ = load_input(cfg, cfg.model.inputs[0], seed=4)
    assert [(s.regulator, s.sequence) for s in got] == [(s.regulator, s.sequence) for s in ref]


def test_regulondb_errors_name_the_line():
    lines = PSSM_SUBSET.read_text().splitlines()
    k = next(i for i, ln in enumerate(lines) if ln.startswith("A\t"))
    bad = lines[:k] + ["A\tx" + lines[k][3:]] + lines[k + 1:]
    with pytest.raises(InputError, match=rf"pssm.txt:{k + 1}: expected numbers"):
        parse_regulondb("\n".join(bad), "pssm.txt")
    short = lines[:k] + [lines[k].rsplit("\t", 1)[0]] + lines[k + 1:]
    with pytest.raises(InputError, match="count rows have different lengths"):
        parse_regulondb("\n".join(short), "pssm.txt")
    with pytest.raises(InputError, match="no 'Transcription Factor ID:' blocks"):
        parse_regulondb("MOTIF x\n", "pssm.txt")
