"""Checks `journey train` makes around fitting: binary targets whose labels are one another's
complement (or copy), and models that score everyone alike kept from being the challenger."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, cast

import numpy as np
import pandas as pd

from models.targets import target
from training.train import ModelResult, pick_challenger, redundant_labels

STAGES = ("awareness", "purchase")


def _frame(converted: list[float | None], churned: list[float | None]) -> pd.DataFrame:
    return pd.DataFrame({"converted": pd.array(converted, dtype="boolean"),
                         "churned_inactive": pd.array(churned, dtype="boolean"),
                         "next_stage": ["purchase"] * len(converted)})


def _check(train: pd.DataFrame, rest: pd.DataFrame,
           targets: tuple[str, ...] = ("next_stage", "churn", "conversion")) -> list[str]:
    exp = SimpleNamespace(targets=list(targets), churn_label="churned_inactive")
    ds = SimpleNamespace(train=train, valid=rest, test=rest)
    return redundant_labels(cast(Any, exp), cast(Any, ds), STAGES)


def test_complementary_churn_and_conversion_are_named() -> None:
    """A purchase-only log: no purchase in the window is inactivity, so churn = 1 - conversion
    (the unknown row, known to one label only, does not count)."""
    train = _frame([1, 0, 0, 1, None], [0, 1, 1, 0, 1])
    [said] = _check(train, _frame([0, 1], [1, 0]))
    assert said.startswith("churn (churned_inactive) and conversion (converted) labels are "
                           "exact complements on all 8 rows that have both")
    # Not "drop one": scoring needs a champion of each (the advice left CDNOW unscorable).
    assert said.endswith("read their scores as one; both are still trained, as scoring needs "
                         "each")


def test_identical_labels_are_named_too() -> None:
    train = _frame([1, 0, 1], [1, 0, 1])
    [said] = _check(train, _frame([0], [0]), ("churn", "conversion"))
    assert "labels are identical on all 5 rows" in said and "targets:" not in said


def test_labels_that_differ_anywhere_pass() -> None:
    """One customer who neither buys nor leaves (a visit, say) is enough: two targets."""
    train = _frame([1, 0, 0, 1], [0, 1, 0, 0])
    assert _check(train, _frame([0, 1], [1, 0])) == []
    assert _check(_frame([1, 0], [0, 1]), _frame([0], [1]), ("churn",)) == []


@dataclass
class FakeClient:
    aliases: dict[str, str] = field(default_factory=dict)
    calls: list[tuple[str, ...]] = field(default_factory=list)

    def get_registered_model(self, name: str) -> SimpleNamespace:
        return SimpleNamespace(name=name, aliases=dict(self.aliases))

    def set_registered_model_alias(self, name: str, alias: str, version: str) -> None:
        self.calls.append(("set", name, alias, version))
        self.aliases[alias] = version

    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        self.calls.append(("delete", name, alias))
        del self.aliases[alias]


def _result(family: str, version: str, auc: float, degenerate: str = "") -> ModelResult:
    return ModelResult("churn", family, f"run{version}", version, {"roc_auc": auc},
                       {"roc_auc": auc}, 1.0, {}, degenerate)


def _pick(client: FakeClient, done: list[ModelResult]) -> tuple[list[str], list[str]]:
    log: list[str] = []
    warn: list[str] = []
    ctx = SimpleNamespace(log=log.append, warn=warn.append)
    pick_challenger(cast(Any, client), target("churn", STAGES), done, cast(Any, ctx))
    return log, warn


def test_a_model_scoring_everyone_alike_is_never_the_challenger() -> None:
    """Its validation AUC may even look best (0.5 beats a poor baseline): it is left out."""
    client = FakeClient()
    no_split = "the booster made no split (...): every customer gets the same score"
    log, warn = _pick(client, [_result("baseline", "1", 0.47),
                               _result("lightgbm", "2", 0.5, no_split)])
    assert client.calls == [("set", "journey-churn", "challenger", "1")]
    assert log == ["  journey-churn v1 (baseline) is the challenger"] and warn == []


def test_the_best_usable_model_wins() -> None:
    client = FakeClient()
    _pick(client, [_result("baseline", "1", 0.6), _result("lightgbm", "2", 0.7)])
    assert client.aliases == {"challenger": "2"}


def test_no_usable_model_leaves_no_challenger() -> None:
    """An earlier run's challenger would be promoted as if this run had picked it."""
    client = FakeClient({"challenger": "3", "champion": "1"})
    log, warn = _pick(client, [_result("lightgbm", "4", 0.5, "no split")])
    assert client.calls == [("delete", "journey-churn", "challenger")]
    assert client.aliases == {"champion": "1"}
    assert warn == ["warning: journey-churn: no challenger from this run, every model scores "
                    "everyone alike; the earlier challenger alias is removed"]
    assert log == []
    fresh = FakeClient()
    _, warn = _pick(fresh, [_result("lightgbm", "1", 0.5, "no split")])
    assert fresh.calls == [] and not warn[0].endswith("removed")


def test_labels_check_reads_every_split() -> None:
    """Complements on training but not on the test window: not redundant."""
    train = _frame([1, 0], [0, 1])
    test = _frame([0, 0], [0, 1])
    exp = SimpleNamespace(targets=["churn", "conversion"], churn_label="churned_inactive")
    ds = SimpleNamespace(train=train, valid=train, test=test)
    assert redundant_labels(cast(Any, exp), cast(Any, ds), STAGES) == []
    assert np.array_equal(target("conversion", STAGES).encode(test)[0], [0, 0])
