"""JOURNEY_* settings are checked before a command does anything: a list setting that is not
JSON, a name no setting has (a misspelt one silently left the default in force), a .env line
python-dotenv cannot parse; each error names the variable and where it was set."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from journey.setting_checks import (
    OTHER_NAMES,
    SETTINGS_CLASSES,
    setting_names,
    unknown_settings,
)
from tests.journey.cli_helpers import fails

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working folder (its own .env) and no JOURNEY_* variable from outside."""
    for name in list(os.environ):
        if name.upper().startswith("JOURNEY_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("JOURNEY_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_list_setting_that_is_not_json_is_named(here: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOURNEY_RISK_BANDS", "high")
    err = fails("segments")
    assert err.startswith("error: setting JOURNEY_RISK_BANDS='high' (environment): must be a "
                          "JSON list, e.g. JOURNEY_RISK_BANDS='[0.3, 0.6]' (the default)"), err


def test_a_list_setting_in_dotenv_names_the_file_and_line(here: Path) -> None:
    (here / ".env").write_text("# settings\nJOURNEY_SURVIVAL_DAYS=7,30\n")
    err = fails("segments")
    assert err.startswith(f"error: setting JOURNEY_SURVIVAL_DAYS='7,30' ({here / '.env'}, "
                          "line 2): must be a JSON list, e.g. "
                          "JOURNEY_SURVIVAL_DAYS='[7, 30, 90]'"), err


def test_misspelt_names_are_refused_with_the_closest_setting(
        here: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOURNEY_RISK_BAND", "[0.2, 0.5]")
    (here / ".env").write_text("JOURNEY_HOME=home\njourney_max_bathc=10\n")
    lines = fails("stop").splitlines()
    assert lines == [
        "error: setting JOURNEY_RISK_BAND (environment): no Journey setting has this name; "
        "did you mean JOURNEY_RISK_BANDS?",
        f"error: setting journey_max_bathc ({here / '.env'}, line 2): no Journey setting has "
        "this name; did you mean JOURNEY_MAX_BATCH?"]


def test_a_dotenv_line_that_cannot_be_parsed_is_named(here: Path) -> None:
    (here / ".env").write_text("JOURNEY_HOME=home\nJOURNEY_STORE=\"events.duckdb\n")
    err = fails("stop")
    assert err.startswith(f"error: {here / '.env'}, line 2: cannot be parsed "
                          "('JOURNEY_STORE=\"events.duckdb')"), err


def test_a_dotenv_file_that_is_not_utf8_is_named(here: Path) -> None:
    (here / ".env").write_bytes("JOURNEY_HOME=caf\xe9\n".encode("latin-1"))
    assert fails("stop").startswith(f"error: {here / '.env'}: not UTF-8 text")


def test_every_setting_and_name_read_elsewhere_is_accepted(here: Path) -> None:
    given = {name: "x" for name in setting_names() | OTHER_NAMES.keys()}
    assert unknown_settings({**given, "journey_home": "x", "PATH": "/bin"}) == []


def test_a_secret_the_trigger_rules_name_is_accepted(here: Path) -> None:
    rules = here / "rules.yaml"
    rules.write_text("endpoints:\n  crm: {url: 'http://x', secret_env: JOURNEY_CRM_SECRET}\n")
    env = {"JOURNEY_TRIGGERS": str(rules), "JOURNEY_CRM_SECRET": "s" * 32}
    assert unknown_settings(env) == []
    (here / ".env").write_text(f"JOURNEY_TRIGGERS={rules}\n")
    assert unknown_settings({"JOURNEY_CRM_SECRET": "s" * 32}) == []
    assert unknown_settings({"JOURNEY_CRM_SECRETS": "s"}) != []


def test_the_checked_classes_are_every_settings_class_of_the_project() -> None:
    declared = set()
    for path in REPO.glob("[!.]*/**/*.py"):
        if any(part.startswith(".") for part in path.relative_to(REPO).parts):
            continue  # virtual environments
        declared |= set(re.findall(r"^class (\w+)\((?:BaseSettings|BlankIsUnset)\)",
                                   path.read_text(encoding="utf-8", errors="replace"),
                                   re.MULTILINE))
    # BlankIsUnset is the fieldless base both classes share (features/settings_sources.py).
    assert declared - {"BlankIsUnset"} == {cls.__name__ for cls in SETTINGS_CLASSES}


def test_every_journey_name_the_project_mentions_is_accepted() -> None:
    """The Makefile, docs, examples, benchmarks and tests set only names that are read."""
    known = setting_names() | OTHER_NAMES.keys()
    files = [REPO / "Makefile", REPO / "README.md", REPO / "MLproject",
             *(p for folder in ("docs", "examples", "benchmarks", "tests", "journey", "serving",
                                "features", "training", "models", "experiments")
               for p in (REPO / folder).rglob("*")
               if p.suffix in (".py", ".md", ".yaml", ".sh") and ".venv-peers" not in p.parts)]
    mine = {Path(__file__), REPO / "journey" / "setting_checks.py"}  # misspellings on purpose
    mentioned = {name for path in files if path.is_file() and path not in mine
                 for name in re.findall(r"\bJOURNEY_[A-Z0-9_]*[A-Z0-9]",
                                        path.read_text(encoding="utf-8", errors="replace"))}
    # Test-only secret_env names (set only around a trigger-config test).
    assert sorted(mentioned - known - {"JOURNEY_TEST_HOOK_SECRET",
                                       "JOURNEY_TEST_NO_SUCH_VAR"}) == []
