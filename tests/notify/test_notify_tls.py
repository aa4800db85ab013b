"""TLS verification: certifi by default, a given CA bundle when provided (real https server on 127.0.0.1)."""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import threading
from http.server import ThreadingHTTPServer

import pytest

from dnadesign.notify.http_transport import http_sender

from .conftest import WebhookServer, _Handler
from .helpers_notify import FAST


@pytest.fixture
def https_server(tmp_path):
    if not shutil.which("openssl"):
        if os.environ.get("CI") == "true":
            pytest.fail("openssl is needed for the https test server (CI must not skip it)")
        pytest.skip("openssl not available")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    hook = WebhookServer()  # reuse the scripted handler state
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.hook = hook  # type: ignore[attr-defined]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    th = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    th.start()
    yield f"https://127.0.0.1:{srv.server_address[1]}/hook/x", cert, hook
    srv.shutdown()
    srv.server_close()
    hook.stop()


def test_untrusted_certificate_is_refused_then_trusted_with_bundle(https_server, monkeypatch):
    url, cert, hook = https_server
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    with http_sender(url, FAST.model_copy(update={"max_attempts": 1})) as s:
        r = s.deliver({"a": 1}, "k1")
    assert not r.ok and "CERTIFICATE" in r.reason.upper()
    with http_sender(url, FAST, ca_bundle=str(cert)) as s:
        assert s.deliver({"a": 1}, "k2").ok
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    with http_sender(url, FAST) as s:
        assert s.deliver({"a": 1}, "k3").ok
    assert hook.keys() == ["k2", "k3"]
