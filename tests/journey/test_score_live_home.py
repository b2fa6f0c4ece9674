"""`journey score` of another store (JOURNEY_STORE=<copy>) while a service runs on the home
refuses to publish into the scores folder the service reads (the one it recorded when it
started), unless JOURNEY_SCORES names another one."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from features.errors import ConfigError
from journey.marketing_cli import refuse_live_scores
from journey.service_process import write_pid_file
from serving.settings import ServeSettings
from tests.journey.cli_helpers import fails
from tests.journey.test_serving_cli_process import fake_service


@pytest.fixture
def home(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = isolated / "home"
    path.mkdir()
    monkeypatch.setenv("JOURNEY_HOME", str(path))
    monkeypatch.delenv("JOURNEY_SCORES", raising=False)
    return path


@pytest.fixture
def service(home: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A running service recorded for the home, as `journey serve --detach` leaves it."""
    proc = fake_service(home)
    try:
        write_pid_file(home / "serve.pid", proc.pid)
        yield proc
    finally:
        proc.kill()
        proc.wait()


def test_a_copy_is_not_published_into_the_live_scores(
        home: Path, service: subprocess.Popen[bytes], isolated: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    copy = isolated / "copy.duckdb"
    monkeypatch.setenv("JOURNEY_STORE", str(copy))
    err = " ".join(fails("score").split())
    assert f"the service running on {home} (PID {service.pid})" in err
    assert f"this run of {copy} would replace its newest" in err
    assert "set JOURNEY_SCORES to another folder" in err and "`journey stop`" in err
    assert not (home / "scores").exists()


def test_what_stays_allowed(home: Path, service: subprocess.Popen[bytes],
                            isolated: Path) -> None:
    copy = isolated / "copy.duckdb"
    # An output folder of its own: nothing the service reads.
    refuse_live_scores(ServeSettings(store=copy, scores=isolated / "elsewhere"))
    # The home's own store: the service holds it, and opening it says so.
    refuse_live_scores(ServeSettings(store=home / "events.duckdb"))
    refuse_live_scores(ServeSettings())


def test_without_a_running_service_a_copy_is_scored_into_the_home(
        home: Path, isolated: Path) -> None:
    (home / "serve.pid").write_text("12345678")  # stale: no such process
    refuse_live_scores(ServeSettings(store=isolated / "copy.duckdb"))


def test_naming_the_live_folder_explicitly_is_refused_too(
        home: Path, service: subprocess.Popen[bytes], isolated: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A JOURNEY_SCORES in a .env the service and the command line share names the very
    folder the service reads: it is no escape."""
    copy = isolated / "copy.duckdb"
    monkeypatch.setenv("JOURNEY_STORE", str(copy))
    monkeypatch.setenv("JOURNEY_SCORES", str(home / "scores"))
    err = " ".join(fails("score").split())
    assert f"this run of {copy} would replace its newest" in err
    assert not (home / "scores").exists()


def test_the_folders_the_service_recorded_are_the_ones_compared(
        home: Path, service: subprocess.Popen[bytes], isolated: Path) -> None:
    live, store = isolated / "live", isolated / "served.duckdb"
    write_pid_file(home / "serve.pid", service.pid, {"scores": live, "store": store})
    copy = isolated / "copy.duckdb"
    # The home's default folder is not what this service shows.
    refuse_live_scores(ServeSettings(store=copy))
    # Its own store: it holds it, and opening it says so.
    refuse_live_scores(ServeSettings(store=store, scores=live))
    with pytest.raises(ConfigError, match=f"reads its snapshots from {live}"):
        refuse_live_scores(ServeSettings(store=copy, scores=live))
