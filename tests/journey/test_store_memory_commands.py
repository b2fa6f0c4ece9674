"""Commands that read the store outside the feature pipeline (summary, unload, backtest,
score, labels) open it within JOURNEY_STORE_MEMORY, and running out of memory there ends them with
one line saying what to change, exit 2, not DuckDB's traceback.

The running out is DuckDB's own, on the command's connection: a query that holds one list of
240 MB, which cannot spill, fits in the 80 % of RAM DuckDB takes by default but not in the
128MB the setting gives it; so a command that ignored the setting would finish instead."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import journey.marketing_cli as marketing_cli
from features import memory_errors, summary
from features.store import EventStore
from serving import champions, score_job
from serving.segment_config import load_segment_config
from tests.journey.cli_helpers import fails, ok, run
from tests.models.test_journey_map import SPEC
from tests.serving.constant_models import constant_models, population
from tests.serving.test_scoring_no_revenue import BEFORE, WHEN

SWOLLEN = "SELECT len(list(range)) FROM range(30000000)"  # one 240 MB list: no spilling it
# DuckDB's first line, then the advice for a limit of its own (no process limit).
RAN_OUT = (r" ran out of memory \(DuckDB: Out of Memory Error: failed to allocate data of "
           r"size .+\): raise JOURNEY_STORE_MEMORY \(128MB, what DuckDB may hold\), within "
           r"the machine's free memory, and run again")


@pytest.fixture
def store(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty store, with JOURNEY_STORE pointing at it and no process memory limit."""
    path = isolated / "events.duckdb"
    EventStore(path).close()
    monkeypatch.setenv("JOURNEY_STORE", str(path))
    monkeypatch.setenv("JOURNEY_HOME", str(isolated / "home"))
    monkeypatch.setattr(memory_errors, "process_memory_cap", lambda: None)
    return path


@pytest.fixture
def limits(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """DuckDB's memory_limit of every store closed from now on, as DuckDB spells it."""
    seen: list[str] = []
    close = EventStore.close

    def recorded(self: EventStore) -> None:
        row = self.con.execute("SELECT current_setting('memory_limit')").fetchone()
        seen.append(str(row[0]) if row else "")
        close(self)

    monkeypatch.setattr(EventStore, "close", recorded)
    return seen


def swell(es: EventStore) -> None:
    es.con.execute(SWOLLEN).fetchall()


@pytest.fixture
def scoring(store: Path, monkeypatch: pytest.MonkeyPatch) -> list[Callable[[EventStore], None]]:
    """`journey score` with the registry stood in for (constant models) and the store's
    population hand-built; what is appended to the list runs on the store first."""
    before: list[Callable[[EventStore], None]] = []
    pop = population(BEFORE, attributes=load_segment_config(None, SPEC).attributes)

    def from_store(es: EventStore, *_: Any) -> Any:
        for step in before:
            step(es)
        return pop

    monkeypatch.setattr(marketing_cli, "client_for", lambda uri: None)
    monkeypatch.setattr(champions, "load_models", lambda *a: constant_models(SPEC))
    monkeypatch.setattr(score_job, "population_from_store", from_store)
    return before


COMMANDS = {  # each reads (or writes) the store, and ends with an error on an empty one
    "summary": ("summary",),
    "unload": ("unload", "1", "--yes"),
    "backtest": ("backtest",),
    "labels": ("labels", "--as-of", "2025-06-01", "--horizon", "30"),
}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_the_setting_reaches_duckdb(command: str, store: Path, limits: list[str],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOURNEY_STORE_MEMORY", "300MB")
    run(*COMMANDS[command])
    assert limits == ["286.1 MiB"]  # DuckDB's spelling of 300MB


def test_score_reads_the_store_within_the_setting(scoring: list[Callable[[EventStore], None]],
                                                  limits: list[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOURNEY_STORE_MEMORY", "300MB")
    ok("score", "--as-of", WHEN.isoformat(), "--no-actions")
    assert limits == ["286.1 MiB"]


def test_summary_that_runs_out_ends_with_one_line(store: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    real = summary.journey_summary

    def swollen(es: EventStore, *args: Any) -> Any:
        swell(es)
        return real(es, *args)

    monkeypatch.setattr(summary, "journey_summary", swollen)
    monkeypatch.setenv("JOURNEY_STORE_MEMORY", "128MB")
    [line] = fails("summary").splitlines()
    assert re.fullmatch(f"error: summarising the event store {re.escape(str(store))}{RAN_OUT}",
                        line), line


def test_score_that_runs_out_ends_with_one_line(scoring: list[Callable[[EventStore], None]],
                                                store: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    scoring.append(swell)
    monkeypatch.setenv("JOURNEY_STORE_MEMORY", "128MB")
    [line] = fails("score", "--as-of", WHEN.isoformat(), "--no-actions").splitlines()
    doing = f"reading the customers of {store} as of {WHEN.isoformat()}"
    assert re.fullmatch(f"error: {re.escape(doing)}{RAN_OUT}", line), line


@pytest.fixture
def swollen_first_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """The store's time range, most commands' first read of it, runs out at 128MB."""
    real = EventStore.time_range

    def swollen(self: EventStore) -> Any:
        swell(self)
        return real(self)

    monkeypatch.setattr(EventStore, "time_range", swollen)
    monkeypatch.setenv("JOURNEY_STORE_MEMORY", "128MB")


@pytest.mark.parametrize(("command", "doing"), [
    (("backtest",), "backtesting the score snapshots against {store}"),
    (("labels", "--as-of", "2025-06-01", "--horizon", "30"),
     "computing the labels of {store} for [2025-06-01T00:00:00+00:00, +30d)"),
])
@pytest.mark.usefixtures("swollen_first_read")
def test_reading_that_runs_out_ends_with_one_line(command: tuple[str, ...], doing: str,
                                                   store: Path) -> None:
    [line] = fails(*command).splitlines()
    said = doing.format(store=store)
    assert re.fullmatch(f"error: {re.escape(said)}{RAN_OUT}", line), line


def test_any_other_error_still_has_its_traceback(store: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    def buggy(*_: Any) -> Any:
        raise ValueError("a bug")

    monkeypatch.setattr(summary, "journey_summary", buggy)
    result = run("summary")
    assert result.exit_code == 1 and isinstance(result.exception, ValueError)

