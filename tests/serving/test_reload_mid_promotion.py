"""A load the aliases moved under is loaded again: the loader reads each target's alias as it
reaches that model, so a promotion made meanwhile would otherwise be served half
(serving/champions.ModelHolder)."""

from __future__ import annotations

from typing import cast

from serving.champions import LOAD_ATTEMPTS, ModelHolder, ModelSet
from tests.serving.test_reload_poll_settles import NEW, OLD, _Set


class _Registry:
    """Aliases read one at a time by the load; during each load numbered in
    ``promote_during``, a promotion moves them all between the first two reads."""

    def __init__(self, promote_during: set[int]) -> None:
        self.aliases = dict(OLD)
        self.promote_during, self.loads = promote_during, 0

    def probe(self) -> dict[str, str]:
        return dict(self.aliases)

    def load(self) -> ModelSet:
        self.loads += 1
        read: dict[str, str] = {}
        for i, name in enumerate(sorted(self.aliases)):
            if i == 1 and self.loads in self.promote_during:  # between two targets' reads
                self.aliases = {k: str(int(v) + 1) for k, v in self.aliases.items()}
            read[name] = self.aliases[name]
        return cast(ModelSet, _Set(read))


def test_a_promotion_during_the_load_is_not_served_half() -> None:
    registry = _Registry(promote_during={1})
    holder = ModelHolder(registry.load, registry.probe)
    assert holder.reload()
    assert holder.current is not None
    assert holder.current.versions() == NEW  # not {churn 1, conversion 2, next_stage 2}
    assert registry.loads == 2
    assert holder.last_error is None


def test_aliases_that_keep_moving_keep_the_served_set() -> None:
    registry = _Registry(promote_during={1})
    holder = ModelHolder(registry.load, registry.probe)
    holder.reload()
    served = holder.current
    start = registry.loads + 1
    registry.promote_during = set(range(start, start + LOAD_ATTEMPTS))
    registry.aliases = {k: "5" for k in OLD}  # a new promotion, then more during every load
    assert not holder.reload()
    assert holder.current is served
    assert holder.last_error is not None and "moved during each of" in holder.last_error
    assert holder.failures == 1
    registry.promote_during = set()
    assert holder.reload()  # the next reload, once they hold still, loads them
    assert holder.current is not None and holder.current.versions() == registry.aliases


def test_a_quiet_registry_is_loaded_once() -> None:
    registry = _Registry(promote_during=set())
    holder = ModelHolder(registry.load, registry.probe)
    assert holder.reload()
    assert registry.loads == 1
    assert holder.current is not None and holder.current.versions() == OLD
