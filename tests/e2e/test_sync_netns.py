"""Sync with a second host in a network namespace whose link is cut mid-transfer."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from dnadesign.usr.cli import app
from dnadesign.usr.manifest import Manifest
from dnadesign.usr.schema import make_records
from dnadesign.usr.store import Dataset
from tests.usr.sync.sshd_fixtures import netns_env, netns_host  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(150)]
DS = "hpc/big"


def _usr(*args: str, code: int = 0):
    res = CliRunner().invoke(app, list(args))
    assert res.exit_code == code, f"usr {' '.join(args)} -> {res.exit_code}\n{res.output}\n{res.exception!r}"
    return res


def _big_dataset(root) -> Dataset:
    ds = Dataset.create(root, DS, source="hpc")
    rnd = random.Random(9)
    ds.append(make_records(["".join(rnd.choice("ACGT") for _ in range(2000)) for _ in range(1200)], source="hpc"))
    ds.append(make_records(["".join(rnd.choice("ACGT") for _ in range(60)) for _ in range(50)], source="hpc"))
    return ds


def test_link_cut_mid_pull_leaves_both_valid_and_rerun_completes(netns_env):
    L, R = netns_env.local_root, netns_env.remote_root
    remote = _big_dataset(R)
    remote_manifest = (R / DS / "manifest.json").read_bytes()
    _usr("diff", DS, "far", code=3)  # reachable over the veth link; local copy absent

    env = dict(os.environ, USR_SYNC_IO_TIMEOUT="6")
    proc = subprocess.Popen([sys.executable, "-c", "from dnadesign.usr.cli import main; main()", "--root", str(L), "pull", DS, "far", "-y",
                             "--bwlimit", "400"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        staging = L / DS / ".usr-sync" / "in"
        deadline = time.monotonic() + 30
        started = False
        while time.monotonic() < deadline and proc.poll() is None:  # wait for observed progress: 200 KB of a part arrived
            sizes = [p.stat().st_size for p in staging.rglob(".part-*")] if staging.exists() else []
            if sizes and max(sizes) >= 200 * 1024:
                started = True
                break
            time.sleep(0.02)
        assert started, "the transfer never started"
        netns_env.netns.link(False)  # cut the link mid-transfer
        out, err = proc.communicate(timeout=60)
    finally:
        netns_env.netns.link(True)
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
            proc.wait(timeout=10)
    assert proc.returncode == 1, (out, err)
    assert b"interrupted" in err or b"unreachable" in err, err
    assert b"rerun" in err
    # both sides valid: the remote untouched, the local copy has no manifest naming a missing file
    assert (R / DS / "manifest.json").read_bytes() == remote_manifest
    lm = L / DS / "manifest.json"
    if lm.exists():
        man = Manifest.load(lm)
        assert all((L / DS / e.file).exists() for e in man.all_files())
        _usr("--root", str(L), "validate", DS)
    # rerun the same command: it completes, reusing what already arrived
    res = _usr("--root", str(L), "pull", DS, "far", "-y")
    assert "PULL audit: TRANSFERRED" in res.output
    got = Dataset.open(L, DS).scan().select("id").collect()["id"].to_list()
    assert sorted(got) == sorted(remote.scan().select("id").collect()["id"].to_list())
    assert len(got) == 1250
    _usr("--root", str(L), "diff", DS, "far", code=0)
    for root in (L, R):
        res = _usr("--root", str(root), "validate", DS)
        assert "INVALID" not in res.output
