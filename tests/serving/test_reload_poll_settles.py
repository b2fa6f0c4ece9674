"""The registry poll loads champions only once two consecutive readings of their aliases
agree: a promotion moving them one at a time is never half loaded (serving/reload_poll.py)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import cast

import pytest

from serving.champions import ModelHolder, ModelSet
from serving.reload_poll import SettledPoll

OLD = {"churn": "1", "conversion": "1", "next_stage": "1"}
NEW = {"churn": "2", "conversion": "2", "next_stage": "2"}


class _Set:
    def __init__(self, versions: dict[str, str]) -> None:
        self._versions = dict(versions)

    def versions(self) -> dict[str, str]:
        return self._versions


class _Registry:
    """The aliases as each poll finds them: ``at`` moves on once per poll; every read within
    one poll (the poll's, the reload's, the load's) sees the same."""

    def __init__(self, readings: Sequence[dict[str, str] | Exception]) -> None:
        self.readings, self.at, self.loads = readings, 0, 0

    def now(self) -> dict[str, str]:
        reading = self.readings[min(self.at, len(self.readings) - 1)]
        if isinstance(reading, Exception):
            raise reading
        return dict(reading)

    def load(self) -> ModelSet:
        self.loads += 1
        return cast(ModelSet, _Set(self.now()))


def _served_per_poll(registry: _Registry, polls: int) -> list[dict[str, str]]:
    holder = ModelHolder(registry.load, registry.now)
    holder.reload()  # the service's first load
    poll = SettledPoll(holder, registry.now, holder.reload)
    served = []
    for _ in range(polls):
        registry.at += 1
        poll.tick()
        assert holder.current is not None
        served.append(holder.current.versions())
    return served


def test_a_promotion_in_progress_is_never_half_loaded() -> None:
    moving = [OLD, {**OLD, "churn": "2"}, {**NEW, "next_stage": "1"}, NEW, NEW, NEW]
    registry = _Registry(moving)
    served = _served_per_poll(registry, 5)
    assert served == [OLD, OLD, OLD, NEW, NEW]  # loaded at the second reading of NEW
    assert registry.loads == 2  # the first load and NEW: no set in between, nor NEW twice


def test_aliases_that_keep_moving_are_not_loaded() -> None:
    readings = [OLD, *({**OLD, "churn": str(v)} for v in range(2, 8))]
    assert _served_per_poll(_Registry(readings), 6) == [OLD] * 6


def test_a_registry_that_does_not_answer_is_recorded_as_before(
        caplog: pytest.LogCaptureFixture) -> None:
    registry = _Registry([OLD, RuntimeError("registry down"), OLD, OLD])
    holder = ModelHolder(registry.load, registry.now)
    holder.reload()
    poll = SettledPoll(holder, registry.now, holder.reload)
    registry.at = 1
    with caplog.at_level(logging.WARNING, "journey.serving"):
        assert poll.tick() is False
    assert holder.failures == 1 and "registry down" in (holder.last_error or "")
    assert "models not reloaded" in caplog.text
    registry.at = 2
    poll.tick()  # the served set read again: the error is cleared at once
    assert holder.last_error is None and registry.loads == 1
