"""`infer run` / `infer presets`: write-back, incremental reruns, outputs, and one-line errors that change nothing."""

from __future__ import annotations

import json
import os

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from dnadesign.core import events as ev
from dnadesign.core.motifs import format_meme
from dnadesign.infer.cli import app
from dnadesign.infer.presets import REGULONDB_PSSM, read_motifs
from dnadesign.infer.pwm_scan import PwmScanner
from dnadesign.infer.run import run_lock
from dnadesign.usr.cli import app as usr_app
from dnadesign.usr.manifest import Manifest
from dnadesign.usr.schema import make_records
from dnadesign.usr.store import Dataset
from tests.conftest import invoke, run_cli
from tests.infer.conftest import DS, make_dataset, overlay_ids, random_seqs, state

NS = "infer__regulondb"  # the column prefix; the overlay namespace is "infer"
OV = "infer"


def infer(root, *args: str, **kw):
    return invoke(app, "run", "--root", str(root), *args, **kw)


def run_args(*extra: str, preset: str = "regulondb/pwm_scan", ds: str = DS) -> list[str]:
    return ["--preset", preset, "--usr", ds, "--field", "sequence", "--device", "cpu", *extra]


def health(root, ds: str = DS) -> list[dict]:
    return [e for e in ev.read_events(root / ds / ".events.log") if e["action"] == "infer_health"]


def test_write_back_commits_one_overlay_part_per_batch_with_types_and_events(root):
    make_dataset(root, 250, seed=1)
    r = infer(root, *run_args("--write-back", "--batch-size", "100", "--json"))
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert (res["scored"], res["batches"], res["skipped"], res["namespace"]) == (250, 3, 0, OV)
    man = Manifest.load(root / DS / "manifest.json")
    assert [e.rows for e in man.overlays[OV]] == [100, 100, 50]
    assert man.columns[f"{NS}__hits_total"] == "int32" and man.columns[f"{NS}__lexa_best"] == "double"
    assert man.columns[f"{NS}__top_tf"] == "string" and len([c for c in man.columns if c.startswith(NS)]) == 92 * 2 + 3
    # the stored values are the scanner's, row for row
    frame = Dataset.open(root, DS).scan().collect()
    direct = PwmScanner(read_motifs(REGULONDB_PSSM, "regulondb")).score(pa.array(frame["sequence"].to_list()))
    assert frame[f"{NS}__hits_total"].to_list() == direct["hits_total"].to_pylist()
    assert frame[f"{NS}__crp_best"].to_list() == direct["crp_best"].to_pylist()
    # events: started, then (attach, running) per batch, then completed; all by the infer actor
    log = [e for e in ev.read_events(root / DS / ".events.log") if e["actor"]["tool"] == "infer"]
    assert [e["action"] for e in log] == ["infer_health"] + ["attach", "infer_health"] * 3 + ["infer_health"]
    assert [e["args"]["status"] for e in log if e["action"] == "infer_health"] == ["started", "running", "running", "running", "completed"]
    assert [e["args"]["batch"] for e in log if e["action"] == "attach"] == [1, 2, 3]
    assert [e["metrics"]["scored"] for e in log if e["action"] == "infer_health"] == [0, 100, 200, 250, 250]
    assert log[-1]["metrics"]["percent"] == 100.0 and log[0]["args"]["preset"] == "regulondb/pwm_scan"
    assert len({e["actor"]["run_id"] for e in log}) == 1
    assert "infer regulondb/pwm_scan: 250 row(s) scored" in (root / DS / "meta.md").read_text()
    v = invoke(usr_app, "--root", str(root), "validate", DS)
    assert v.returncode == 0 and "OK" in v.stdout, v.stdout


def test_incremental_rerun_scores_only_new_rows_and_overwrite_rescores(root):
    make_dataset(root, 120, seed=2)
    assert infer(root, *run_args("--write-back")).returncode == 0
    Dataset.open(root, DS).append(make_records(random_seqs(30, 99), source="more"))
    r = infer(root, *run_args("--write-back", "--json"))
    res = json.loads(r.stdout)
    assert (res["scored"], res["skipped"], res["visible_rows"]) == (30, 120, 150)
    ids = overlay_ids(root, OV)
    assert len(ids) == len(set(ids)) == 150  # every row scored exactly once
    before = state(root)
    r = infer(root, *run_args("--write-back"))
    assert r.returncode == 0 and "Nothing to score" in r.stdout and "--overwrite" in r.stdout
    assert state(root) == before  # a no-op run writes nothing, not even an event
    r = infer(root, *run_args("--write-back", "--overwrite", "--json"))
    assert json.loads(r.stdout)["scored"] == 150
    assert len(overlay_ids(root, OV)) == 300
    assert Dataset.open(root, DS).scan().collect().height == 150


def test_tombstoned_rows_are_not_scored(root):
    ds = make_dataset(root, 50, seed=4)
    gone = ds.scan().collect()["id"].to_list()[:5]
    ds.delete(gone, reason="bad design")
    assert json.loads(infer(root, *run_args("--write-back", "--json")).stdout)["scored"] == 45
    assert not set(gone) & set(overlay_ids(root, OV))


def test_without_write_back_nothing_is_stored_and_out_files_are_written(root, tmp_path):
    make_dataset(root, 80, seed=3)
    before = state(root)
    r = infer(root, *run_args())
    assert r.returncode == 0 and "not stored: add --write-back" in r.stdout and "acrr" in r.stdout
    pq_out, csv_out = tmp_path / "scores.parquet", tmp_path / "scores.csv"
    assert infer(root, *run_args("--out", str(pq_out), "--batch-size", "30")).returncode == 0
    assert infer(root, *run_args("--out", str(csv_out))).returncode == 0
    assert state(root) == before
    t = pq.read_table(pq_out)
    assert t.num_rows == 80 and t.column_names[0] == "id" and f"{NS}__hits_total" in t.column_names
    assert pacsv.read_csv(csv_out).num_rows == 80
    assert not list(tmp_path.glob(".*.tmp"))


def test_user_motif_file_with_a_model_name(root, tmp_path):
    make_dataset(root, 60, seed=5)
    motifs = tmp_path / "my.meme"
    motifs.write_text(format_meme(read_motifs(REGULONDB_PSSM, "regulondb")[:3]))
    r = infer(root, *run_args("--write-back", "--motifs", str(motifs), "--name", "my_set", "--pvalue", "1e-3", preset="pwm/scan"))
    assert r.returncode == 0, r.stderr
    cols = Manifest.load(root / DS / "manifest.json").columns
    assert {"infer__my_set__acrr_best", "infer__my_set__agar_hits", "infer__my_set__hits_total"} <= set(cols)
    start = next(e for e in health(root) if e["args"]["status"] == "started")
    assert start["args"]["params"]["pvalue"] == 1e-3 and start["args"]["params"]["motifs"] == 3


def test_markov_preset_writes_log_likelihoods(root, tmp_path):
    make_dataset(root, 40, seed=6)
    fa = tmp_path / "genome.fa"
    fa.write_text(">chr\n" + "\n".join(random_seqs(50, 7, 80)) + "\n")
    r = infer(root, *run_args("--write-back", "--train-fasta", str(fa), "--k", "5", preset="markov/loglik"))
    assert r.returncode == 0, r.stderr
    frame = Dataset.open(root, DS).scan().collect()
    assert frame["infer__markov5__ll"].null_count() == 0 and (frame["infer__markov5__ll"] < 0).all()
    start = next(e for e in health(root) if e["args"]["status"] == "started")
    assert start["args"]["params"]["train_fasta"] == "genome.fa" and len(start["args"]["params"]["train_sha256"]) == 64


def test_presets_listing(monkeypatch, tmp_path):
    monkeypatch.delenv("DNADESIGN_EVO2_CHECKPOINT", raising=False)
    r = run_cli("infer", "presets", "--json")
    assert r.returncode == 0, r.stderr
    rows = {p["preset"]: p for p in json.loads(r.stdout)}
    assert {"regulondb/pwm_scan", "pwm/scan", "markov/loglik", "evo2/extract_logits_ll", "evo2/extract_embedding"} <= set(rows)
    assert rows["regulondb/pwm_scan"]["available"] and rows["markov/loglik"]["needs"] == "--train-fasta FILE"
    evo = rows["evo2/extract_logits_ll"]
    assert not evo["available"]
    assert any("evo2 package is not installed" in x for x in evo["reasons"])
    assert any("no checkpoint is configured" in x for x in evo["reasons"])
    ckpt = tmp_path / "evo2_7b.pt"
    ckpt.write_bytes(b"not a real checkpoint")
    r = run_cli("infer", "presets", "--json", env={"DNADESIGN_EVO2_CHECKPOINT": str(tmp_path)})
    evo = {p["preset"]: p for p in json.loads(r.stdout)}["evo2/extract_logits_ll"]
    assert not any("checkpoint" in x for x in evo["reasons"])
    r = run_cli("infer", "presets")
    assert r.returncode == 0 and "regulondb/pwm_scan" in r.stdout and "not installed" in r.stdout


def _one_line_failure(r, code: int, *needles: str) -> None:
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    assert len(lines) == 1 and lines[0].startswith("infer: error:"), r.stderr
    assert "Traceback" not in r.stderr and not r.stdout.strip()
    for n in needles:
        assert n in lines[0], lines[0]


def test_bad_input_is_one_line_and_leaves_the_dataset_unchanged(root, tmp_path):
    make_dataset(root, 30, seed=8)
    before = state(root)
    env = {"DNADESIGN_USR_ROOT": str(root)}

    def argv(flags: tuple[str, ...] = ("--write-back",), **over: str) -> list[str]:
        opts = {"preset": "regulondb/pwm_scan", "usr": DS, "field": "sequence", "device": "cpu", **over}
        return [x for k, v in opts.items() for x in (f"--{k.replace('_', '-')}", v)] + list(flags)

    cases = [
        (2, argv(preset="regulondb/nope"), ["unknown preset 'regulondb/nope'", "regulondb/pwm_scan"]),
        (1, argv(field="seqeunce"), ["has no column 'seqeunce'", "sequence"]),
        (1, argv(field="length"), ["not sequences"]),
        (1, argv(usr="demo/missing"), ["dataset demo/missing does not exist", "usr pull"]),
        (1, argv(usr="../etc"), ["invalid dataset id"]),
        (2, argv(device="tpu"), ["unknown --device 'tpu'"]),
        (2, argv(("--overwrite",)), ["--overwrite only applies with --write-back"]),
        (2, argv(preset="pwm/scan"), ["pwm/scan needs --motifs FILE"]),
        (1, argv(preset="pwm/scan", motifs=str(tmp_path / "none.meme")), ["does not exist"]),
        (1, argv(preset="markov/loglik", train_fasta=str(tmp_path / "none.fa")), ["does not exist"]),
        (2, argv(name="Bad__Name"), ["cannot be used in column names"]),
    ]
    for code, args, needles in cases:
        r = run_cli("infer", "run", *args, env=env)
        _one_line_failure(r, code, *needles)
        assert state(root) == before, args


def test_a_second_writer_is_refused_while_the_run_lock_is_held(root):
    ds = make_dataset(root, 20, seed=9)
    before = state(root)
    with run_lock(ds, NS):
        r = run_cli("infer", "run", *run_args("--write-back"), env={"DNADESIGN_USR_ROOT": str(root)})
    _one_line_failure(r, 1, "infer run lock", "is held by pid")
    assert state(root) == before
    assert infer(root, *run_args("--write-back")).returncode == 0  # released: the next run works


def test_a_column_recorded_with_another_type_is_a_conflict(root):
    ds = make_dataset(root, 20, seed=10)
    ids = ds.scan().collect()["id"].to_list()
    ds.write_overlay(OV, pa.table({"id": ids[:2], f"{NS}__hits_total": ["x", "y"]}))
    before = state(root)
    r = run_cli("infer", "run", *run_args("--write-back"), env={"DNADESIGN_USR_ROOT": str(root)})
    _one_line_failure(r, 1, f"{NS}__hits_total", "recorded as string", "--name")
    assert state(root) == before


# -- Evo2: the paths that can be exercised without the package, a checkpoint or a GPU -----------
@pytest.mark.parametrize("case", ["no-checkpoint", "missing-checkpoint", "no-cuda"])
def test_evo2_unavailable_is_one_line_naming_what_is_missing(root, tmp_path, case):
    make_dataset(root, 10, seed=11)
    before = state(root)
    env = {"DNADESIGN_USR_ROOT": str(root), "DNADESIGN_EVO2_CHECKPOINT": ""}
    extra: list[str] = []
    device = "cpu"
    if case == "missing-checkpoint":
        extra = ["--checkpoint", str(tmp_path / "nowhere" / "evo2_7b.pt")]
    if case == "no-cuda":
        ckpt = tmp_path / "ckpt"
        ckpt.mkdir()
        (ckpt / "evo2_7b.pt").write_bytes(b"placeholder")
        env["DNADESIGN_EVO2_CHECKPOINT"] = str(ckpt)
        device = "cuda"
    r = run_cli("infer", "run", "--preset", "evo2/extract_logits_ll", "--usr", DS, "--field", "sequence", "--device", device,
                "--write-back", *extra, env=env)
    needles = {"no-checkpoint": ["no checkpoint is configured", "DNADESIGN_EVO2_CHECKPOINT"],
               "missing-checkpoint": ["nowhere/evo2_7b.pt does not exist"],
               "no-cuda": ["no CUDA device is visible"]}[case]
    _one_line_failure(r, 1, "evo2/extract_logits_ll cannot run here", "evo2 package is not installed", "uv sync --extra evo2", *needles)
    if case == "no-cuda":
        assert "checkpoint" not in r.stderr
    assert state(root) == before


def test_seed_command_form_with_default_root(root, monkeypatch):
    """`infer run` without --root uses $DNADESIGN_USR_ROOT, as `usr` does (seed 001 step 4)."""
    make_dataset(root, 25, seed=12)
    r = run_cli("infer", "run", *run_args("--write-back"), env={"DNADESIGN_USR_ROOT": str(root)})
    assert r.returncode == 0, r.stderr
    assert "Scored 25 row(s)" in r.stdout and not r.stderr.strip()  # no progress bar outside a terminal
    r = run_cli("infer", "--root", str(root), "run", *run_args("--write-back"))  # the global --root, as `usr --root`
    assert r.returncode == 0 and "Nothing to score" in r.stdout, r.stderr


def test_progress_bar_is_drawn_on_a_terminal_only(root):
    """stderr on a pseudo-terminal gets the bar; a pipe gets nothing (test_seed_command_form_with_default_root)."""
    import pty
    import subprocess

    from tests.conftest import script

    make_dataset(root, 300, seed=13)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SGE_")) and k not in ("JOB_ID", "NSLOTS")}
    env.update({"DNADESIGN_USR_ROOT": str(root), "COLUMNS": "120", "TERM": "xterm"})
    master, slave = pty.openpty()
    proc = subprocess.Popen([script("infer"), "run", *run_args("--write-back", "--batch-size", "100")], env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    proc.wait(timeout=120)
    assert proc.returncode == 0
    drawn = b"".join(chunks).decode(errors="replace")
    assert "regulondb/pwm_scan" in drawn and "300/300" in drawn and "100.0%" in drawn
