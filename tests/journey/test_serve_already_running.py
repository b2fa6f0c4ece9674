"""`journey serve` in the foreground refuses what `--detach` refuses: a running service of this
home (serve.pid) and a store another process holds. A second service could never open the
store and would answer 503 for good."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from features.store import EventStore
from journey.service_process import write_pid_file
from tests.journey.cli_helpers import fails, ok
from tests.journey.test_serving_cli_process import fake_service

HOLD = ("import duckdb, sys, time\n"
        "con = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == 'ro')\n"
        "print('open', flush=True)\ntime.sleep(60)")


def _no_exec(*_: object) -> NoReturn:
    raise AssertionError("the service was started")


@pytest.fixture
def home(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A deployment serve accepts (a store, a key), where a start would exec nothing."""
    path = isolated / "home"
    path.mkdir()
    for name in ("JOURNEY_API_KEYS", "JOURNEY_MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("JOURNEY_HOME", str(path))
    monkeypatch.setattr(os, "execve", _no_exec)  # never replace the test process
    EventStore(path / "events.duckdb").close()
    ok("keys", "create", "ops", "--role", "admin")
    return path


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


@pytest.fixture
def holder(home: Path, request: pytest.FixtureRequest) -> Iterator[int]:
    """A process holding the store, read-only when the test is parametrised "ro"."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(home / "events.duckdb"),
                             request.param], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "open"
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


def test_a_foreground_serve_refuses_a_running_service(home: Path) -> None:
    service = fake_service(home)
    try:
        write_pid_file(home / "serve.pid", service.pid)
        err = fails("serve", "--port", "18799")
    finally:
        service.kill()
        service.wait()
    assert f"a service is already running (PID {service.pid}" in err
    assert "`journey stop`" in err


@pytest.mark.parametrize(("holder", "access"), [("rw", "writing"), ("ro", "reading")],
                         indirect=["holder"])
def test_a_store_another_process_holds_is_refused_before_the_start(
        home: Path, holder: int, access: str) -> None:
    """An ingest or a training run (or a service started in the foreground: no PID file)."""
    for detach in ([], ["--detach"]):
        err = fails("serve", *detach, "--port", "18799")
        assert f"process {holder} (another program: python -c) has it open for {access}" in err
        assert "wait for it to finish" in err and "journey stop" not in err


def test_a_stale_pid_file_does_not_stop_a_foreground_serve(home: Path, busy_port: int) -> None:
    """A foreground service records its PID too: the stale record is to be replaced, and the
    start goes on (here to the port check, which fails before anything is written)."""
    (home / "serve.pid").write_text("not a pid")
    err = fails("serve", "--port", str(busy_port))
    assert "is stale (it holds no PID record ('not a pid')); replacing it" in err
    assert "in use" in err and (home / "serve.pid").read_text() == "not a pid"
