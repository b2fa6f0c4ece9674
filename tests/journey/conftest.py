"""Fixtures of the `journey` CLI tests: their own working directory, and touchpoints to ingest."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run every command from tmp_path (the default var/ and .env) with no JOURNEY_* settings."""
    for name in ("JOURNEY_STORE", "JOURNEY_HOME", "JOURNEY_TAXONOMY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def home(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty home under ``isolated``, named by JOURNEY_HOME (files with a home of their own
    define theirs)."""
    path = isolated / "home"
    path.mkdir()
    monkeypatch.setenv("JOURNEY_HOME", str(path))
    return path


@pytest.fixture
def touchpoints(tmp_path: Path) -> Path:
    """Six rows in a foreign shape: three valid, three rejected for three different reasons."""
    path = tmp_path / "touchpoints.csv"
    path.write_text(
        "user,when,what,src\n"
        "u1,2025-03-01T10:00:00Z,Page View,Search\n"    # line 2
        "u1,2025-03-02T10:00:00Z,purchase,search\n"     # line 3
        ",2025-03-02T11:00:00Z,page_view,direct\n"      # line 4: no customer
        "u2,not-a-date,page_view,direct\n"              # line 5: bad timestamp
        "u2,2025-03-03T10:00:00Z,Webinar,direct\n"      # line 6: unknown event type
        "u3,2025-03-04T10:00:00+02:00,review,app\n",    # line 7
        encoding="utf-8",
    )
    return path
