"""Shared fixtures: the default taxonomy and a helper that loads a source and collects results."""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from features.loaders import REJECT_HEADER, LoadReport, load_events
from features.mapping import ColumnMapping, identity_mapping
from features.normalize import STAGED_SCHEMA
from features.taxonomy import Taxonomy, load_taxonomy
from tests.mlflow_schema import migrated_copies
from tests.scheduling import (  # noqa: F401 (hooks: pytest finds them here)
    pytest_addoption,
    pytest_collection_modifyitems,
    pytest_configure,
    pytest_xdist_make_scheduler,
)
from tests.training.world import (
    SMALL,
    SMALL_UPLIFT,
    Trained,
    UpliftTrained,
    World,
    build_world,
    copy_registry,
    train_into,
    train_uplift_into,
)

# make test runs one test process per core. A LightGBM fit in each, with as many threads as
# the machine has cores, spins on the other's core and runs several times slower than with
# one (models.threads reads this); a test that wants more sets it.
if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
    os.environ.setdefault("OMP_NUM_THREADS", "1")


@dataclass
class Loaded:
    """Everything one load_events run produced."""

    table: pa.Table
    report: LoadReport
    rejects: list[dict[str, str]]  # rows of the rejects CSV file, as written
    batches: int

    @property
    def rows(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = self.table.to_pylist()
        return out

    def column(self, name: str) -> list[Any]:
        out: list[Any] = self.table.column(name).to_pylist()
        return out

    def reject_tuples(self) -> list[tuple[int, str, str, str]]:
        """(line, field, reason, value) of each reject, in file order."""
        return [(int(r["line"]), r["field"], r["reason"], r["value"]) for r in self.rejects]


LoadFn = Callable[..., Loaded]


@pytest.fixture(scope="session", autouse=True)
def _mlflow_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """New MLflow stores in this process copy one migrated store (tests/mlflow_schema.py)."""
    with migrated_copies(tmp_path_factory.mktemp("mlflow-schema")):
        yield


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """The simulated world shared by the training, CLI and serving tests (built once)."""
    return build_world(tmp_path_factory)


@pytest.fixture(scope="session")
def trained(world: World, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """The small experiment (3 targets x baseline, LightGBM) trained into a fresh home."""
    return train_into(world, tmp_path_factory.mktemp("trained"), SMALL)


@pytest.fixture(scope="session")
def uplift_trained(world: World, trained: Trained,
                   tmp_path_factory: pytest.TempPathFactory) -> UpliftTrained:
    """The small uplift experiment trained and promoted in a copy of ``trained``'s registry
    (so it holds the predictive models too, as a service needs)."""
    home = tmp_path_factory.mktemp("uplift")
    return train_uplift_into(world, home, SMALL_UPLIFT, copy_registry(trained.tracking, home))


@pytest.fixture(scope="session")
def taxonomy() -> Taxonomy:
    return load_taxonomy()


@pytest.fixture
def load(tmp_path: Path, taxonomy: Taxonomy) -> LoadFn:
    """load(path, mapping=None, tax=None, batch_rows=...) -> Loaded (rejects file read back)."""
    counter = iter(range(1_000_000))

    def _load(
        path: Path,
        mapping: ColumnMapping | None = None,
        tax: Taxonomy | None = None,
        **kwargs: Any,
    ) -> Loaded:
        rejects_path = tmp_path / "rejects" / f"rejects-{next(counter)}.csv"
        report = LoadReport()
        batches = list(
            load_events(path, mapping or identity_mapping(), tax or taxonomy, report, rejects_path,
                        **kwargs)
        )
        table = pa.concat_tables(batches) if batches else STAGED_SCHEMA.empty_table()
        rejects: list[dict[str, str]] = []
        if rejects_path.exists():
            with rejects_path.open(newline="", encoding="utf-8") as fh:
                reader = csv.DictReader(fh)
                assert tuple(reader.fieldnames or ()) == REJECT_HEADER
                rejects = list(reader)
        # The accounting invariant holds for every load.
        assert report.rows_read == report.valid + report.rejected_total
        assert report.valid == table.num_rows
        assert len(rejects) == report.rejected_total
        return Loaded(table, report, rejects, len(batches))

    return _load
