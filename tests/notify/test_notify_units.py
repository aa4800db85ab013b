"""Small units: raw pre-filter, providers, cursor damage, wizard prompts, CLI usage, import boundary."""

from __future__ import annotations

import ast
import itertools
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dnadesign.core.errors import ConfigError
from dnadesign.core.events import encode_event
from dnadesign.notify.cursor import CursorState, load_cursor, save_cursor
from dnadesign.notify.filters import EventFilter, split_csv
from dnadesign.notify.payloads import Message
from dnadesign.notify.providers import format_message
from dnadesign.notify.throttle import ProgressThrottle
from dnadesign.notify.wizard import build_profile

from .conftest import SECRET_TOKEN, health, run_notify, usr_event

ACTIONS = ["append", "materialize", "densegen_health", "job_finished", "job_lost", "weird\"name", "a\\b"]


@settings(max_examples=200, deadline=None)
@given(action=st.sampled_from(ACTIONS) | st.text(max_size=12), tool=st.sampled_from(["densegen", "usr"]),
       selected=st.lists(st.sampled_from(ACTIONS), max_size=3), job_alerts=st.booleans(), nested_first=st.booleans())
def test_raw_prefilter_never_rejects_a_selected_event(action, tool, selected, job_alerts, nested_first):
    ev = usr_event("append", tool=tool)
    ev["action"] = action
    if nested_first:  # a nested "action" key before the real one must not fool the pre-filter
        ev = {"args": {"action": "materialize"}, **{k: v for k, v in ev.items() if k != "args"}}
    raw = encode_event(ev).rstrip(b"\n")
    f = EventFilter.build([], selected, job_alerts)
    if f.rejects_raw(raw):
        assert not f.matches(json.loads(raw))


def test_filter_and_csv():
    f = EventFilter.build(["densegen"], ["densegen_health"])
    assert f.matches(health("started"))
    assert not f.matches(usr_event("materialize"))
    assert f.matches(usr_event("job_lost"))  # job alerts pass the action filter
    assert not EventFilter.build(["densegen"], ["x"], job_alerts=False).matches(usr_event("job_lost"))
    assert split_csv(" a, b,,c ") == ["a", "b", "c"]


def test_provider_formats_and_limits():
    msg = Message(key="evt-9", status="failure", title="T" * 400, text="x" * 50_000, tool="densegen", run_id="r")
    s = format_message("slack", msg)
    assert len(s["text"]) <= 3000 and len(s["blocks"][0]["text"]["text"]) <= 3000 and "evt-9" in json.dumps(s["blocks"][1])
    d = format_message("discord", msg)
    assert len(d["content"]) <= 2000 and len(d["embeds"][0]["title"]) <= 256 and len(d["embeds"][0]["description"]) <= 4096
    assert d["allowed_mentions"] == {"parse": []} and "evt-9" in d["embeds"][0]["footer"]["text"]
    g = format_message("generic", msg)
    assert g["idempotency_key"] == "evt-9" and g["status"] == "failure"


def test_messages_scrub_urls_from_event_text(tmp_path):
    from dnadesign.notify.payloads import flush_failed_message

    ev = usr_event("densegen_flush_failed")
    ev["args"] = {"error": f"POST https://hooks.slack.com/services/{SECRET_TOKEN} failed"}
    m = flush_failed_message(ev, "k")
    assert SECRET_TOKEN not in m.text and "hooks.slack.com" in m.text


def test_throttle_lifecycle_always_passes():
    t = ProgressThrottle(10, 60, 600)
    state: dict = {}
    for status in ("started", "completed", "failed", "resumed"):
        assert t.decide(state, "r", status, 50.0, 0.0).send


def test_damaged_cursor_is_an_error_with_a_fix(tmp_path):
    p = tmp_path / "c"
    p.write_text("")
    with pytest.raises(ConfigError) as ei:
        load_cursor(p)
    assert "--from-end" in ei.value.render()
    save_cursor(p, CursorState(events="e", offset=12))
    assert load_cursor(p).offset == 12 and (p.stat().st_mode & 0o777) == 0o600


def test_wizard_prompts_for_missing_secret_with_hidden_input(tmp_path):
    asked: list[tuple[str, bool]] = []

    def prompt(text: str, hidden: bool) -> str:
        asked.append((text, hidden))
        return f"https://hooks.slack.com/services/{SECRET_TOKEN}"

    prof, notes = build_profile(profile_path=tmp_path / "p.json", provider="slack", events=str(tmp_path / "e.log"),
                                cursor=None, spool_dir=None, no_spool=False, secret_source="file", url_env=None,
                                secret_file=str(tmp_path / "s.webhook"), keyring_ref=None, only_tools=None,
                                only_actions=None, progress={}, tls_ca_bundle=None, allow_insecure_localhost=False,
                                prompt=prompt, webhook_from_stdin=False, check_url=lambda u: None)
    assert asked == [("Webhook URL (input hidden)", True)]
    assert prof.webhook.source == "file" and SECRET_TOKEN not in json.dumps(prof.model_dump()) + " ".join(notes)
    assert prof.cursor == str(tmp_path / "p.cursor") and prof.spool_dir == str(tmp_path / "p.spool")


@pytest.mark.parametrize("args", [
    ["usr-events", "watch", "--events", "x"],
    ["usr-events", "watch", "--events", "x", "--cursor", "c", "--provider", "generic", "--dry-run", "--from-start", "--from-end"],
    ["usr-events", "watch", "--bogus"],
    ["send", "--status", "meh", "--provider", "generic", "--url-env", "X"],
])
def test_usage_errors_exit_2(args):
    r = run_notify(*args)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr


def test_listing_commands_have_json(tmp_path):
    r = run_notify("spool", "list", "--spool-dir", str(tmp_path / "none"), "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["count"] == 0


def test_notify_imports_only_core():
    root = Path(__file__).resolve().parents[2] / "src" / "dnadesign" / "notify"
    for py in root.rglob("*.py"):
        for node in ast.walk(ast.parse(py.read_text())):
            if isinstance(node, ast.ImportFrom):
                mod = ("." * node.level) + (node.module or "")
                assert not any(x in mod for x in ("densegen", "usr", "ortools")), f"{py.name}: {mod}"
                if node.level >= 2:
                    assert (node.module or "").startswith("core"), f"{py.name}: {mod}"
            elif isinstance(node, ast.Import):
                for a in node.names:
                    assert not a.name.startswith(("dnadesign.densegen", "dnadesign.usr", "ortools")), f"{py.name}: {a.name}"


@settings(max_examples=40, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=12), chunk=st.sampled_from([7, 64, 1 << 18]),
       max_lines=st.sampled_from([1, 3, 4096]))
def test_reader_returns_each_complete_line_once_whatever_the_write_split(tmp_path_factory, cuts, chunk, max_lines):
    from dnadesign.notify.tail import LogReader

    d = tmp_path_factory.mktemp("split")
    events = [usr_event("append") for _ in range(6)]
    data = b"".join(encode_event(e) for e in events)
    points = sorted({min(c, len(data)) for c in cuts} | {len(data)})
    p = d / ".events.log"
    p.write_bytes(b"")
    r = LogReader(p, chunk_size=chunk)
    got, prev = [], 0
    for point in points:
        with open(p, "ab") as fh:
            fh.write(data[prev:point])
        prev = point
        while batch := r.read_batch(max_lines=max_lines):
            got.extend(batch)
    r.close()
    assert [ln.event["event_id"] for ln in got] == [e["event_id"] for e in events]
    assert got[-1].end == len(data) and all(a.end == b.offset for a, b in itertools.pairwise(got))
