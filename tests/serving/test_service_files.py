"""The configuration files the service loads at start, loaded by the one function that the
service and `journey serve`'s checks share: an error names the file, the key and the setting;
the action catalog is checked against the feature spec's features."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from features.errors import ConfigError
from features.spec import load_spec
from models.actions import load_catalog, spec_features
from serving.service_files import load_service_files
from serving.settings import ServeSettings
from serving.state import ServiceState

CATALOG = Path(__file__).resolve().parents[2] / "models" / "config" / "actions.yaml"


def misspelt_condition(tmp_path: Path) -> Path:
    """The packaged catalog with its support call's condition on `feature.csat_lo`."""
    text = CATALOG.read_text(encoding="utf-8")
    assert text.count("feature.csat_low, op: \">=\"") == 1
    path = tmp_path / "actions.yaml"
    path.write_text(text.replace("feature.csat_low, op: \">=\"", "feature.csat_lo, op: \">=\""))
    return path


def test_the_packaged_files_load(tmp_path: Path) -> None:
    files = load_service_files(ServeSettings(home=tmp_path))
    assert files.catalog.ids and files.segments.dimensions and files.drift.bins > 0


def test_a_catalog_condition_on_no_feature_is_refused(tmp_path: Path) -> None:
    """It loaded, and the support call was never eligible for anyone."""
    path = misspelt_condition(tmp_path)
    load_catalog(path)  # alone, nothing says which features exist
    with pytest.raises(ConfigError) as err:
        load_service_files(ServeSettings(home=tmp_path, action_catalog=path))
    assert str(err.value) == (
        f"{path}: actions.support_outreach.eligibility.conditions[0].on: no feature named "
        "'csat_lo' (did you mean 'csat_low'?) (JOURNEY_ACTION_CATALOG)")
    with pytest.raises(ConfigError, match="no feature named 'csat_lo'"):
        ServiceState(ServeSettings(home=tmp_path, action_catalog=path, drift_worker=False))


def test_an_outcome_value_on_no_feature_is_refused(tmp_path: Path) -> None:
    raw = yaml.safe_load(CATALOG.read_text(encoding="utf-8"))
    raw["outcomes"]["convert"]["value"]["feature"] = "avg_order_val"
    path = tmp_path / "actions.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=r"outcomes\.convert\.value\.feature: no feature named "
                                          "'avg_order_val'"):
        load_service_files(ServeSettings(home=tmp_path, action_catalog=path))


def test_attributes_and_categorical_features_may_be_conditions() -> None:
    names = spec_features(load_spec())
    assert {"attr_region", "last_channel", "avg_order_value", "csat_low"} <= set(names)


BAD = {
    "triggers": ("rules:\n  - {id: x, kind: risk_crossed, params: {threshold: 0.5, "
                 "direction: up}, endpoints: [], cooldown: 30d}\n",
                 "rules[0].endpoints: must be a non-empty list"),
    "drift_config": ('psi_alarm: "high"\n', "psi_alarm"),
    "segments_config": ("keep_snapshot: 12\n", "keep_snapshot"),
    "taxonomy": ("stages: [a]\n", ""),
    "feature_spec": ("windows_day: [7]\n", "windows_day"),
    "action_catalog": ("actions: {}\n", "outcomes: is required"),
}


def settings(home: Path, setting: str, path: Path) -> ServeSettings:
    values: dict[str, Any] = {"home": home, setting: path}
    return ServeSettings(**values)


@pytest.mark.parametrize("setting", sorted(BAD))
def test_each_file_names_itself_and_its_setting(tmp_path: Path, setting: str) -> None:
    text, says = BAD[setting]
    path = tmp_path / f"{setting}.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_service_files(settings(tmp_path, setting, path))
    message = str(err.value)
    assert message.startswith(str(path)) and says in message, message
    assert message.endswith(f"(JOURNEY_{setting.upper()})")


@pytest.mark.parametrize("setting", sorted(BAD))
def test_a_missing_or_unreadable_file_is_one_line(tmp_path: Path, setting: str) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match=rf"nope\.yaml.*\(JOURNEY_{setting.upper()}\)$"):
        load_service_files(settings(tmp_path, setting, missing))
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("# caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=rf"latin\.yaml.*\(JOURNEY_{setting.upper()}\)$"):
        load_service_files(settings(tmp_path, setting, latin))
