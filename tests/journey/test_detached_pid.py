"""`journey serve --detach` that cannot record its PID (a full or read-only home) stops the
service it started, says why, and leaves no empty PID file: `journey stop` could not have found
that service, which went on holding the store and the port."""

from __future__ import annotations

import errno
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from features.errors import ConfigError
from journey import serving_cli
from journey.service_process import write_pid_file


def test_an_unwritable_pid_file_stops_the_service(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[subprocess.Popen[bytes]] = []
    real = subprocess.Popen

    def popen(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        proc = real(*args, **kwargs)
        started.append(proc)
        return proc

    def full(path: Path, pid: int, reads: object = None) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(subprocess, "Popen", popen)
    monkeypatch.setattr(serving_cli, "write_pid_file", full)
    service = [sys.executable, "-c", "import time; time.sleep(60)"]
    with pytest.raises(ConfigError, match=r"cannot write .*serve\.pid \(No space left on "
                                          r"device\): the service was stopped again"):
        serving_cli._detached(service, {}, tmp_path, "http://127.0.0.1:9", 5.0, None)
    assert len(started) == 1 and started[0].poll() is not None  # stopped, not orphaned


def test_a_failed_pid_write_leaves_no_empty_file(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    def fails(self: Path, text: str) -> int:
        self.open("w").close()  # created, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_text", fails)
    with pytest.raises(OSError):
        write_pid_file(tmp_path / "serve.pid", 1)
    assert list(tmp_path.iterdir()) == []
