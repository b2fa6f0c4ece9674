"""`journey stop` and `serve --detach`'s process handling: a PID file signals only this home's
service, a busy port and a dead or unloadable service are reported at once."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from features.errors import ConfigError
from journey.service_process import SERVICE, read_pid_file, wait_ready, write_pid_file
from tests.journey.cli_helpers import fails, ok, run


def _spawn(argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(argv, env=env, start_new_session=True)


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = _spawn(["sleep", "60"])
    yield proc
    proc.kill()
    proc.wait()


def fake_service(home: Path) -> subprocess.Popen[bytes]:
    """A process that looks like `journey serve`'s (its argv and JOURNEY_HOME), and ends on
    SIGTERM as BentoML does."""
    code = "import time\nwhile True: time.sleep(0.05)"
    return _spawn([sys.executable, "-c", code, "serve", SERVICE],
                  {**os.environ, "JOURNEY_HOME": str(home)})


def test_stop_leaves_a_foreign_pid_alone(home: Path,
                                         sleeper: subprocess.Popen[bytes]) -> None:
    (home / "serve.pid").write_text(str(sleeper.pid))
    lines = ok("stop")
    assert "stale" in lines[0] and "sleep 60" in lines[0] and "no process signalled" in lines[0]
    time.sleep(0.2)
    assert sleeper.poll() is None  # not signalled
    assert not (home / "serve.pid").exists()


def test_stop_leaves_another_homes_service_alone(home: Path, isolated: Path) -> None:
    other = isolated / "other"
    other.mkdir()
    proc = fake_service(other)
    try:
        time.sleep(0.3)
        (home / "serve.pid").write_text(str(proc.pid))
        assert f"home {other}" in ok("stop")[0]
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()


def test_stop_ends_this_homes_service(home: Path) -> None:
    proc = fake_service(home)
    time.sleep(0.3)
    write_pid_file(home / "serve.pid", proc.pid)
    assert ok("stop") == [f"service PID {proc.pid} stopped"]
    assert proc.wait(5) == -15
    assert not (home / "serve.pid").exists()


def test_a_reused_pid_is_not_the_service(home: Path) -> None:
    proc = fake_service(home)
    try:
        time.sleep(0.3)
        # Same PID, another start time: the recorded service ended and the PID was reused.
        (home / "serve.pid").write_text(json.dumps({"pid": proc.pid, "start": "1"}))
        recorded = read_pid_file(home / "serve.pid", home)
        assert recorded is not None and recorded.stale is not None
        assert "another process" in recorded.stale
        ok("stop")
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("text", ["garbage", "", "{}", "12.5"])
def test_stop_with_garbage_in_the_pid_file(home: Path, text: str) -> None:
    (home / "serve.pid").write_text(text)
    assert "holds no PID record" in ok("stop")[0]
    assert not (home / "serve.pid").exists()


def test_an_unreadable_pid_file_is_one_line(home: Path) -> None:
    (home / "serve.pid").mkdir()
    assert fails("stop").startswith(f"error: {home / 'serve.pid'}: cannot read")


def test_an_empty_pid_file_is_stale_not_running(home: Path) -> None:
    (home / "serve.pid").write_text("")
    recorded = read_pid_file(home / "serve.pid", home)
    assert recorded is not None and recorded.pid is None and recorded.stale


@pytest.fixture
def deployment(home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """What serve checks before it starts anything: a store file and a key."""
    for name in ("JOURNEY_API_KEYS", "JOURNEY_MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(name, raising=False)
    (home / "events.duckdb").write_bytes(b"")
    ok("keys", "create", "ops", "--role", "admin")
    return home


def test_serve_refuses_a_busy_port(deployment: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        err = fails("serve", "--detach", "--port", str(port))
    assert f"port {port} on 127.0.0.1 is in use" in err
    assert not (deployment / "serve.pid").exists()


def test_serve_detach_does_not_take_a_reused_pid_for_a_running_service(
        deployment: Path, sleeper: subprocess.Popen[bytes]) -> None:
    """The stale file is reported and replaced, and the start goes on (here to the port
    check, which stops it before anything is spawned)."""
    (deployment / "serve.pid").write_text(str(sleeper.pid))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        result = run("serve", "--detach", "--port", str(s.getsockname()[1]))
    assert result.exit_code == 2
    assert "is stale" in result.stderr and "already running" not in result.stderr
    assert "in use" in result.stderr


class _Readyz(BaseHTTPRequestHandler):
    answer: tuple[int, dict[str, object]] = (200, {"ready": True})

    def do_GET(self) -> None:
        status, body = self.answer
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def readyz(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, type[_Readyz]]]:
    handler = type("Handler", (_Readyz,), {})
    server = HTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1/readyz", handler
    server.shutdown()
    server.server_close()


def test_a_dead_service_is_not_ready_whatever_answers(
        readyz: tuple[str, type[_Readyz]], tmp_path: Path) -> None:
    """Another service answering 200 on the port does not make a dead one ready."""
    url, _ = readyz
    proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    proc.wait()
    log = tmp_path / "serve.log"
    log.write_text("OSError: [Errno 98] address already in use\n")
    with pytest.raises(ConfigError, match="exited with code 3") as err:
        wait_ready(url, proc, 30, log, lambda _: None)
    assert "address already in use" in str(err.value)


def test_a_permanent_load_error_ends_the_wait_at_once(
        readyz: tuple[str, type[_Readyz]], tmp_path: Path,
        sleeper: subprocess.Popen[bytes]) -> None:
    url, handler = readyz
    why = "event store not loaded: /x/events.duckdb: StoreError: locked by process 7"
    handler.answer = (503, {"ready": False, "last_load_error": why, "message": why})
    started = time.monotonic()
    with pytest.raises(ConfigError, match="cannot load: event store not loaded: /x/events"):
        wait_ready(url, sleeper, 60, tmp_path / "serve.log", lambda _: None)
    assert time.monotonic() - started < 10


def test_a_missing_champion_ends_the_wait_with_the_service_running(
        readyz: tuple[str, type[_Readyz]], tmp_path: Path,
        sleeper: subprocess.Popen[bytes]) -> None:
    """Before the first promotion the service takes events; waiting out the timeout only
    stopped it (serve before train is a newcomer's first step). The reason is returned."""
    url, handler = readyz
    why = "RegistryError: model journey-churn has no version with alias 'champion'"
    handler.answer = (503, {"ready": False, "last_load_error": why, "message": why})
    started = time.monotonic()
    assert wait_ready(url, sleeper, 60, tmp_path / "serve.log", lambda _: None) == why
    assert time.monotonic() - started < 10 and sleeper.poll() is None
    handler.answer = (503, {"ready": False, "last_load_error": None,
                            "message": "loading event histories and models"})
    said: list[str] = []
    with pytest.raises(ConfigError, match=r"within 1s \(--ready-timeout; [^)]*\); "
                       r"/v1/readyz last said: loading"):
        wait_ready(url, sleeper, 1, tmp_path / "serve.log", said.append)
    assert said == ["loading event histories and models"]


def test_serve_detach_records_the_folders_the_service_reads(
        deployment: Path, monkeypatch: pytest.MonkeyPatch, isolated: Path) -> None:
    """`journey score` compares its output folder with these (``refuse_live_scores``)."""
    from journey import serving_cli

    started: list[object] = []
    monkeypatch.setattr(serving_cli, "_detached", lambda *args: started.append(args[-1]))
    monkeypatch.setenv("JOURNEY_SCORES", str(isolated / "live"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ok("serve", "--detach", "--port", str(port))
    assert started == [{"scores": isolated / "live", "store": deployment / "events.duckdb"}]


def test_the_pid_file_keeps_the_folders_resolved(home: Path, sleeper: subprocess.Popen[bytes],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(home)
    write_pid_file(home / "serve.pid", sleeper.pid,
                   {"scores": Path("snaps"), "store": Path("events.duckdb")})
    recorded = read_pid_file(home / "serve.pid", home)
    assert recorded is not None
    assert (recorded.pid, recorded.scores, recorded.store) == (
        sleeper.pid, (home / "snaps").resolve(), (home / "events.duckdb").resolve())
    write_pid_file(home / "serve.pid", sleeper.pid)  # as before: no folders recorded
    recorded = read_pid_file(home / "serve.pid", home)
    assert recorded is not None and recorded.scores is None and recorded.store is None


def _exec_recorder(execs: list[list[str]]) -> Callable[[str, list[str], object], None]:
    """os.execve as seen from the caller: the program is replaced, nothing after it runs."""
    def execve(path: str, argv: list[str], env: object) -> None:
        execs.append(argv)
        raise SystemExit(0)
    return execve


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_a_foreground_service_records_its_pid_before_it_becomes_the_service(
        deployment: Path, monkeypatch: pytest.MonkeyPatch, isolated: Path) -> None:
    """`journey serve` execs the service in its own process: the PID (and start time) it
    records are the service's, so `journey score`, `relocate` and `stop` see a foreground
    service as they see a detached one."""

    execs: list[list[str]] = []
    monkeypatch.setattr(os, "execve", _exec_recorder(execs))
    monkeypatch.setenv("JOURNEY_SCORES", str(isolated / "live"))
    ok("serve", "--port", str(_free_port()))
    assert len(execs) == 1 and SERVICE in execs[0]
    record = json.loads((deployment / "serve.pid").read_text())
    assert record["pid"] == os.getpid()
    assert (record["scores"], record["store"]) == (
        str((isolated / "live").resolve()), str((deployment / "events.duckdb").resolve()))
    # This test process is no service: read back, the record is stale and is replaced.
    recorded = read_pid_file(deployment / "serve.pid", deployment)
    assert recorded is not None and recorded.stale is not None
    ok("serve", "--port", str(_free_port()))
    assert len(execs) == 2


def test_a_foreground_service_that_cannot_record_its_pid_does_not_start(
        deployment: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from journey import serving_cli

    def unwritable(path: Path, pid: int, reads: object = None) -> None:
        raise PermissionError(13, "Permission denied", str(path))

    execs: list[list[str]] = []
    monkeypatch.setattr(os, "execve", _exec_recorder(execs))
    monkeypatch.setattr(serving_cli, "write_pid_file", unwritable)
    out = fails("serve", "--port", str(_free_port()))
    assert "serve.pid (Permission denied): nothing was started" in out and execs == []
