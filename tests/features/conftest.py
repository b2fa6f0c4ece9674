"""Fixtures of the feature kernel tests: the shipped spec and an OnlineFeatures built on it."""

from __future__ import annotations

import pytest

from features.online import OnlineFeatures
from features.spec import FeatureSpec, load_spec


@pytest.fixture(scope="module")
def spec() -> FeatureSpec:
    return load_spec()


@pytest.fixture(scope="module")
def online(spec: FeatureSpec) -> OnlineFeatures:
    return OnlineFeatures(spec)

