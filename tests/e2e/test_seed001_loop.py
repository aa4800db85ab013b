"""Seed runbook 001 end to end: dense on the "cluster" -> usr pull -> infer --write-back -> usr diff/push.

The cluster is a real sshd + rsync on 127.0.0.1 whose USR root `dense run` writes into; the laptop
is a second USR root. Every `usr` and `infer` command is the runbook's, as a real console script
(the remote is named `bu-scc` as in the runbook; `infer run` finds the laptop root through
$DNADESIGN_USR_ROOT, exactly as the runbook calls it without --root).
"""

from __future__ import annotations

import json

import pytest

from dnadesign.core import events as ev
from dnadesign.usr.store import Dataset
from tests.conftest import run_cli
from tests.densegen.run_fixtures import dense, make_workspace
from tests.usr.sync.sshd_fixtures import sshd_host, sync_env  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]
DATASET_ID = "densegen/my_dataset"
NS = "infer__regulondb"


def usr(root, *args: str, code: int | None = 0):
    r = run_cli("usr", "--root", str(root), *args)
    if code is not None:
        assert r.returncode == code, f"usr {' '.join(args)} -> {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r


def assert_validates(root) -> None:
    r = run_cli("usr", "--root", str(root), "validate", DATASET_ID, "--json")
    rep = json.loads(r.stdout)
    assert r.returncode == 0 and rep["ok"] and not rep["errors"] and rep["rows"] == 6, rep


def test_seed001_dense_pull_infer_push(sync_env, tmp_path):
    local, remote = sync_env.local_root, sync_env.remote_root
    sync_env.profile("bu-scc")

    # 1) preflight
    r = usr(local, "remotes", "doctor", "--remote", "bu-scc")
    assert "Doctor checks passed." in r.stdout
    usr(local, "remotes", "show", "bu-scc")

    # 2) cluster side: a DenseGen batch appends to the cluster's USR root
    config = make_workspace(tmp_path / "ws", quotas={"plain": 3, "sigma70": 3},
                            overrides={"output": {"usr": {"root": str(remote), "dataset": DATASET_ID}}})
    r = dense("run", "--no-plot", "-c", str(config))
    assert r.returncode == 0, r.stderr
    designed = Dataset.open(remote, DATASET_ID).scan().collect()
    assert designed.height == 6

    # 3) laptop: diff, pull, no drift left; look at it
    r = usr(local, "diff", DATASET_ID, "bu-scc", code=3)
    usr(local, "pull", DATASET_ID, "bu-scc", "-y")
    usr(local, "diff", DATASET_ID, "bu-scc", code=0)
    usr(local, "head", DATASET_ID, "-n", "5")
    head = json.loads(usr(local, "head", DATASET_ID, "-n", "5", "--json").stdout)
    assert {h["id"] for h in head} <= set(designed["id"].to_list()) and len(head) == 5
    usr(local, "events", "tail", DATASET_ID, "-n", "10")

    # 4) laptop: infer write-back (the runbook's command form; a built-in preset runs here) ...
    r = run_cli("infer", "run", "--preset", "regulondb/pwm_scan", "--usr", DATASET_ID, "--field", "sequence",
                "--device", "cpu", "--write-back", env={"DNADESIGN_USR_ROOT": str(local)})
    assert r.returncode == 0, r.stderr
    assert "Scored 6 row(s)" in r.stdout
    # ... while the runbook's Evo2 preset says in one line why it cannot run on this machine, and changes nothing
    before = (local / DATASET_ID / "manifest.json").read_bytes()
    r = run_cli("infer", "run", "--preset", "evo2/extract_logits_ll", "--usr", DATASET_ID, "--field", "sequence",
                "--device", "cpu", "--write-back", env={"DNADESIGN_USR_ROOT": str(local), "DNADESIGN_EVO2_CHECKPOINT": ""})
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and "evo2 package is not installed" in r.stderr
    assert (local / DATASET_ID / "manifest.json").read_bytes() == before

    # the diff shows the new overlay; push carries it to the cluster
    r = usr(local, "diff", DATASET_ID, "bu-scc", code=3)
    assert "_derived/infer" in r.stdout, r.stdout
    r = usr(local, "diff", DATASET_ID, "bu-scc", "--json", code=3)
    assert json.loads(r.stdout)["data"]["push_needed"]
    r = usr(local, "push", DATASET_ID, "bu-scc", "-y")
    assert "Push complete." in r.stdout
    usr(local, "diff", DATASET_ID, "bu-scc", code=0)

    # the cluster has the columns, with the laptop's values; both sides validate
    here = Dataset.open(local, DATASET_ID).scan().collect().sort("id")
    there = Dataset.open(remote, DATASET_ID).scan().collect().sort("id")
    cols = [c for c in here.columns if c.startswith(f"{NS}__")]
    assert len(cols) == 92 * 2 + 3 and f"{NS}__lexa_best" in there.columns
    assert there.select(["id", *cols]).equals(here.select(["id", *cols]))
    assert there[f"{NS}__hits_total"].null_count() == 0
    for root in (local, remote):
        assert_validates(root)
    # notify on the cluster sees the run's progress and completion in the synced event log
    statuses = [e["args"]["status"] for e in ev.read_events(remote / DATASET_ID / ".events.log") if e["action"] == "infer_health"]
    assert statuses[0] == "started" and "running" in statuses and statuses[-1] == "completed"

    # 5) a later pull finds nothing left to move
    r = usr(local, "pull", DATASET_ID, "bu-scc", "-y")
    assert "PULL audit: NO-OP" in r.stdout, r.stdout
