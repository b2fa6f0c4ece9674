"""The served models are all or nothing: when targets lack a champion, one error names every
one of them, the targets that have one, and what to do for each missing one, before anything
is loaded (an analyst whose churn labels have a single class learns why nothing is scored)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

import serving.champions as champions
from features.spec import load_spec
from models.registry import RegistryError
from models.targets import TARGETS, target

SPEC = load_spec()


def registry(monkeypatch: pytest.MonkeyPatch, versions: dict[str, str],
             challengers: dict[str, str] | None = None) -> None:
    """A registry whose ``champion`` alias names ``versions`` (by target), its ``challenger``
    alias ``challengers``, and nothing else."""
    by_alias = {alias: {target(t, SPEC.stages).registered_name: v for t, v in given.items()}
                for alias, given in (("champion", versions), ("challenger", challengers or {}))}

    def alias_version(client: Any, name: str, alias: str) -> Any:
        v = by_alias.get(alias, {}).get(name)
        return None if v is None else SimpleNamespace(version=v, tags={})

    def never(*_: Any) -> Any:
        raise AssertionError("nothing is loaded when a champion is missing")

    monkeypatch.setattr(champions, "alias_version", alias_version)
    monkeypatch.setattr(champions, "load_version", never)


def refusal(monkeypatch: pytest.MonkeyPatch, versions: dict[str, str]) -> str:
    registry(monkeypatch, versions)
    with pytest.raises(RegistryError) as err:
        champions.load_models(None, SPEC, "champion")  # type: ignore[arg-type]
    return str(err.value)


def test_every_missing_target_is_named_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    message = refusal(monkeypatch, {"conversion": "3"})
    assert message.startswith("models journey-next-stage (next_stage), journey-churn (churn) "
                              "have no version with alias 'champion'")
    for name in ("churn", "next_stage"):
        assert f"`journey promote --target {name}`" in message
        assert f"list {name} under `targets:` in the experiment" in message
    assert "those with one: conversion (journey-conversion v3)." in message
    assert "--target conversion" not in message
    assert "single class" in message


def test_with_no_champion_at_all_it_says_none_has_one(monkeypatch: pytest.MonkeyPatch
                                                      ) -> None:
    message = refusal(monkeypatch, {})
    assert "those with one: none of them. Train them (`journey train --experiment " in message
    assert "--target" not in message  # one step for all, not the same sentence three times


def test_one_missing_target_reads_as_before(monkeypatch: pytest.MonkeyPatch) -> None:
    """Logs and the service's readiness message are searched for this wording."""
    message = refusal(monkeypatch, {"next_stage": "1", "conversion": "2"})
    assert message.startswith("model journey-churn has no version with alias 'champion': ")
    assert "`journey promote --target churn`" in message


def test_another_alias_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    registry(monkeypatch, dict.fromkeys(TARGETS, "1"))
    with pytest.raises(RegistryError, match="have no version with alias 'staging'"):
        champions.load_models(None, SPEC, "staging")  # type: ignore[arg-type]


def test_every_champion_present_loads_them(monkeypatch: pytest.MonkeyPatch) -> None:
    registry(monkeypatch, dict.fromkeys(TARGETS, "1"))
    loaded: list[str] = []

    def load_version(client: Any, version: Any) -> Any:
        loaded.append(version.version)
        return SimpleNamespace(model=object(), version=version)

    monkeypatch.setattr(champions, "load_version", load_version)
    monkeypatch.setattr(champions, "_check_definitions", lambda *a: None)
    models = champions.load_models(None, SPEC, "champion")  # type: ignore[arg-type]
    assert set(models.models) == set(TARGETS) and len(loaded) == len(TARGETS)


def test_a_challenger_held_back_by_the_gate_is_not_told_to_train(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """On Shapees the first promotion refused churn (AUC 0.50): the fix is not training it."""
    registry(monkeypatch, {"next_stage": "1", "conversion": "2"}, {"churn": "4"})
    with pytest.raises(RegistryError) as err:
        champions.load_models(None, SPEC, "champion")  # type: ignore[arg-type]
    message = str(err.value)
    assert "churn: challenger v4 was not promoted (`journey promote --target churn` says why; "\
           "train a better one, or `--force` it)" in message
    assert "list churn under `targets:`" not in message
