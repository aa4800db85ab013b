"""The vectorised scorers against plain-Python reference implementations, on real RegulonDB matrices."""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dnadesign.core.errors import InputError, NotFoundError
from dnadesign.core.motifs import Motif, format_jaspar, format_meme, read_motifs
from dnadesign.infer import markov
from dnadesign.infer.encode import buckets, code_matrix, pack
from dnadesign.infer.presets import REGULONDB_PSSM, detect_motif_format
from dnadesign.infer.pwm_scan import PwmScanner, column_stem, prepare

MOTIFS = read_motifs(REGULONDB_PSSM, "regulondb")
COMP = str.maketrans("ACGTN", "TGCAN")
IDX = {"A": 0, "C": 1, "G": 2, "T": 3}


def reference_scan(seq: str | None, m) -> tuple[float | None, int]:
    """Best score (bits) and hits of one matrix, both strands, by looping over every window."""
    if not seq:
        return None, 0
    seq = seq.upper().replace("U", "T")
    best, hits = None, 0
    for strand in (seq, seq.translate(COMP)[::-1]):
        for p in range(len(strand) - m.width + 1):
            win = strand[p:p + m.width]
            if any(b not in IDX for b in win):
                continue
            s = sum(int(m.scores[j, IDX[b]]) for j, b in enumerate(win))
            best = s if best is None or s > best else best
            hits += s >= m.threshold
    return (None if best is None else best / 100), hits


@pytest.fixture(scope="module")
def scanner() -> PwmScanner:
    return PwmScanner(MOTIFS)


def test_bundled_regulondb_matrices_load():
    assert len(MOTIFS) == 92 and {"LexA", "CRP", "Fis", "IHF"} <= {m.name for m in MOTIFS}
    assert len({column_stem(m.name) for m in MOTIFS}) == 92


def test_scan_matches_the_reference_on_mixed_input(scanner):
    r = random.Random(7)
    seqs: list[str | None] = ["".join(r.choice("ACGT") for _ in range(r.randint(4, 130))) for _ in range(120)]
    seqs[1] = seqs[1][:8] + "NNRY" + seqs[1][12:]  # ambiguity codes break windows
    seqs[2] = seqs[2].lower()  # lower case is the same sequence
    seqs[3] = None
    seqs[4] = ""
    # a LexA consensus site planted in the reverse orientation must be found on the minus strand
    lexa = next(m for m in scanner.motifs if m.name == "LexA")
    site = "".join("ACGT"[i] for i in lexa.scores.argmax(axis=1))
    seqs[5] = "A" * 20 + site.translate(COMP)[::-1] + "A" * 20
    out = scanner.score(pa.array(seqs, pa.string()))
    for i, seq in enumerate(seqs):
        for m in scanner.motifs[i % 4::4]:  # every matrix is checked on a quarter of the sequences
            best, hits = reference_scan(seq, m)
            assert out[f"{m.stem}_best"][i].as_py() == best, (i, m.name)
            assert out[f"{m.stem}_hits"][i].as_py() == hits, (i, m.name)
    assert out["lexa_hits"][5].as_py() >= 1 and out["lexa_best"][5].as_py() == lexa.scores.max(axis=1).sum() / 100
    assert out["top_tf"][3].as_py() is None and out["hits_total"][3].as_py() == 0
    assert out["lexa_best"][2].as_py() == reference_scan(seqs[2], lexa)[0]


def test_hits_total_and_top_regulator_agree_with_the_columns(scanner):
    seqs = ["".join(random.Random(i).choice("ACGT") for _ in range(150)) for i in range(60)]
    out = scanner.score(pa.array(seqs))
    for i in range(len(seqs)):
        assert out["hits_total"][i].as_py() == sum(out[f"{m.stem}_hits"][i].as_py() for m in scanner.motifs)
        pvals = {m.name: float(m.pvalue(np.array([round(out[f"{m.stem}_best"][i].as_py() * 100)]))[0]) for m in scanner.motifs
                 if out[f"{m.stem}_best"][i].as_py() is not None}
        assert out["top_pvalue"][i].as_py() == pytest.approx(min(pvals.values()))
        assert pvals[out["top_tf"][i].as_py()] == pytest.approx(min(pvals.values()))


def test_pvalue_threshold_is_exact_for_a_small_matrix():
    """For a 6-wide matrix every one of the 4096 words can be scored: the threshold keeps p <= 1e-3."""
    rows = [[8, 1, 1, 0], [0, 9, 1, 0], [1, 1, 7, 1], [2, 2, 2, 4], [0, 0, 10, 0], [5, 1, 1, 3]]
    (m,) = prepare([Motif("toy", tuple(tuple(float(x) for x in r) for r in rows))], 1e-3)
    scores = np.array([sum(int(m.scores[j, b]) for j, b in enumerate(word)) for word in itertools.product(range(4), repeat=6)])
    frac_at_or_above = (scores >= m.threshold).mean()
    assert frac_at_or_above <= 1e-3
    assert (scores >= m.threshold - 1).mean() > 1e-3 or m.threshold - 1 < scores.min()  # the smallest such threshold
    for s in np.unique(scores):
        assert m.pvalue(np.array([s]))[0] == pytest.approx((scores >= s).mean())


def test_motif_files_in_every_format_scan_alike(tmp_path):
    subset = MOTIFS[:5]
    (tmp_path / "m.meme").write_text(format_meme(subset))
    (tmp_path / "m.jaspar").write_text(format_jaspar(subset))
    (tmp_path / "noext").write_text(format_meme(subset))
    assert detect_motif_format(tmp_path / "noext", None) == "meme"
    assert detect_motif_format(REGULONDB_PSSM, None) == "regulondb"
    seqs = pa.array(["".join(random.Random(i).choice("ACGT") for _ in range(80)) for i in range(40)])
    a = PwmScanner(read_motifs(tmp_path / "m.jaspar", "jaspar")).score(seqs)
    b = PwmScanner(subset).score(seqs)  # counts: JASPAR keeps them exactly
    assert a["hits_total"].to_pylist() == b["hits_total"].to_pylist()
    assert a[f"{column_stem(subset[0].name)}_best"].to_pylist() == b[f"{column_stem(subset[0].name)}_best"].to_pylist()
    c = PwmScanner(read_motifs(tmp_path / "m.meme", "meme")).score(seqs)  # probabilities: smoothed slightly differently
    assert len(c["hits_total"]) == 40


@settings(max_examples=40, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(alphabet="ACGTNacgtu", max_size=60)), max_size=25))
def test_scan_property_against_reference(values):
    scanner = PwmScanner(MOTIFS[10:14])
    out = scanner.score(pa.array(values, pa.string()))
    for i, seq in enumerate(values):
        for m in scanner.motifs:
            best, hits = reference_scan(seq, m)
            assert out[f"{m.stem}_best"][i].as_py() == best
            assert out[f"{m.stem}_hits"][i].as_py() == hits


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 300), max_size=80), st.integers(1, 2000))
def test_buckets_cover_every_row_once_within_the_cell_budget(lengths, cells):
    arr = np.array(lengths, dtype=np.int64)
    seen = []
    for rows in buckets(arr, cells):
        seen += rows.tolist()
        assert len(rows) == 1 or len(rows) * max(1, int(arr[rows].max())) <= cells
    assert sorted(seen) == list(range(len(lengths)))


def test_pack_reads_sliced_chunked_and_view_strings():
    base = pa.array(["xx", "ACGT", None, "ggu"], pa.string())
    for arr in (base.slice(1), pa.chunked_array([base.slice(1, 1), base.slice(2)]), base.slice(1).cast(pa.string_view())):
        p = pack(arr)
        assert p.lengths.tolist() == [4, 0, 3] and p.valid.tolist() == [True, False, True]
        X, _lengths = code_matrix(p, np.arange(3), pad=1)
        assert X.tolist() == [[0, 1, 2, 3, 4], [4, 4, 4, 4, 4], [2, 2, 3, 4, 4]]


# -- the Markov background model ----------------------------------------------------------------
def _write_fasta(path: Path, records: dict[str, str], width: int = 60) -> None:
    with open(path, "w") as fh:
        for name, seq in records.items():
            fh.write(f">{name} description\n")
            for i in range(0, len(seq), width):
                fh.write(seq[i:i + width] + "\n")


def _reference_counts(seqs: list[str], k: int) -> dict[int, Counter]:
    counts: dict[int, Counter] = {m: Counter() for m in range(1, k + 1)}
    for s in seqs:
        s = s.upper()
        for strand in (s, s.translate(COMP)[::-1]):
            for m in range(1, k + 1):
                for i in range(len(strand) - m + 1):
                    w = strand[i:i + m]
                    if set(w) <= set("ACGT"):
                        counts[m][w] += 1
    return counts


def _reference_ll(seq: str, counts: dict[int, Counter], k: int) -> tuple[float, int]:
    ll, n = 0.0, 0
    for p in range(len(seq)):
        w = seq[max(0, p - k + 1): p + 1]
        if not set(w) <= set("ACGT"):
            continue
        m = len(w)
        num = counts[m][w] + 1.0
        den = sum(counts[m][w[:-1] + b] + 1.0 for b in "ACGT")
        ll += math.log(num / den)
        n += 1
    return ll, n


@pytest.mark.parametrize("chunk", [1 << 20, 700])
def test_markov_training_and_scoring_match_the_reference(tmp_path, monkeypatch, chunk):
    monkeypatch.setattr(markov, "CHUNK_BASES", chunk)  # small pieces exercise the overlap between them
    r = random.Random(11)
    recs = {"chr1": "".join(r.choice("AACGTTT") for _ in range(3000)),
            "plasmid": "".join(r.choice("ACGT") for _ in range(500)) + "NNNN" + "acgtgca" * 30}
    fa = tmp_path / "genome.fa"
    _write_fasta(fa, recs)
    k = 4
    model = markov.MarkovModel.train(fa, k)
    ref = _reference_counts(list(recs.values()), k)
    assert model.bases == sum(sum(c in "ACGTacgt" for c in s) for s in recs.values())
    tests = ["ACGTACGTTAGC", "A", "GT", "ACNGTTTAAC", "TTTTTTTTTTTTTTTT", "NNN", "acgu"]
    ll, scored, _valid = model.loglik(pa.array(tests))
    for t, got, n in zip(tests, ll, scored, strict=True):
        exp, n_exp = _reference_ll(t.upper().replace("U", "T"), ref, k)
        assert got == pytest.approx(exp, abs=1e-9) and n == n_exp, t
    out = markov.MarkovScorer(model).score(pa.array([*tests, None]))
    assert out["ll"][7].as_py() is None and out["ll_per_base"][5].as_py() is None and out["ll"][5].as_py() == 0.0
    assert out["ll_per_base"][0].as_py() == pytest.approx(ll[0] / 12)


def test_markov_bad_inputs_are_one_line_errors(tmp_path):
    with pytest.raises(NotFoundError, match="does not exist"):
        markov.MarkovModel.train(tmp_path / "missing.fa", 5)
    bad = tmp_path / "bad.fa"
    bad.write_text("ACGT\n>x\nACGT\n")
    with pytest.raises(InputError, match="line 1: sequence data before the first '>'"):
        markov.MarkovModel.train(bad, 5)
    empty = tmp_path / "empty.fa"
    empty.write_text(">x\n\n>y\n")
    with pytest.raises(InputError, match="no FASTA records with sequence"):
        markov.MarkovModel.train(empty, 5)
    with pytest.raises(InputError, match="out of range"):
        markov.MarkovModel.train(bad, 13)


def test_markov_prefers_sequences_like_its_training_data(tmp_path):
    r = random.Random(2)
    fa = tmp_path / "at_rich.fa"
    _write_fasta(fa, {"g": "".join(r.choice("AAATTTCG") for _ in range(20000))})
    scorer = markov.MarkovScorer(markov.MarkovModel.train(fa, 6))
    out = scorer.score(pa.array(["".join(r.choice("AAATTTCG") for _ in range(100)), "".join(r.choice("GGGCCCAT") for _ in range(100))]))
    assert out["ll"][0].as_py() > out["ll"][1].as_py() + 20
