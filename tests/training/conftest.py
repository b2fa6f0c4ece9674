"""Fixtures of the training tests: the shared simulated world, and the small experiment trained
once into its own MLflow home (read-only for the tests; tests that change the registry work on
a copy)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.training.world import (
    clean_env,
    one_thread,
)


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    with one_thread():
        yield


@pytest.fixture(autouse=True)
def _clean_env() -> Iterator[None]:
    with clean_env():
        yield




@pytest.fixture(scope="session")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The drift tests' two worlds, one with a shift on SHIFT_DAY: built once for the drift
    and the retrain-drift tests."""
    from tests.training.test_drift import SHIFT, _store

    root = tmp_path_factory.mktemp("drift")
    scenario = root / "shift.yaml"
    scenario.write_text(yaml.safe_dump({"extends": "default", "shifts": [SHIFT]}))
    return {"none": _store(root / "none", None), "shift": _store(root / "shift", scenario)}
