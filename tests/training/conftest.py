"""Fixtures of the training tests: the shared simulated world, and the small experiment trained
once into its own MLflow home (read-only for the tests; tests that change the registry work on
a copy)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.training.world import (
    SMALL,
    Trained,
    World,
    build_world,
    clean_env,
    one_thread,
    train_into,
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
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory)


@pytest.fixture(scope="session")
def trained(world: World, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """The small experiment (3 targets x baseline, LightGBM) trained into a fresh home."""
    return train_into(world, tmp_path_factory.mktemp("trained"), SMALL)
