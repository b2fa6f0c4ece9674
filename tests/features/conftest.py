"""Fixtures of the feature kernel tests: the shipped spec and an OnlineFeatures built on it."""

from __future__ import annotations

import pytest

from features.online import OnlineFeatures
from features.spec import FeatureSpec, load_spec

# One local Spark session for every module here: a module importing the fixture itself would
# get a session-scoped fixture of its own, and the second teardown stops a stopped JVM.
from tests.features.engines import spark  # noqa: F401


@pytest.fixture(scope="module")
def spec() -> FeatureSpec:
    return load_spec()


@pytest.fixture(scope="module")
def online(spec: FeatureSpec) -> OnlineFeatures:
    return OnlineFeatures(spec)

