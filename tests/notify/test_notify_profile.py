"""Profiles, secrets references, wizard/doctor/show through the real CLI."""

from __future__ import annotations

import json
import os

import pytest

from dnadesign.core.errors import ConfigError
from dnadesign.notify.profile import WebhookRef, load_profile, parse_profile
from dnadesign.notify.secrets_ref import resolve_secret

from .conftest import SECRET_TOKEN, run_notify
from .helpers_notify import write_profile

SEED_URL = f"https://hooks.slack.com/services/T000/B000/{SECRET_TOKEN}"


def _seed_wizard(tmp_path, *extra):
    out = tmp_path / "outputs"
    return run_notify(
        "profile", "wizard", "--profile", str(out / "notify.profile.json"), "--provider", "slack",
        "--events", str(out / "usr_datasets/densegen/demo_hpc/.events.log"), "--cursor", str(out / "notify.cursor"),
        "--spool-dir", str(out / "notify_spool"), "--secret-source", "env", "--url-env", "DENSEGEN_WEBHOOK",
        "--only-tools", "densegen", "--only-actions", "densegen_health,densegen_flush_failed,materialize", *extra,
        env={"DENSEGEN_WEBHOOK": SEED_URL})


def test_seed_wizard_doctor_show(tmp_path):
    r = _seed_wizard(tmp_path)
    assert r.returncode == 0, r.stderr
    prof_path = tmp_path / "outputs" / "notify.profile.json"
    assert "Profile written" in r.stdout and SECRET_TOKEN not in r.stdout + r.stderr
    data = json.loads(prof_path.read_text())
    assert data["webhook"] == {"source": "env", "ref": "DENSEGEN_WEBHOOK"}
    assert data["only_actions"] == ["densegen_health", "densegen_flush_failed", "materialize"]
    assert oct(prof_path.stat().st_mode & 0o777) == "0o600"
    assert oct((tmp_path / "outputs" / "notify_spool").stat().st_mode & 0o777) == "0o700"

    d = run_notify("profile", "doctor", "--profile", str(prof_path), "--json", env={"DENSEGEN_WEBHOOK": SEED_URL})
    assert d.returncode == 0, d.stderr
    report = json.loads(d.stdout)
    status = {c["name"]: c["status"] for c in report["checks"]}
    assert report["ok"] and status["events"] == "warn" and status["secret"] == "ok" and status["provider"] == "ok"
    assert SECRET_TOKEN not in d.stdout

    s = run_notify("profile", "show", "--profile", str(prof_path), env={"DENSEGEN_WEBHOOK": SEED_URL})
    assert s.returncode == 0 and "DENSEGEN_WEBHOOK" in s.stdout and SECRET_TOKEN not in s.stdout

    again = _seed_wizard(tmp_path)
    assert again.returncode == 2 and "--force" in again.stderr


def test_doctor_reports_fixes_and_fails(tmp_path):
    r = _seed_wizard(tmp_path)
    prof_path = tmp_path / "outputs" / "notify.profile.json"
    os.chmod(tmp_path / "outputs" / "notify_spool", 0o755)
    d = run_notify("profile", "doctor", "--profile", str(prof_path), env={"DENSEGEN_WEBHOOK": ""})
    assert d.returncode == 1
    assert "DENSEGEN_WEBHOOK is not set" in d.stdout and "fix: export DENSEGEN_WEBHOOK" in d.stdout
    assert "chmod 700" in d.stdout
    d2 = run_notify("profile", "doctor", "--profile", str(prof_path), env={"DENSEGEN_WEBHOOK": f"http://example.com/{SECRET_TOKEN}"})
    assert d2.returncode == 1 and "https" in d2.stdout and SECRET_TOKEN not in d2.stdout + d2.stderr
    assert r.returncode == 0


def test_strict_validation_names_key_paths(tmp_path):
    base = {"profile_version": 1, "provider": "slack", "events": "e", "cursor": "c", "webhook": {"source": "env", "ref": "X"}}
    with pytest.raises(ConfigError, match=r"webhook\.colour: unknown key"):
        parse_profile({**base, "webhook": {"source": "env", "ref": "X", "colour": 1}})
    with pytest.raises(ConfigError, match=r"progress\.step_pct"):
        parse_profile({**base, "progress": {"step_pct": 0}})
    with pytest.raises(ConfigError, match=r"provider"):
        parse_profile({**base, "provider": "teams"})
    with pytest.raises(ConfigError, match=r"url: profiles must not store"):
        parse_profile({**base, "url": "https://x"})
    with pytest.raises(ConfigError, match=r"profile_version"):
        parse_profile({**base, "profile_version": 2})
    with pytest.raises(ConfigError, match=r"webhook\.ref"):
        parse_profile({**base, "webhook": {"source": "env", "ref": "https://hooks.slack.com/x"}})
    p = tmp_path / "p.json"
    p.write_text(json.dumps({**base, "events": "rel/.events.log"}))
    assert load_profile(p).events == str(tmp_path / "rel" / ".events.log")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**base, "extra": True}))
    r = run_notify("profile", "show", "--profile", str(bad))
    assert r.returncode == 1 and "extra: unknown key" in r.stderr and "Traceback" not in r.stderr


def test_secret_file_must_be_private(tmp_path):
    f = tmp_path / "hook.secret"
    f.write_text(SEED_URL + "\n")
    os.chmod(f, 0o644)
    with pytest.raises(ConfigError) as ei:
        resolve_secret(WebhookRef(source="file", ref=str(f)))
    assert "chmod 600" in ei.value.render() and SECRET_TOKEN not in ei.value.render()
    os.chmod(f, 0o600)
    assert resolve_secret(WebhookRef(source="file", ref=str(f))) == SEED_URL


def test_wizard_file_source_reads_stdin_and_stores_mode_600(tmp_path):
    secret = tmp_path / "sec" / "hook"
    r = run_notify("profile", "wizard", "--profile", str(tmp_path / "p.json"), "--provider", "slack",
                   "--events", str(tmp_path / ".events.log"), "--secret-source", "file", "--secret-file", str(secret),
                   "--webhook-from-stdin", "--json", input=SEED_URL + "\n")
    assert r.returncode == 0, r.stderr
    assert SECRET_TOKEN not in r.stdout + r.stderr
    assert secret.read_text().strip() == SEED_URL and (secret.stat().st_mode & 0o777) == 0o600
    out = json.loads(r.stdout)
    assert out["webhook"] == {"source": "file", "ref": str(secret)}
    assert SECRET_TOKEN not in (tmp_path / "p.json").read_text()


def test_wizard_missing_values_non_interactive_is_usage_error(tmp_path):
    r = run_notify("profile", "wizard", "--profile", str(tmp_path / "p.json"), "--provider", "slack",
                   "--events", str(tmp_path / ".events.log"), "--secret-source", "file", "--secret-file", str(tmp_path / "s"))
    assert r.returncode == 2 and "--webhook-from-stdin" in r.stderr


def test_keyring_missing_gives_clear_error(tmp_path):
    try:  # keyring is an optional extra; it is not installed in the dev environment
        import keyring  # noqa: F401
        pytest.skip("keyring installed")
    except ImportError:
        pass
    with pytest.raises(ConfigError) as ei:
        resolve_secret(WebhookRef(source="keyring", ref="svc/name"))
    assert "dnadesign[keyring]" in ei.value.render()


def test_send_posts_one_message(tmp_path, server):
    r = run_notify("send", "--provider", "generic", "--url-env", "HOOK", "--status", "failure", "--message", "job died",
                   "--tool", "densegen", "--allow-insecure-localhost", env={"HOOK": server.url})
    assert r.returncode == 0, r.stderr
    body = server.bodies()[0]
    assert body["status"] == "failure" and body["text"] == "job died" and server.keys() == [body["idempotency_key"]]
    assert SECRET_TOKEN not in r.stdout + r.stderr


def test_send_failure_without_spool_exits_1_without_leaking(tmp_path, server):
    server.default = ("status", 403)
    prof = write_profile(tmp_path, spool_dir=None)
    r = run_notify("send", "--profile", str(prof), "--message", "x", env={"NOTIFY_TEST_URL": server.url})
    assert r.returncode == 1 and "HTTP 403" in r.stderr and SECRET_TOKEN not in r.stdout + r.stderr


def test_http_to_non_loopback_is_refused(tmp_path):
    r = run_notify("send", "--provider", "generic", "--url-env", "HOOK", "--allow-insecure-localhost",
                   env={"HOOK": f"http://example.com/{SECRET_TOKEN}"})
    assert r.returncode == 1 and "only https" in r.stderr and SECRET_TOKEN not in r.stderr
