"""`journey personas`: fit personas on a feature snapshot, track the run in MLflow (params, k and
the silhouette of every k tried, sizes, the descriptions as JSON and Markdown), register the
model as ``journey-personas``, and make it the champion when there is none or when asked."""

from __future__ import annotations

import json
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from features.spec import FeatureSpec
from models.persona_features import RATIOS
from models.persona_params import REGISTERED_NAME, PersonaParams
from models.persona_words import summary_lines
from models.personas import PersonaModel
from training.champions import move_champion, promotion
from training.model_io import log_registered
from training.tracking import KIND_TAG, Tracking, own_run
from training.train import CHAMPION

PERSONA_EXPERIMENT = "journey-personas"


@dataclass(frozen=True)
class PersonaRun:
    model: PersonaModel
    profiles: list[dict[str, Any]]  # descriptions, with churn risk when scores were given
    version: str
    run_id: str
    champion: bool  # whether this version is now the champion
    seconds: float


def input_columns(model: PersonaModel, frame: pa.Table) -> list[str]:
    """The snapshot columns the model reads (its signature's input)."""
    w = model.window_days
    wanted = {f"events_{w}d", f"revenue_{w}d", "avg_order_value", "csat_mean", "stage_current",
              *(f"{c}_{w}d" for pair in RATIOS.values() for c in pair),
              *(f"ch_{c}_{w}d" for c in model.channels_)}
    return [c for c in frame.column_names if c in wanted]


def scores_for(frame: pa.Table, scores: pa.Table | None) -> tuple[Any, Any]:
    """Churn probability and expected value of each frame customer from a score snapshot's
    customers (NaN where it has none), or (None, None)."""
    if scores is None:
        return None, None
    by_id = scores.select(["customer_id", "churn", "expected_value"]).to_pandas()
    by_id = by_id.set_index("customer_id")
    ids = pd.Index(frame["customer_id"].to_pylist())
    got = by_id.reindex(ids)
    return got["churn"].to_numpy(np.float64), got["expected_value"].to_numpy(np.float64)


def fit_personas(frame: pa.Table, params: PersonaParams, spec: FeatureSpec,
                 scores: pa.Table | None = None, values_known: bool = True
                 ) -> tuple[PersonaModel, list[dict[str, Any]]]:
    """The fitted model and its descriptions (with churn risk and expected value from
    ``scores`` where a customer has them; without revenue when ``values_known`` is False: no
    conversion carried a value)."""
    model = PersonaModel.from_params(params, spec.stages).fit(frame, values_known=values_known)
    churn, value = scores_for(frame, scores)
    if churn is None:
        return model, list(model.profiles_)
    return model, model.describe(frame, churn=churn, value=value)


def markdown(model: PersonaModel, profiles: list[dict[str, Any]], names: list[str],
             as_of: str) -> str:
    lines = [f"# Personas as of {as_of}", "",
             f"k = {model.k_} by {model.criterion['name']}: "
             + ", ".join(f"k={k}: {v}" for k, v in model.criterion["values"].items()), "",
             f"{model.n_active_:,} of {model.n_customers_:,} customers assigned (the others have "
             f"fewer than {model.min_events} events in {model.window_days} days).", ""]
    for prof, name in zip(profiles, names, strict=True):
        lines += [f"## {prof['id']}: {name}", "", *summary_lines(prof), ""]
    if model.dropped_:
        lines += ["Ratios left out: " + "; ".join(f"{k} ({v})"
                                                  for k, v in model.dropped_.items()), ""]
    return "\n".join(lines)


def track_personas(model: PersonaModel, profiles: list[dict[str, Any]], frame: pa.Table,
                   tracking: Tracking, spec: FeatureSpec, as_of: datetime, promote: bool,
                   seconds: float) -> PersonaRun:
    """Log the fitted model's run and register it; alias it champion when asked or when no
    champion exists."""
    import mlflow

    from models.registry import alias_version

    client = tracking.client()
    when = as_of.isoformat().replace("+00:00", "Z")
    with own_run(tracking.experiment_id(client, PERSONA_EXPERIMENT),
                 f"personas-{as_of.date()}") as run:
        tags = {KIND_TAG: "personas", "journey.definition_hash": spec.hash,
                "journey.as_of": when, "journey.k": str(model.k_)}
        mlflow.set_tags(tags)
        mlflow.log_params({**asdict(model.params()), "as_of": when,
                           "features_used": ",".join(model.feature_names_[j]
                                                     for j in model.used_)})
        mlflow.log_metrics(_metrics(model, seconds))
        names = list(model.default_names_)
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "personas.json").write_text(json.dumps(
                {"as_of": when, "k": model.k_, "criterion": model.criterion,
                 "dropped": model.dropped_, "names": names, "personas": profiles},
                indent=1), encoding="utf-8")
            (Path(tmp) / "personas.md").write_text(markdown(model, profiles, names, when),
                                                   encoding="utf-8")
            mlflow.log_artifacts(tmp)
        version = _log_model(model, frame, tags)
    # Under the registry's lock: two first fits side by side would each find no champion,
    # and a promotion reading the aliases meanwhile would decide on a registry that moved.
    with promotion(tracking.tracking_uri):
        champion = promote or alias_version(client, REGISTERED_NAME, CHAMPION) is None
        if champion:
            move_champion(client, REGISTERED_NAME, version)
    return PersonaRun(model, profiles, version, run.info.run_id, champion, seconds)


def _metrics(model: PersonaModel, seconds: float) -> dict[str, float]:
    out = {"k": float(model.k_), "silhouette": model.silhouette_[model.k_],
           "customers": float(model.n_customers_), "assigned": float(model.n_active_),
           "coverage": model.n_active_ / max(model.n_customers_, 1),
           "fit_customers": float(model.n_fit_), "fit_seconds": seconds}
    out.update({f"silhouette_k{k}": v for k, v in model.silhouette_.items()})
    out.update({f"persona_{i}_customers": float(n) for i, n in enumerate(model.sizes_)})
    return out


def _log_model(model: PersonaModel, frame: pa.Table, tags: dict[str, str]) -> str:
    from mlflow.models import infer_signature

    # Doubles, as the vectors are: MLflow reads an all-whole column as integers, which could
    # not hold a missing value.
    example = frame.select(input_columns(model, frame)).slice(0, 5).to_pandas().astype("float64")
    labels = pd.DataFrame({"persona": model.predict(example, assign_all=True)})
    with warnings.catch_warnings():  # "integer columns cannot hold missing values": ids never
        warnings.simplefilter("ignore", UserWarning)  # are missing (-1 is unassigned)
        signature = infer_signature(example, labels)
    return log_registered(model, REGISTERED_NAME, signature, example, tags)


def fit_and_track(frame: pa.Table, params: PersonaParams, spec: FeatureSpec,
                  tracking: Tracking, as_of: datetime, promote: bool = False,
                  scores: pa.Table | None = None, values_known: bool = True) -> PersonaRun:
    started = time.perf_counter()
    model, profiles = fit_personas(frame, params, spec, scores, values_known)
    seconds = time.perf_counter() - started
    return track_personas(model, profiles, frame, tracking, spec, as_of, promote, seconds)
