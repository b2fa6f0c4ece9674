"""A store another process holds: the refusal names that process (from its command line),
says whether it reads or writes, and gives the advice for that one: the Journey service is
stopped or gone through, anything else is waited for."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from features import store_messages
from features.errors import StoreError
from features.store import EventStore

HOLD = ("import duckdb, sys, time\n"  # the store and the mode are its last two arguments
        "con = duckdb.connect(sys.argv[-2], read_only=sys.argv[-1] == 'ro')\n"
        "print('open', flush=True)\ntime.sleep(60)")


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "events.duckdb"
    EventStore(path).close()
    return path


@contextmanager
def _hold(argv: list[str], store: Path, mode: str) -> Iterator[int]:
    """A process started as ``argv`` holding ``store`` (``mode`` "ro" or "rw") meanwhile."""
    holder = subprocess.Popen([*argv, str(store), mode], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        yield holder.pid
    finally:
        holder.kill()
        holder.wait()


def _refusal(store: Path, read_only: bool = False) -> str:
    with pytest.raises(StoreError) as info:
        EventStore(store, read_only=read_only)
    return str(info.value)


def _journey_script(tmp_path: Path) -> Path:
    """An executable named ``journey``: its command line reads as `journey ingest ...`."""
    script = tmp_path / "bin" / "journey"
    script.parent.mkdir()
    script.write_text(f"#!{sys.executable}\n{HOLD}\n")
    script.chmod(0o755)
    return script


def test_an_ingest_that_writes_is_waited_for_not_stopped(store: Path, tmp_path: Path) -> None:
    script = _journey_script(tmp_path)
    with _hold([str(script), "ingest"], store, "rw") as pid:
        message = _refusal(store)
        assert f"process {pid} (`journey ingest`) has it open for writing" in message
        assert "wait for it to finish and run again" in message
        assert "journey stop" not in message and "service" not in message


def test_a_reader_is_named_as_one_and_waited_for(store: Path) -> None:
    with _hold([sys.executable, "-c", HOLD], store, "ro") as pid:
        message = _refusal(store)
        assert f"process {pid} (another program: python" in message
        assert "has it open for reading: wait for it to finish and run again" in message
        assert "journey stop" not in message
        EventStore(store, read_only=True).close()  # readers share it: only writers wait


def test_the_service_is_stopped_or_gone_through(store: Path) -> None:
    # The service's worker runs as `python -m _bentoml_impl.worker.service serving.service:..`
    argv = [sys.executable, "-c", HOLD, "serving.service:Journey"]
    with _hold(argv, store, "rw") as pid:
        for read_only in (False, True):
            message = _refusal(store, read_only)
            assert (f"process {pid} (the Journey service, `journey serve`) has it open for "
                    "writing: stop it first (`journey stop`") in message
            assert "POST /v1/events to ingest" in message


def test_without_proc_the_refusal_still_says_what_to_do(store: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_messages, "PROC", tmp_path / "hidden")  # as under hidepid
    with _hold([sys.executable, "-c", HOLD], store, "rw") as pid:
        message = _refusal(store)
        assert message.startswith(f"cannot open event store {store}: process {pid} has it "
                                  "open for writing. If it is the Journey service")
        assert "`journey stop`" in message and "Otherwise wait for it to finish" in message
        assert "\n" not in message


def test_a_python_module_journey_command_is_named(monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    (tmp_path / "7").mkdir()
    (tmp_path / "7" / "cmdline").write_bytes(b"python3\0-m\0journey\0train\0--target\0churn\0")
    monkeypatch.setattr(store_messages, "PROC", tmp_path)
    assert store_messages.lock_holder(7) == "`journey train`"
    assert store_messages.lock_holder(8) is None  # gone meanwhile
    assert store_messages.lock_holder(os.getpid()) is None  # not under the fake /proc
