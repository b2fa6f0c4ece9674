"""Fixtures of the training tests: the shared simulated world, and the small experiment trained
once into its own MLflow home (read-only for the tests; tests that change the registry work on
a copy)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

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


