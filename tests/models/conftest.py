"""Model tests share the two cores with other work: one thread for LightGBM and BLAS, since
OpenMP spin-waiting on a busy core makes fits many times slower. And the next-best-action
tests' catalogs, built from small YAML files."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from threadpoolctl import threadpool_limits

from models.actions import load_catalog
from models.catalog import Catalog
from tests.models.arbitration_helpers import BASE, Edit


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    with threadpool_limits(1):
        yield


@pytest.fixture
def make(tmp_path: Path) -> Callable[..., Catalog]:
    """A catalog from BASE after some edits, loaded from a YAML file as a user would write it."""
    count = iter(range(1000))

    def build(*edits: Edit) -> Catalog:
        raw = copy.deepcopy(BASE)
        for edit in edits:
            edit(raw)
        path = tmp_path / f"actions_{next(count)}.yaml"
        path.write_text(yaml.safe_dump(raw), encoding="utf-8")
        return load_catalog(path)

    return build
