"""A JOURNEY_* variable set to nothing or to blanks is not set (`JOURNEY_AS_OF= journey serve`
clears the pinned clock): every setting of the CLI and the service takes its default, or
.env's value, instead of failing to parse '' as a date, number, boolean or list."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic_settings import BaseSettings

from journey.serving_cli import _home_origin
from journey.setting_checks import SETTINGS_CLASSES, unknown_settings
from serving.settings import ServeSettings
from tests.journey.cli_helpers import ok

BLANKS = ("", "  \t")
FIELDS = [(cls, name) for cls in SETTINGS_CLASSES for name in cls.model_fields]


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working folder (no .env) and no JOURNEY_* variable from outside."""
    for name in list(os.environ):
        if name.upper().startswith("JOURNEY_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("blank", BLANKS, ids=["empty", "blanks"])
@pytest.mark.parametrize(("cls", "field"), FIELDS,
                         ids=[f"{cls.__name__}.{name}" for cls, name in FIELDS])
def test_a_blank_variable_is_the_default(here: Path, monkeypatch: pytest.MonkeyPatch,
                                         cls: type[BaseSettings], field: str,
                                         blank: str) -> None:
    unset = getattr(cls(), field)
    monkeypatch.setenv(f"JOURNEY_{field.upper()}", blank)
    assert getattr(cls(), field) == unset


def test_a_blank_variable_leaves_the_dotenv_value_in_force(
        here: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (here / ".env").write_text("JOURNEY_AS_OF=2025-06-01\nJOURNEY_MAX_BATCH=7\n"
                               "JOURNEY_FAST_PREDICT=\n")
    monkeypatch.setenv("JOURNEY_AS_OF", "")
    monkeypatch.setenv("JOURNEY_MAX_BATCH", " ")
    settings = ServeSettings()
    assert settings.as_of is not None and settings.as_of.isoformat() == "2025-06-01T00:00:00+00:00"
    assert settings.max_batch == 7
    assert settings.fast_predict is True  # blank in .env too: the default


def test_a_command_runs_with_journey_as_of_cleared(here: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOURNEY_AS_OF", "")
    monkeypatch.setenv("JOURNEY_HOME", str(here / "home"))
    assert ok("keys", "list") == [f"no keys in {here / 'home' / 'api_keys.yaml'}"]


def test_a_blank_journey_home_is_reported_as_not_set(here: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOURNEY_HOME", "")
    (here / ".env").write_text("JOURNEY_HOME=\n")
    assert _home_origin(Path("var")) == "the default var: JOURNEY_HOME is not set"


def test_a_blank_journey_triggers_leaves_the_dotenv_rules_secrets_accepted(
        here: Path) -> None:
    rules = here / "rules.yaml"
    rules.write_text("endpoints:\n  crm:\n    secret_env: JOURNEY_TEST_HOOK_SECRET\n")
    (here / ".env").write_text(f"JOURNEY_TRIGGERS={rules}\n")
    assert unknown_settings({"JOURNEY_TRIGGERS": "", "JOURNEY_TEST_HOOK_SECRET": "s" * 32}) == []
