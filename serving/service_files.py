"""The configuration files the service loads at start, loaded by one function that the service
(``ServiceState``) and `journey serve`'s checks before it spawns the service both call: a bad
or missing file is then one line naming the file, the key and the setting, in the terminal,
not a traceback in serve.log."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from features.errors import ConfigError
from features.spec import FeatureSpec, load_spec
from features.taxonomy import load_taxonomy
from models.actions import Catalog, check_action_vocabulary, load_catalog, spec_features
from models.drift import DriftSettings, load_drift_settings
from models.journey_map import JourneyMapParams, load_params
from serving.segment_config import SegmentConfig, load_segment_config
from serving.settings import ServeSettings
from serving.trigger_config import TriggerConfig, load_trigger_config

T = TypeVar("T")


@dataclass(frozen=True)
class ServiceFiles:
    spec: FeatureSpec
    catalog: Catalog
    segments: SegmentConfig
    triggers: TriggerConfig
    drift: DriftSettings
    journey_map: JourneyMapParams


def loading(setting: str, path: Path | None, load: Callable[[], T]) -> T:
    """``load()``, its error naming the setting that chose the file (the loaders name the file
    and the key); a file that cannot be read as text is a ConfigError too."""
    origin = f"JOURNEY_{setting.upper()}" if path is not None else (
        f"the packaged file; JOURNEY_{setting.upper()} names another")
    try:
        return load()
    except ConfigError as exc:
        raise ConfigError(f"{exc} ({origin})") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason}) "
                          f"({origin})") from exc
    except OSError as exc:
        raise ConfigError(f"{exc.filename or path}: cannot be read: {exc.strerror or exc} "
                          f"({origin})") from exc


def served_spec(settings: ServeSettings) -> FeatureSpec:
    taxonomy = loading("taxonomy", settings.taxonomy, lambda: load_taxonomy(settings.taxonomy))
    return loading("feature_spec", settings.feature_spec,
                   lambda: load_spec(settings.feature_spec, taxonomy))


def served_catalog(settings: ServeSettings, spec: FeatureSpec) -> Catalog:
    """The action catalog, checked against the feature spec: its stages, the features its
    conditions and outcome values read (a misspelt one made an action never eligible), and
    its actions' vocabulary."""
    def load() -> Catalog:
        catalog = load_catalog(settings.action_catalog, taxonomy=spec.taxonomy,
                               features=spec_features(spec))
        check_action_vocabulary(catalog, spec)
        return catalog

    return loading("action_catalog", settings.action_catalog, load)


def served_triggers(settings: ServeSettings, spec: FeatureSpec,
                    catalog: Catalog) -> TriggerConfig:
    return loading("triggers", settings.triggers,
                   lambda: load_trigger_config(settings.triggers, spec.stages, catalog.index))


def journey_map_params(settings: ServeSettings) -> JourneyMapParams:
    """The journey map's and KPIs' parameters scores are computed with."""
    return loading("journey_map_config", settings.journey_map_config,
                   lambda: load_params(settings.journey_map_config))


def load_service_files(settings: ServeSettings) -> ServiceFiles:
    """Every configuration file the service reads at start, in the order it reads them."""
    spec = served_spec(settings)
    catalog = served_catalog(settings, spec)
    segments = loading("segments_config", settings.segments_config,
                       lambda: load_segment_config(settings.segments_config, spec))
    triggers = served_triggers(settings, spec, catalog)
    drift = loading("drift_config", settings.drift_config,
                    lambda: load_drift_settings(settings.drift_config))
    return ServiceFiles(spec, catalog, segments, triggers, drift, journey_map_params(settings))
