"""The real service over HTTPS (`journey serve --detach --ssl-certfile --ssl-keyfile`): only
/v1 and the health probes answer (BentoML's index page and docs are gone), every answer has
the security headers, a keyless request is refused before its body arrives, and what the
service writes is private to its user."""

from __future__ import annotations

import json
import os
import socket
import ssl
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.journey.tls_helpers import self_signed
from tests.serving.conftest import AS_OF, Served
from tests.serving.test_bento import free_port

BIN = Path(sys.executable).parent


def get(url: str, context: ssl.SSLContext) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30, context=context) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def stalled_post(port: int, context: ssl.SSLContext, path: str) -> tuple[bytes, float]:
    """POST declaring a 1 MB body and sending one byte of it: the answer and its delay."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname="127.0.0.1") as s:
        started = time.monotonic()
        s.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json"
                  "\r\nContent-Length: 1000000\r\n\r\n{".encode())
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = s.recv(4096)
            if not chunk:
                break
            answer += chunk
        return answer, time.monotonic() - started


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.slow
def test_the_service_over_https(served: Served, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path / "tls")
    port, home = free_port(), tmp_path / "home"
    env = {**os.environ, "JOURNEY_HOME": str(home),
           "JOURNEY_STORE": str(served.store_copy(tmp_path / "store")),
           "JOURNEY_MLFLOW_TRACKING_URI": served.tracking_uri,
           "JOURNEY_API_KEYS": str(served.home / "api_keys.yaml"),
           "JOURNEY_AS_OF": AS_OF.isoformat()}
    started = subprocess.run(
        [str(BIN / "journey"), "serve", "--detach", "--port", str(port),
         "--ssl-certfile", str(cert), "--ssl-keyfile", str(key)],
        env=env, capture_output=True, text=True, timeout=240)
    assert started.returncode == 0, started.stderr + started.stdout
    try:
        base = f"https://127.0.0.1:{port}"
        assert f"serving {base}/v1" in started.stdout
        trusted = ssl.create_default_context(cafile=str(cert))
        status, headers, _ = get(f"{base}/v1/healthz", trusted)
        assert status == 200 and headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY" and headers["cache-control"] == "no-store"
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        for path in ("/", "/docs.json", "/schema.json", "/static_content/index.css",
                     "/assets/index.js", "/metrics"):
            status, headers, body = get(base + path, trusted)
            assert status == 404 and json.loads(body)["code"] == "not_found", path
            assert b"googletagmanager" not in body and headers["x-frame-options"] == "DENY"
        for probe in ("/healthz", "/readyz", "/livez"):
            status, headers, _ = get(base + probe, trusted)
            assert status == 200 and headers["referrer-policy"] == "no-referrer", probe
        status, headers, _ = get(f"{base}/v1/dashboard", trusted)
        assert status == 200 and headers["content-security-policy"] == "frame-ancestors 'none'"
        answer, took = stalled_post(port, trusted, "/v1/events")
        assert answer.startswith(b"HTTP/1.1 401") and took < 5, (answer, took)
        with pytest.raises(OSError):  # plain HTTP is not served: refused or hung up on
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/healthz", timeout=10)
        assert mode(home) == 0o700
        for name in ("serve.log", "serve.pid"):
            assert mode(home / name) == 0o600, name
    finally:
        stopped = subprocess.run([str(BIN / "journey"), "stop"], env=env,
                                 capture_output=True, text=True, timeout=60)
    assert stopped.returncode == 0 and "stopped" in stopped.stdout, stopped.stderr
