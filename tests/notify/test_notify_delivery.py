"""Sender against a real HTTP server: retry classes, Retry-After, timeouts, resets, idempotency key."""

from __future__ import annotations

import time

import pytest

from dnadesign.core.errors import ConfigError
from dnadesign.notify.delivery import Sender
from dnadesign.notify.http_transport import http_sender, parse_retry_after
from dnadesign.notify.profile import DeliveryPolicy
from dnadesign.notify.urls import check_url, shape_problem

from .conftest import SECRET_TOKEN, dead_port

FAST = DeliveryPolicy(connect_timeout=5, read_timeout=10, max_attempts=3, backoff_base=0.01, backoff_max=0.05)


def sender(url: str, **kw) -> Sender:
    return http_sender(url, kw.pop("policy", FAST), allow_insecure_localhost=True, **kw)


def test_ok_carries_idempotency_key(server):
    with sender(server.url) as s:
        r = s.deliver({"text": "hi"}, "evt-1")
    assert r.ok and r.attempts == 1
    assert server.keys() == ["evt-1"]
    assert server.bodies() == [{"text": "hi"}]


def test_5xx_is_retried_then_succeeds(server):
    server.queue(("status", 500), ("status", 503))
    with sender(server.url) as s:
        r = s.deliver({"a": 1}, "k")
    assert r.ok and r.attempts == 3
    assert len(server.requests) == 3 and len(server.delivered) == 1


def test_4xx_is_permanent_and_not_retried(server):
    server.queue(("status", 404))
    with sender(server.url) as s:
        r = s.deliver({"a": 1}, "k")
    assert not r.ok and r.permanent and r.attempts == 1 and r.status == 404
    assert len(server.requests) == 1
    assert SECRET_TOKEN not in r.reason


def test_429_honours_retry_after(server):
    server.queue(("status", 429, {"Retry-After": "1"}))
    with sender(server.url) as s:
        t0 = time.monotonic()
        r = s.deliver({"a": 1}, "k")
        waited = time.monotonic() - t0
    assert r.ok and r.attempts == 2
    assert waited >= 0.95


def test_429_with_too_long_retry_after_gives_up_transiently(server):
    server.queue(("status", 429, {"Retry-After": "3600"}))
    with sender(server.url, policy=FAST.model_copy(update={"retry_after_max": 5})) as s:
        r = s.deliver({"a": 1}, "k")
    assert not r.ok and not r.permanent and r.attempts == 1
    assert "Retry-After" in r.reason


def test_read_timeout_is_retried(server):
    server.queue(("hang", 30.0))  # released when the server stops
    with sender(server.url, policy=FAST.model_copy(update={"read_timeout": 1.0})) as s:
        r = s.deliver({"a": 1}, "k")
    assert r.ok and r.attempts == 2
    assert server.requests[0]["action"] == "hang"


def test_connection_reset_is_retried(server):
    server.queue(("reset",), ("reset",))
    with sender(server.url) as s:
        r = s.deliver({"a": 1}, "k")
    assert r.ok and r.attempts == 3


def test_connection_refused_is_transient_and_scrubbed():
    url = f"http://127.0.0.1:{dead_port()}/hook/{SECRET_TOKEN}"
    with sender(url) as s:
        r = s.deliver({"a": 1}, "k")
    assert not r.ok and not r.permanent and r.attempts == 3
    assert SECRET_TOKEN not in r.reason and "/hook/" not in r.reason


def test_min_interval_spaces_posts(server):
    with sender(server.url, min_interval=0.2) as s:
        for i in range(3):
            assert s.deliver({"i": i}, f"k{i}").ok
    ts = [r["t"] for r in server.delivered]
    assert ts[2] - ts[0] >= 0.35


def test_url_rules():
    check_url("https://hooks.slack.com/services/A/B/C")
    check_url("http://127.0.0.1:8080/x", allow_insecure_localhost=True)
    for bad, flag in [("http://127.0.0.1:8080/x", False), (f"http://example.com/{SECRET_TOKEN}", True), ("ftp://x/y", False)]:
        with pytest.raises(ConfigError) as ei:
            check_url(bad, allow_insecure_localhost=flag)
        assert SECRET_TOKEN not in ei.value.render()
    assert shape_problem("slack", "https://hooks.slack.com/services/A/B/C") is None
    assert "slack" in shape_problem("slack", f"https://example.com/{SECRET_TOKEN}")
    assert SECRET_TOKEN not in shape_problem("slack", f"https://example.com/{SECRET_TOKEN}")


def test_parse_retry_after():
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert 0 <= parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") <= 0.0 + 1e-9


def test_url_not_logged_even_at_debug(server, caplog):
    import logging

    caplog.set_level(logging.DEBUG)
    server.queue(("status", 500))
    with sender(server.url) as s:
        assert s.deliver({"a": 1}, "k").ok
    assert SECRET_TOKEN not in caplog.text
