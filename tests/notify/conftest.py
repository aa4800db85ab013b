"""Notify test fixtures: a real webhook server on 127.0.0.1 and helpers to write event logs."""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from dnadesign.core.events import Actor, append_event, append_events, make_event

SECRET_TOKEN = "T0PSECRETtoken9f8e7d"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, *a: Any) -> None:  # keep test output clean
        pass

    def do_POST(self) -> None:
        hook: WebhookServer = self.server.hook
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        action = hook.rate_check() or hook.next_action()
        rec = {"t": time.time(), "path": self.path, "headers": dict(self.headers), "body": body, "action": action[0]}
        with hook.lock:
            hook.requests.append(rec)
        kind = action[0]
        if kind == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return
        if kind == "hang":
            hook.release.wait(action[1])
            self.close_connection = True
            return
        if kind == "delay":
            time.sleep(action[1])
            kind, action = "ok", ("ok",)
        if kind == "ok":
            with hook.lock:
                hook.delivered.append(rec)
                hook.last_ok = time.monotonic()
            self._reply(200, b"ok")
            return
        code, headers = action[1], action[2] if len(action) > 2 else {}
        self._reply(code, b"nope", headers)

    def _reply(self, code: int, body: bytes, headers: dict | None = None) -> None:
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class WebhookServer:
    """A webhook receiver on 127.0.0.1. Script responses with `queue(...)` or set `default`:
    ("ok",), ("status", code, headers), ("hang", seconds), ("reset",), ("delay", seconds)."""

    def __init__(self, port: int = 0):
        self.lock = threading.Lock()
        self.script: deque = deque()
        self.default: tuple = ("ok",)
        self.requests: list[dict] = []
        self.delivered: list[dict] = []
        self.release = threading.Event()
        self.min_gap: float | None = None  # like Slack: at most one accepted post per `min_gap` seconds
        self.last_ok: float | None = None
        self._srv = _Server(("127.0.0.1", port), _Handler)
        self._srv.hook = self  # type: ignore[attr-defined]
        self.port = self._srv.server_address[1]
        self._thread = threading.Thread(target=self._srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook/{SECRET_TOKEN}"

    def queue(self, *actions: tuple) -> None:
        with self.lock:
            self.script.extend(actions)

    def rate_check(self) -> tuple | None:
        """A 429 (Retry-After: the whole gap) when a post comes sooner than `min_gap` after the last accepted one."""
        with self.lock:
            if self.min_gap is None or self.last_ok is None or time.monotonic() - self.last_ok >= self.min_gap:
                return None
            return ("status", 429, {"Retry-After": f"{self.min_gap:g}"})

    def next_action(self) -> tuple:
        with self.lock:
            return self.script.popleft() if self.script else self.default

    def keys(self) -> list[str]:
        with self.lock:
            return [r["headers"].get("Idempotency-Key") for r in self.delivered]

    def bodies(self) -> list[dict]:
        with self.lock:
            return [json.loads(r["body"]) for r in self.delivered]

    def wait_for(self, n: int, timeout: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.delivered) >= n:
                return True
            time.sleep(0.02)
        return len(self.delivered) >= n

    def stop(self) -> None:
        self.release.set()
        self._srv.shutdown()
        self._srv.server_close()


@pytest.fixture
def server():
    srv = WebhookServer()
    yield srv
    srv.stop()


def dead_port() -> int:
    """A loopback port with nothing listening (connection refused)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def health(status: str, generated: int = 0, quota: int = 100, run_id: str = "run-1", dataset: str = "densegen/demo",
           ts: str | None = None) -> dict:
    """A DenseGen health event."""
    ev = make_event("densegen_health", dataset, Actor.current("densegen", run_id=run_id), args={"status": status},
                    metrics={"generated": generated, "quota": quota, "percent": 100.0 * generated / quota}, job={})
    ev.pop("job", None)
    if ts:
        ev["ts"] = ts
    return ev


def usr_event(action: str = "materialize", dataset: str = "densegen/demo", tool: str = "densegen") -> dict:
    ev = make_event(action, dataset, Actor.current(tool, run_id="run-1"), fingerprint={"rows": 10}, job={})
    ev.pop("job", None)
    return ev


def write_events(path: Path, events: list[dict]) -> None:
    append_events(path, events)


class LineWaiter:
    """Reads a child's text stream on a thread; `wait_for(text)` blocks (bounded) until a line contains it."""

    def __init__(self, stream):
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream) -> None:
        for line in stream:
            with self._cond:
                self.lines.append(line)
                self._cond.notify_all()
        with self._cond:
            self.lines.append("")  # EOF marker
            self._cond.notify_all()

    def wait_for(self, text: str, timeout: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if any(text in ln for ln in self.lines):
                    return True
                left = deadline - time.monotonic()
                if left <= 0 or (self.lines and self.lines[-1] == ""):
                    return False
                self._cond.wait(left)

    def text(self) -> str:
        self._thread.join(10)
        with self._cond:
            return "".join(self.lines)


def notify_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "dnadesign.notify.cli", *args]


def run_notify(*args: str, env: dict | None = None, timeout: float = 60, input: str | None = None) -> subprocess.CompletedProcess:
    """Run the notify CLI as a real subprocess."""
    full = {**os.environ, **(env or {})}
    full.pop("CI_NOTIFY_UNUSED", None)
    return subprocess.run(notify_cmd(*args), capture_output=True, text=True, env=full, timeout=timeout, input=input)


__all__ = [
    "SECRET_TOKEN",
    "LineWaiter",
    "WebhookServer",
    "append_event",
    "dead_port",
    "health",
    "notify_cmd",
    "run_notify",
    "usr_event",
    "write_events",
]
