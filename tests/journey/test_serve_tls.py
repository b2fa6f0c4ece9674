"""`journey serve --ssl-certfile/--ssl-keyfile`: the files checked before anything starts,
passed to `bentoml serve`, and the readiness probe of `--detach` over HTTPS, trusting the
configured certificate and nothing else."""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from features.errors import ConfigError
from journey.service_process import Tls, check_tls, wait_ready
from journey.serving_cli import _command
from tests.journey.cli_helpers import fails
from tests.journey.tls_helpers import self_signed


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    return self_signed(tmp_path / "tls")


def test_the_pair_is_checked_and_passed_to_bentoml(pair: tuple[Path, Path]) -> None:
    cert, key = pair
    tls = check_tls(cert, key)
    assert tls == Tls(cert.resolve(), key.resolve()) and not tls.key_exposed
    cmd = _command("127.0.0.1", 3611, tls)
    assert cmd[-4:] == ["--ssl-certfile", str(cert.resolve()), "--ssl-keyfile",
                        str(key.resolve())]
    assert "--ssl-certfile" not in _command("127.0.0.1", 3611, None)
    assert check_tls(None, None) is None
    key.chmod(0o644)
    assert tls.key_exposed


def test_bad_tls_files_are_refused_naming_them(pair: tuple[Path, Path], tmp_path: Path) -> None:
    cert, key = pair
    with pytest.raises(ConfigError, match="--ssl-certfile needs its pair"):
        check_tls(cert, None)
    with pytest.raises(ConfigError, match="--ssl-keyfile needs its pair"):
        check_tls(None, key)
    with pytest.raises(ConfigError, match=r"--ssl-keyfile .*nope\.key: no such file"):
        check_tls(cert, tmp_path / "nope.key")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    with pytest.raises(ConfigError, match="not a PEM certificate and its unencrypted"):
        check_tls(garbage, key)
    other_cert, _ = self_signed(tmp_path / "other", "other")
    with pytest.raises(ConfigError, match="not a PEM certificate"):
        check_tls(other_cert, key)  # a key that is not the certificate's
    locked_cert, locked_key = self_signed(tmp_path / "locked", "locked", password=b"secret")
    with pytest.raises(ConfigError, match="must be decrypted first"):
        check_tls(locked_cert, locked_key)  # no terminal prompt for the password


def test_serve_refuses_half_a_pair_before_anything(pair: tuple[Path, Path],
                                                   tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOURNEY_HOME", str(tmp_path / "nowhere"))
    assert "needs its pair" in fails("serve", "--ssl-certfile", str(pair[0]))


class _Ready(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        raw = json.dumps({"ready": True}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def https_readyz(pair: tuple[Path, Path]) -> Iterator[str]:
    """A readyz answering 200 over HTTPS with ``pair``'s certificate."""
    server = HTTPServer(("127.0.0.1", 0), _Ready)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*pair)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"https://127.0.0.1:{server.server_address[1]}/v1/readyz"
    server.shutdown()
    server.server_close()


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc
    proc.kill()
    proc.wait()


def test_the_probe_trusts_the_configured_certificate(
        https_readyz: str, pair: tuple[Path, Path], tmp_path: Path,
        sleeper: subprocess.Popen[bytes]) -> None:
    tls = Tls(*pair)
    log = tmp_path / "serve.log"
    assert wait_ready(https_readyz, sleeper, 20, log, lambda _: None,
                      tls.probe_context()) is None


def test_the_probe_does_not_take_another_certificate_for_the_service(
        https_readyz: str, tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:
    """Whatever else answers on the port (another service, with its own certificate) is
    not this service, however ready it says it is."""
    other = Tls(*self_signed(tmp_path / "other", "other"))
    started = time.monotonic()
    with pytest.raises(ConfigError, match=r"did not become ready within 2s \(--ready-timeout;"):
        wait_ready(https_readyz, sleeper, 2, tmp_path / "serve.log", lambda _: None,
                   other.probe_context())
    assert time.monotonic() - started < 15
