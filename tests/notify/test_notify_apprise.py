"""Alert channels through Apprise against real local receivers: an SMTP server on loopback (aiosmtpd) and the
HTTP webhook server (Apprise's json:// and ntfy://). Same profile, secret reference, spool, retry and
dead-letter guarantees as the webhooks; the Apprise URL (a credential as a whole) never leaks."""

from __future__ import annotations

import base64
import email
import email.policy
import json
import logging
import os
import threading

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from dnadesign.core.errors import ConfigError
from dnadesign.notify.apprise_channel import AppriseTransport, instantiate
from dnadesign.notify.delivery import Sender
from dnadesign.notify.profile import Profile, WebhookRef, save_profile

from .conftest import SECRET_TOKEN, dead_port, run_notify, usr_event, write_events
from .helpers_notify import FAST, densegen_health

NO_THROTTLE = FAST.model_copy(update={"min_interval": 0})


class _Mailbox:
    def __init__(self):
        self.messages: list[dict] = []
        self.logins: list[str] = []
        self.cond = threading.Condition()

    async def handle_DATA(self, server, session, envelope):
        with self.cond:
            self.messages.append({"from": envelope.mail_from, "to": envelope.rcpt_tos, "data": envelope.content.decode()})
            self.cond.notify_all()
        return "250 OK"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and auth_data.password.decode() == SECRET_TOKEN
        if ok:
            self.logins.append(auth_data.login.decode())
        return AuthResult(success=ok)


@pytest.fixture
def smtp():
    box = _Mailbox()
    port = dead_port()
    ctl = Controller(box, hostname="127.0.0.1", port=port, authenticator=box.authenticate, auth_require_tls=False)
    ctl.start()
    box.url = f"mailto://alerts:{SECRET_TOKEN}@127.0.0.1:{port}?from=notify@example.org&to=ops@example.org"  # type: ignore[attr-defined]
    yield box
    ctl.stop()


def _secret_file(tmp_path, url):
    f = tmp_path / "secrets" / "alert.url"
    f.parent.mkdir(mode=0o700)
    f.write_text(url + "\n")
    os.chmod(f, 0o600)
    return f


def _profile(tmp_path, url, **kw):
    prof = Profile(provider="apprise", events=str(tmp_path / "ds" / ".events.log"), cursor=str(tmp_path / "state" / "p.cursor"),
                   spool_dir=str(tmp_path / "spool"), webhook=WebhookRef(source="file", ref=str(_secret_file(tmp_path, url))),
                   delivery=kw.pop("delivery", NO_THROTTLE), allow_insecure_localhost=True, **kw)
    path = tmp_path / "p.json"
    save_profile(path, prof)
    return path


def _log(tmp_path, events):
    p = tmp_path / "ds" / ".events.log"
    p.parent.mkdir(parents=True, exist_ok=True)
    write_events(p, events)


def _no_leak(tmp_path, *outputs):
    assert all(SECRET_TOKEN not in o for o in outputs)
    for f in tmp_path.rglob("*"):
        if f.is_file() and f.name != "alert.url":
            assert SECRET_TOKEN.encode() not in f.read_bytes(), f


def test_email_through_a_real_smtp_server(tmp_path, smtp):
    stopped = densegen_health("failed", outcome="interrupted", signal=15,
                      reason="stopped by SIGTERM; 40/100 sequences are saved, `dense run` resumes")
    _log(tmp_path, [densegen_health("started"), stopped])
    prof = _profile(tmp_path, smtp.url)
    r = run_notify("usr-events", "watch", "--profile", str(prof), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1])["delivered"] == 2
    assert smtp.logins == ["alerts", "alerts"]
    assert [m["to"] for m in smtp.messages] == [["ops@example.org"]] * 2
    mail = email.message_from_string(smtp.messages[-1]["data"], policy=email.policy.default)
    assert mail["Subject"] == "DenseGen stopped: densegen/demo"
    text = mail.get_body(preferencelist=("plain",)).get_content()
    for piece in ("Why: stopped by SIGTERM", "Where: on node17 · slurm job 41 task 3 · dataset densegen/demo",
                  "Next: run `uv run dense run` again", f"id {stopped['event_id'][:8]}"):
        assert piece in text, (piece, text)
    _no_leak(tmp_path, r.stdout, r.stderr)
    doc = run_notify("profile", "doctor", "--profile", str(prof), "--json")
    checks = {c["name"]: c for c in json.loads(doc.stdout)["checks"]}
    assert checks["url"]["status"] == "ok" and "mailto://***" in checks["url"]["detail"]
    _no_leak(tmp_path, doc.stdout, doc.stderr)


def test_smtp_down_spools_then_drain_delivers(tmp_path):
    port = dead_port()
    url = f"mailto://alerts:{SECRET_TOKEN}@127.0.0.1:{port}?from=notify@example.org&to=ops@example.org"
    _log(tmp_path, [densegen_health("started"), densegen_health("completed")])
    prof = _profile(tmp_path, url)
    r = run_notify("usr-events", "watch", "--profile", str(prof), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1])["spooled"] == 2
    _no_leak(tmp_path, r.stdout, r.stderr)

    box = _Mailbox()
    ctl = Controller(box, hostname="127.0.0.1", port=port, authenticator=box.authenticate, auth_require_tls=False)
    ctl.start()
    try:
        d = run_notify("spool", "drain", "--profile", str(prof), "--json")
        assert d.returncode == 0, d.stderr
        assert json.loads(d.stdout)["delivered"] == 2 and len(box.messages) == 2
    finally:
        ctl.stop()
    _no_leak(tmp_path, d.stdout, d.stderr)


def test_json_and_ntfy_through_apprise_to_the_http_server(tmp_path, server):
    jurl = f"json://alerts:{SECRET_TOKEN}@127.0.0.1:{server.port}/hook"
    with Sender(AppriseTransport(jurl, NO_THROTTLE, allow_insecure_localhost=True), NO_THROTTLE) as s:
        assert s.deliver({"title": "DenseGen completed: densegen/demo", "body": "done\nNext: look", "type": "success"}, "k1").ok
    body = server.bodies()[0]
    assert body["title"] == "DenseGen completed: densegen/demo" and body["message"] == "done\nNext: look" and body["type"] == "success"
    auth = server.delivered[0]["headers"]["Authorization"]
    assert base64.b64decode(auth.split()[1]).decode() == f"alerts:{SECRET_TOKEN}"  # Apprise really uses the credential

    nurl = f"ntfy://alerts:{SECRET_TOKEN}@127.0.0.1:{server.port}/dnadesign-alerts"
    with Sender(AppriseTransport(nurl, NO_THROTTLE, allow_insecure_localhost=True), NO_THROTTLE) as s:
        assert s.deliver({"title": "Job failed: slurm job 41", "body": "exit code 3", "type": "failure"}, "k2").ok
    nbody = server.bodies()[1]
    assert nbody["topic"] == "dnadesign-alerts" and nbody["title"] == "Job failed: slurm job 41" and nbody["message"] == "exit code 3"


def test_apprise_4xx_is_dead_lettered_5xx_spooled_and_429_not_repeated(tmp_path, server):
    url = f"json://alerts:{SECRET_TOKEN}@127.0.0.1:{server.port}/hook"
    _log(tmp_path, [usr_event("materialize") for _ in range(3)])
    prof = _profile(tmp_path, url)
    server.queue(("status", 400), ("status", 503), ("status", 503))
    r = run_notify("usr-events", "watch", "--profile", str(prof), "--json")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout.strip().splitlines()[-1])
    assert (s["dead_lettered"], s["spooled"], s["delivered"]) == (1, 1, 1)
    assert len(server.requests) == 4  # 400 once (permanent), 503 retried once (max_attempts 2), then ok
    dead = next((tmp_path / "spool" / "dead").glob("*.json"))
    assert "error=400" in json.loads(dead.read_text())["reason"]
    _no_leak(tmp_path, r.stdout, r.stderr)

    # a 429 (Apprise gives no Retry-After: a default pause applies) is not followed by more posts
    b = tmp_path / "b"
    b.mkdir()
    _log(b, [usr_event("materialize") for _ in range(3)])
    prof = _profile(b, url, delivery=NO_THROTTLE.model_copy(update={"retry_after_max": 5}))
    before = len(server.requests)
    server.queue(("status", 429))
    r = run_notify("usr-events", "watch", "--profile", str(prof), "--json")
    s = json.loads(r.stdout.strip().splitlines()[-1])
    assert r.returncode == 0 and s["spooled"] == 3 and len(server.requests) - before == 1


def test_apprise_url_rules_and_no_leak_in_errors(tmp_path):
    with pytest.raises(ConfigError) as ei:
        instantiate(f"json://{SECRET_TOKEN}.example.com/x")
    assert "unencrypted" in ei.value.render() and SECRET_TOKEN not in ei.value.render()
    with pytest.raises(ConfigError) as ei:
        instantiate(f"json://u:{SECRET_TOKEN}@127.0.0.1:9/x")
    assert "--allow-insecure-localhost" in ei.value.render() and SECRET_TOKEN not in ei.value.render()
    with pytest.raises(ConfigError) as ei:
        instantiate(f"nosuchservice://{SECRET_TOKEN}/x")
    assert "not valid or its service is not supported" in ei.value.render() and SECRET_TOKEN not in ei.value.render()
    assert instantiate(f"jsons://u:{SECRET_TOKEN}@hooks.example.com/x") is not None  # encrypted: fine anywhere
    r = run_notify("send", "--provider", "apprise", "--url-env", "ALERT", "--message", "x",
                   env={"ALERT": f"tgram://{SECRET_TOKEN}:AAH/12345?format=bogus&x=" + "y" * 10})
    assert SECRET_TOKEN not in r.stdout + r.stderr and "Traceback" not in r.stderr

    # an application that logs everything at DEBUG on its root logger sees nothing of Apprise or urllib3
    seen: list[str] = []

    class _Root(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(f"{record.name}: {record.getMessage()}")

    root, handler = logging.getLogger(), _Root(level=logging.DEBUG)
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        url = f"json://alerts:{SECRET_TOKEN}@127.0.0.1:{dead_port()}/hook"
        with Sender(AppriseTransport(url, NO_THROTTLE, allow_insecure_localhost=True), NO_THROTTLE) as s:
            res = s.deliver({"title": "t", "body": "b", "type": "info"}, "k")
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    assert not res.ok and not res.permanent and SECRET_TOKEN not in res.reason
    assert not [ln for ln in seen if ln.startswith(("apprise", "urllib3"))], seen


def test_wizard_and_send_with_an_apprise_url_from_the_environment(tmp_path, smtp):
    env = {"ALERT_URL": smtp.url}
    r = run_notify("profile", "wizard", "--profile", str(tmp_path / "mail.json"), "--provider", "apprise",
                   "--events", str(tmp_path / "ds" / ".events.log"), "--secret-source", "env", "--url-env", "ALERT_URL",
                   "--allow-insecure-localhost", env=env)
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "mail.json").read_text())["webhook"] == {"source": "env", "ref": "ALERT_URL"}
    s = run_notify("send", "--profile", str(tmp_path / "mail.json"), "--status", "failure", "--message", "preprocessing failed",
                   "--next", "rerun step 2", env={**env, "SLURM_JOB_ID": "", "JOB_ID": ""})
    assert s.returncode == 0, s.stderr
    assert len(smtp.messages) == 1 and "Next: rerun step 2" in smtp.messages[0]["data"]
    _no_leak(tmp_path, r.stdout, r.stderr, s.stdout, s.stderr)
