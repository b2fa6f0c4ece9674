"""`journey serve` checks the deployment and its settings before it starts a service: a wrong
home, no store, no API keys or a bad setting is refused with one line, not a hanging service."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from features.errors import ConfigError
from journey.service_process import OTHER_DEFINITIONS, PERMANENT_ERRORS
from serving.keys import Role, create_key
from serving.settings import ServeSettings
from serving.state import ServiceState
from tests.journey.cli_helpers import fails, ok

UNSET = ("JOURNEY_API_KEYS", "JOURNEY_MLFLOW_TRACKING_URI", "JOURNEY_MAX_BATCH",
         "JOURNEY_RISK_BANDS")


@pytest.fixture
def home(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in UNSET:
        monkeypatch.delenv(name, raising=False)
    path = isolated / "home"
    path.mkdir()
    monkeypatch.setenv("JOURNEY_HOME", str(path))
    return path


def test_a_mistyped_home_is_refused_not_created(home: Path, isolated: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOURNEY_HOME", str(isolated / "hoem"))
    err = fails("serve", "--detach")
    assert f"home {isolated / 'hoem'}" in err and "does not exist" in err
    assert "set in the environment" in err
    assert not (isolated / "hoem").exists()


def test_a_home_from_dotenv_is_named_so(home: Path, isolated: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JOURNEY_HOME")
    (isolated / ".env").write_text("JOURNEY_HOME=nowhere\n")
    assert f"set in {isolated / '.env'}" in fails("serve", "--detach")


def test_a_home_without_a_store_is_refused(home: Path) -> None:
    err = fails("serve", "--detach")
    assert err.startswith(f"error: event store not found: {home / 'events.duckdb'}; run "
                          "`journey ingest`")
    assert not (home / "mlflow").exists() and not (home / "events.duckdb").exists()


@pytest.mark.parametrize("text", [None, "", "keys: []\n", "kyes:\n- name: a\n"])
def test_a_service_without_keys_is_refused(home: Path, text: str | None) -> None:
    (home / "events.duckdb").write_bytes(b"")
    if text is not None:
        (home / "api_keys.yaml").write_text(text)
    err = fails("serve", "--detach")
    assert f"error: {home / 'api_keys.yaml'}" in err
    assert "journey keys create" in err or "unknown top-level key 'kyes'" in err


def test_keys_named_by_the_environment_are_checked(home: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    (home / "events.duckdb").write_bytes(b"")
    monkeypatch.setenv("JOURNEY_API_KEYS", str(home / "typo.yaml"))
    err = fails("serve", "--detach")
    assert f"{home / 'typo.yaml'} (JOURNEY_API_KEYS) does not exist" in err


def test_service_settings_are_checked_before_it_starts(home: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOURNEY_MAX_BATCH", "0")
    monkeypatch.setenv("JOURNEY_RISK_BANDS", "[0.7,0.2]")
    err = fails("serve", "--detach")
    assert "error: setting JOURNEY_MAX_BATCH='0'" in err
    assert "error: setting JOURNEY_RISK_BANDS=[0.7, 0.2]" in err and "low < high" in err


def test_workers_are_checked_first(home: Path) -> None:
    assert "one writer" in fails("serve", "--workers", "2")


def test_a_store_the_service_cannot_open_is_a_permanent_error(tmp_path: Path) -> None:
    """What serve --detach stops waiting on is what the service reports for a bad store."""
    (tmp_path / "events.duckdb").write_bytes(b"not a duckdb file" * 100)
    state = ServiceState(ServeSettings(home=tmp_path, drift_worker=False))
    try:
        state.start(background=False)
        why = state.readiness()["last_load_error"]
    finally:
        state.close()
    assert why.startswith(PERMANENT_ERRORS), why
    # The file's name, not where it lies: readyz answers anyone (the log has the path).
    assert "events.duckdb" in why and str(tmp_path) not in why


class _Running:
    def poll(self) -> None:
        return None


def test_a_champion_of_other_definitions_leaves_the_service_taking_events(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Training and promoting fix it while the service runs (the gate judges the challenger
    as against no champion), so serve --detach starts it as with no champion, with the
    reason, instead of stopping it or waiting out its 180 s."""
    from mlflow.entities.model_registry import ModelVersion, ModelVersionTag

    from features.spec import load_spec
    from models.registry import RegistryError
    from serving.champions import _check_definitions

    old = ModelVersion("journey-churn", "3", 0,
                       tags=[ModelVersionTag(  # type: ignore[no-untyped-call]
                           "journey.definition_hash", "0e734736276e4568")])
    with pytest.raises(RegistryError) as caught:
        _check_definitions("journey-churn", old, load_spec())
    error = f"RegistryError: {caught.value}"
    assert OTHER_DEFINITIONS in error
    import journey.service_process as service_process

    monkeypatch.setattr(service_process, "_probe", lambda url, context: (
        503, {"ready": False, "message": "models not loaded", "last_load_error": error}))
    running: Any = _Running()
    assert service_process.wait_ready("http://127.0.0.1:9/v1/readyz", running, 5.0,
                                      Path("serve.log"), lambda why: None) == error
    assert str(caught.value).endswith("train on the current feature definitions (journey "
                                      "train) and promote")


def test_keys_create_refuses_a_blank_name(home: Path) -> None:
    assert "a key needs a name" in fails("keys", "create", " ", "--role", "admin")
    assert ok("keys", "list") == [f"no keys in {home / 'api_keys.yaml'}"]


SERVICE_FILES = ["JOURNEY_TRIGGERS", "JOURNEY_ACTION_CATALOG", "JOURNEY_SEGMENTS_CONFIG",
                 "JOURNEY_DRIFT_CONFIG", "JOURNEY_TAXONOMY", "JOURNEY_FEATURE_SPEC"]


@pytest.mark.parametrize("setting", SERVICE_FILES)
def test_the_files_the_service_loads_are_checked_before_it_starts(
        home: Path, monkeypatch: pytest.MonkeyPatch, setting: str) -> None:
    """Each was a 15-line traceback from serve.log (or printed raw by a foreground serve)."""
    (home / "events.duckdb").write_bytes(b"")
    create_key(home / "api_keys.yaml", "a", Role.admin)
    monkeypatch.setenv(setting, str(home / "missing.yaml"))
    err = fails("serve", "--detach", "--port", "3222")
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert f"{home / 'missing.yaml'}" in err and err.endswith(f" ({setting})\n"), err
    assert not (home / "serve.pid").exists() and not (home / "serve.log").exists()
    (home / "bad.yaml").write_text("- a list\n")
    monkeypatch.setenv(setting, str(home / "bad.yaml"))
    err = fails("serve", "--detach", "--port", "3222")
    assert err.startswith(f"error: {home / 'bad.yaml'}") and err.endswith(f" ({setting})\n")


@pytest.fixture
def registry(tmp_path: Path) -> str:
    """A registry whose churn model has the aliases champion and challenger."""
    from models.registry import client_for

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = client_for(uri)
    client.create_registered_model("journey-churn")
    version = client.create_model_version("journey-churn", str(tmp_path), run_id=None)
    for alias in ("champion", "challenger"):
        client.set_registered_model_alias("journey-churn", alias, version.version)
    return uri


@pytest.mark.slow  # an MLflow registry
def test_a_misspelt_model_alias_is_refused_naming_those_that_exist(
        tmp_path: Path, registry: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """`serve --detach` waited its whole ready timeout (180 s) for the alias."""
    from features.spec import load_spec
    from journey.serving_cli import check_alias

    spec = load_spec()
    monkeypatch.setenv("JOURNEY_MODEL_ALIAS", "champoin")
    settings = ServeSettings(home=tmp_path, mlflow_tracking_uri=registry)
    with pytest.raises(ConfigError) as err:
        check_alias(settings, spec)
    assert str(err.value) == (
        f"setting JOURNEY_MODEL_ALIAS='champoin': no model in the registry ({registry}) has "
        "this alias; its aliases are challenger, champion; did you mean 'champion'?")
    monkeypatch.setenv("JOURNEY_MODEL_ALIAS", "challenger")
    check_alias(ServeSettings(home=tmp_path, mlflow_tracking_uri=registry), spec)
    with pytest.raises(ConfigError, match="JOURNEY_MODEL_ALIAS='x'"):  # given, not set
        check_alias(ServeSettings(home=tmp_path, mlflow_tracking_uri=registry, model_alias="x"),
                    spec)
    # A registry where nothing is promoted yet: any alias may still come.
    check_alias(ServeSettings(home=tmp_path, mlflow_tracking_uri=f"sqlite:///{tmp_path / 'e.db'}"),
                spec)


def test_the_default_model_alias_is_not_checked(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Before the first `journey promote` a service ingests and waits for its champions."""
    from features.spec import load_spec
    from journey import serving_cli
    from serving import champions

    def asked(*_: object) -> set[str]:
        raise AssertionError("the registry was asked")

    monkeypatch.delenv("JOURNEY_MODEL_ALIAS", raising=False)
    monkeypatch.setattr(champions, "registry_aliases", asked)
    serving_cli.check_alias(ServeSettings(home=tmp_path), load_spec())
