"""CLI contracts: `send` exit codes (issue 11.5), one cursor and spool per profile (issue 11.8), help texts and
start-up (issue 15)."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from typer.main import get_command

from dnadesign.notify.cli import app
from dnadesign.notify.cursor import CursorState, load_cursor, save_cursor

from .conftest import SECRET_TOKEN, run_notify
from .helpers_notify import write_profile

HOOK = f"https://hooks.slack.com/services/T000/B000/{SECRET_TOKEN}"


# ------------------------------------------------------------------------------------------- send
@pytest.mark.parametrize("code", [400, 301])
def test_send_exits_1_when_the_message_is_dead_lettered(tmp_path, server, code):
    server.default = ("status", code, {"Location": "https://elsewhere.example/x"} if code == 301 else {})
    prof = write_profile(tmp_path)
    r = run_notify("send", "--profile", str(prof), "--status", "failure", "--message", "x", env={"NOTIFY_TEST_URL": server.url})
    assert r.returncode == 1, r.stderr
    assert f"HTTP {code}" in r.stderr and "rejected" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert SECRET_TOKEN not in r.stdout + r.stderr and "Traceback" not in r.stderr
    dead = list((tmp_path / "spool" / "dead").glob("*.json"))
    assert len(dead) == 1 and f"HTTP {code}" in json.loads(dead[0].read_text())["reason"]
    assert len(server.requests) == 1  # a permanent answer is not retried

    j = run_notify("send", "--profile", str(prof), "--message", "x", "--json", env={"NOTIFY_TEST_URL": server.url})
    assert j.returncode == 1 and json.loads(j.stdout)["outcome"] == "dead-lettered" and not json.loads(j.stdout)["ok"]


def test_send_spooled_exits_0_and_says_how_it_will_be_sent(tmp_path, server):
    server.default = ("status", 503)
    prof = write_profile(tmp_path)
    r = run_notify("send", "--profile", str(prof), "--message", "x", env={"NOTIFY_TEST_URL": server.url})
    assert r.returncode == 0 and "spooled" in r.stderr and "uv run notify spool drain" in r.stderr
    assert len(list((tmp_path / "spool").glob("*.json"))) == 1


# ------------------------------------------------------------------------------ cursor per profile
def _wizard(tmp_path, name, *extra, events="ds/.events.log"):
    return run_notify("profile", "wizard", "--profile", str(tmp_path / name), "--provider", "slack",
                      "--events", str(tmp_path / events), "--secret-source", "env", "--url-env", "HOOK", *extra,
                      env={"HOOK": HOOK})


def test_two_profiles_in_one_directory_get_their_own_cursor_and_spool(tmp_path):
    assert _wizard(tmp_path, "slack.json").returncode == 0
    assert _wizard(tmp_path, "team.json").returncode == 0
    a, b = (json.loads((tmp_path / n).read_text()) for n in ("slack.json", "team.json"))
    assert a["cursor"] == str(tmp_path / "slack.cursor") and b["cursor"] == str(tmp_path / "team.cursor")
    assert a["spool_dir"] == str(tmp_path / "slack.spool") and b["spool_dir"] == str(tmp_path / "team.spool")
    # an explicit cursor another profile already uses is refused
    r = _wizard(tmp_path, "third.json", "--cursor", str(tmp_path / "slack.cursor"))
    assert r.returncode == 2 and "already used by profile" in r.stderr and "third.cursor" in r.stderr


def test_rerunning_the_wizard_keeps_the_profiles_cursor(tmp_path):
    old = tmp_path / "old-place" / "my.cursor"
    assert _wizard(tmp_path, "p.json", "--cursor", str(old)).returncode == 0
    r = _wizard(tmp_path, "p.json", "--force")
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "p.json").read_text())["cursor"] == str(old)


def test_upgrade_carries_the_old_shared_default_cursor_over_once(tmp_path):
    """A user of the older default (`notify.cursor` beside the profile) recreates the profile: no replay of history."""
    events = tmp_path / "ds" / ".events.log"
    legacy = tmp_path / "notify.cursor"
    save_cursor(legacy, CursorState(events=str(events), offset=4242))
    r = _wizard(tmp_path, "notify.profile.json")
    assert r.returncode == 0, r.stderr
    assert "continuing from the older shared cursor" in r.stdout
    new = tmp_path / "notify.profile.cursor"
    assert load_cursor(new).offset == 4242 and (new.stat().st_mode & 0o777) == 0o600
    assert legacy.exists()  # copied, not moved
    # a legacy cursor that another (old) profile still names is left to that profile
    other = tmp_path / "other"
    other.mkdir()
    save_cursor(other / "notify.cursor", CursorState(events=str(events), offset=99))
    shutil.copy(tmp_path / "notify.profile.json", other / "old.json")
    data = json.loads((other / "old.json").read_text())
    data["cursor"] = str(other / "notify.cursor")
    (other / "old.json").write_text(json.dumps(data))
    r = _wizard(other, "new.json")
    assert r.returncode == 0 and "belongs to another profile" in r.stdout
    assert not (other / "new.cursor").exists()


def test_doctor_fails_when_two_profiles_share_a_cursor(tmp_path):
    assert _wizard(tmp_path, "a.json").returncode == 0
    data = json.loads((tmp_path / "a.json").read_text())
    (tmp_path / "b.json").write_text(json.dumps({**data, "spool_dir": str(tmp_path / "b.spool")}))  # an old-style pair
    os.chmod(tmp_path / "b.json", 0o600)
    d = run_notify("profile", "doctor", "--profile", str(tmp_path / "b.json"), "--json", env={"HOOK": HOOK})
    assert d.returncode == 1
    sharing = next(c for c in json.loads(d.stdout)["checks"] if c["name"] == "sharing")
    assert sharing["status"] == "fail" and "a.json" in sharing["detail"] and "b.cursor" in sharing["fix"]


def test_wizard_next_steps_use_uv_run(tmp_path):
    r = _wizard(tmp_path, "p.json")
    steps = [ln.strip() for ln in r.stdout.splitlines() if ln.strip()[:2] in ("1.", "2.", "3.", "4.")]
    assert len(steps) == 4 and all(s.split(" ", 1)[1].startswith("uv run notify ") for s in steps)


# ------------------------------------------------------------------------------------------- help
def _commands(group, prefix=()):
    for name, cmd in sorted(getattr(group, "commands", {}).items()):
        yield (*prefix, name), cmd
        yield from _commands(cmd, (*prefix, name))


def test_every_option_of_every_command_has_help():
    root = get_command(app)
    missing = []
    for path, cmd in _commands(root):
        assert cmd.help, f"notify {' '.join(path)} has no description"
        for p in cmd.params:
            if p.param_type_name == "option" and not (p.help or "").strip():
                missing.append(f"notify {' '.join(path)} {p.opts[0]}")
    assert not missing, missing


def test_flags_show_no_value_placeholder_and_names_are_not_cut(tmp_path):
    root = get_command(app)
    for path, cmd in _commands(root):
        if getattr(cmd, "commands", None):
            continue
        r = run_notify(*path, "--help", env={"COLUMNS": "80"})
        assert r.returncode == 0
        assert "<bool>" not in r.stdout and "…" not in r.stdout, path
        for p in cmd.params:
            for opt in p.opts:
                if opt.startswith("--"):
                    assert opt in r.stdout, (path, opt)


def test_help_imports_no_heavy_module():
    code = ("import sys; from dnadesign.notify.cli import main; sys.argv=['notify','usr-events','watch','--help']\n"
            "try:\n main()\nexcept SystemExit:\n pass\n"
            "heavy=[m for m in ('httpx','apprise','pydantic','rich','dnadesign.notify.doctor','requests') if m in sys.modules]\n"
            "print('HEAVY', heavy)")
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
    assert "HEAVY []" in out, out

