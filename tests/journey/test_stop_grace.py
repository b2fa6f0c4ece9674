"""`journey stop` waits as long as the service may drain (its JOURNEY_STOP_GRACE_SECONDS, which
`journey serve` spells out in the service's environment) and a margin before it kills."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from journey import service_process
from journey.service_process import SERVICE, stop_timeout, write_pid_file
from journey.serving_cli import GRACE_DEFAULT, service_env
from serving.settings import ServeSettings
from tests.journey.cli_helpers import ok


def draining_service(home: Path, grace: str | None, drains: float) -> subprocess.Popen[bytes]:
    """A process that looks like `journey serve`'s and, on SIGTERM, takes ``drains`` seconds
    to end (its requests in flight)."""
    code = ("import signal, sys, time\n"
            f"signal.signal(signal.SIGTERM, lambda *_: (time.sleep({drains}), sys.exit(0)))\n"
            "while True: time.sleep(0.05)")
    env = {**os.environ, "JOURNEY_HOME": str(home)}
    env.pop("JOURNEY_STOP_GRACE_SECONDS", None)
    if grace is not None:
        env["JOURNEY_STOP_GRACE_SECONDS"] = grace
    proc = subprocess.Popen([sys.executable, "-c", code, "serve", SERVICE], env=env,
                            start_new_session=True)
    time.sleep(0.3)
    return proc


@pytest.fixture
def services() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


@pytest.mark.parametrize(("grace", "how"), [("3", "stopped"), ("0.5", "killed")])
def test_stop_waits_for_the_services_grace_period(
        home: Path, services: list[subprocess.Popen[bytes]], monkeypatch: pytest.MonkeyPatch,
        grace: str, how: str) -> None:
    monkeypatch.setattr(service_process, "STOP_MARGIN_SECONDS", 0.5)
    proc = draining_service(home, grace, drains=1.5)
    services.append(proc)
    write_pid_file(home / "serve.pid", proc.pid)
    [line] = ok("stop")
    assert line.startswith(f"service PID {proc.pid} {how}")
    assert proc.wait(5) == (0 if how == "stopped" else -9)


def test_the_timeout_follows_the_services_environment(
        home: Path, services: list[subprocess.Popen[bytes]]) -> None:
    for grace, timeout in (("7", 17.0), ("0", 10.0), (None, GRACE_DEFAULT + 10),
                           ("soon", GRACE_DEFAULT + 10), ("nan", GRACE_DEFAULT + 10)):
        proc = draining_service(home, grace, drains=0)
        services.append(proc)
        assert stop_timeout(proc.pid, GRACE_DEFAULT) == timeout, grace
    assert stop_timeout(2**22 + 1, 4.0) == 14.0  # no such process: the default


def test_serve_spells_the_grace_out_for_stop(tmp_path: Path) -> None:
    settings = ServeSettings(home=tmp_path, stop_grace_seconds=2.5)
    assert service_env(settings)["JOURNEY_STOP_GRACE_SECONDS"] == "2.5"
    assert service_env(ServeSettings(home=tmp_path))["JOURNEY_STOP_GRACE_SECONDS"] == "15"


@pytest.mark.parametrize("value", [-1, 61])
def test_the_grace_is_bounded(value: float, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="stop_grace_seconds"):
        ServeSettings(home=tmp_path, stop_grace_seconds=value)
