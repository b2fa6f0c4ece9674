"""Persona discovery: behavioural clusters of customers, found in their feature vectors.

``PersonaModel`` is a scikit-learn style estimator (``fit`` returns self, learned attributes
end in ``_``, seeded, picklable). It reads feature frames (a feature snapshot) when fitting and
the online ``Vectors`` when scoring, both through ``models.persona_features`` (one function).

Method, and why:
- Ratios of the window's counts, not the raw vector: raw counts separate active from quiet
  customers, not kinds of customer (k-means on the standardised raw vector agrees with the
  simulator's latent types at ARI 0.2; on the ratios at 0.6-0.7).
- Only customers with ``min_events`` customer events in the window are fitted and assigned:
  below it the ratios are mostly noise (agreement falls from 0.69 at 20 events to 0.54 at 10
  and 0.45 at 5 on the demo). The others are "unassigned" (persona -1), and said so.
- Winsorise, fill missing with the median, drop ratios that are mostly missing, constant or a
  near-copy of an earlier one (an unsupervised rule: a behaviour counted twice pulls the
  clusters towards it), standardise, k-means for each k in [k_min, k_max], keep the k with the
  best mean silhouette on a fixed sample.
- Persona ids are ordered by size (0 the largest), ties by centroid, so the same data and seed
  give the same ids.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import asdict, fields
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
from sklearn.base import BaseEstimator

from features.online import Vectors
from models.persona_features import (
    Columns,
    activity,
    channels_in,
    columns_of,
    feature_names,
    persona_features,
)
from models.persona_params import PersonaError, PersonaParams, TooFewActiveError
from models.persona_words import default_names, describe

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Inputs: TypeAlias = pd.DataFrame | pa.Table | Vectors | Columns
UNASSIGNED = -1


class PersonaModel(BaseEstimator):  # type: ignore[misc]
    """Behavioural personas: k-means on standardised ratios of the window's counts."""

    def __init__(self, window_days: int = 90, min_events: int = 20, k_min: int = 3,
                 k_max: int = 8, silhouette_sample: int = 5000, n_init: int = 10,
                 winsor: float = 0.01, max_missing: float = 0.6, max_correlation: float = 0.8,
                 max_fit_customers: int = 200_000, top_features: int = 3,
                 stages: tuple[str, ...] = (), seed: int = 0) -> None:
        self.window_days = window_days
        self.min_events = min_events
        self.k_min = k_min
        self.k_max = k_max
        self.silhouette_sample = silhouette_sample
        self.n_init = n_init
        self.winsor = winsor
        self.max_missing = max_missing
        self.max_correlation = max_correlation
        self.max_fit_customers = max_fit_customers
        self.top_features = top_features
        self.stages = stages
        self.seed = seed

    @classmethod
    def from_params(cls, params: PersonaParams, stages: tuple[str, ...] = ()) -> PersonaModel:
        return cls(**asdict(params), stages=tuple(stages))

    def params(self) -> PersonaParams:
        return PersonaParams(**{f.name: getattr(self, f.name) for f in fields(PersonaParams)})

    # -- fitting ---------------------------------------------------------------------------
    def fit(self, X: Inputs, y: object = None,  # noqa: N803
            values_known: bool = True) -> PersonaModel:
        """Choose k and the personas from the active customers of ``X``. ``values_known``
        False: no conversion of the data carried a value (its revenue columns hold 0s that
        are no figures), so the descriptions leave revenue and order value out."""
        cols = columns_of(X)
        self.values_known_ = values_known
        if cols.get(f"events_{self.window_days}d") is None:
            # Every ratio would be missing and nobody active: say so, not "too few customers".
            windows = sorted(int(m.group(1)) for n in cols.names()
                             if (m := re.fullmatch(r"events_(\d+)d", n)))
            raise PersonaError(f"window_days: {self.window_days} is not one of the feature "
                               f"spec's windows_days {windows}")
        self.channels_ = channels_in(cols, self.window_days)
        self.feature_names_ = feature_names(self.channels_)
        raw = persona_features(cols, self.window_days, self.channels_)
        active = activity(cols, self.window_days) >= self.min_events
        rows = np.flatnonzero(active)
        need = max(10 * self.k_max, 50)
        if len(rows) < need:
            raise TooFewActiveError(
                f"only {len(rows):,} of {len(cols):,} customers have {self.min_events} or more "
                f"events in the {self.window_days} days before the cutoff; persona discovery "
                f"needs {need:,}", *_fewer(activity(cols, self.window_days), need))
        if len(rows) > self.max_fit_customers:  # a seeded sample: same data, same sample
            pick = np.random.default_rng(self.seed).choice(len(rows), self.max_fit_customers,
                                                           replace=False)
            rows = np.sort(rows[pick])
        self._select(raw[rows])
        z = self._standardise(raw[rows])
        self._choose_k(z)
        self.n_customers_, self.n_active_, self.n_fit_ = len(cols), int(active.sum()), len(rows)
        labels = np.where(active, self._nearest(self._standardise(raw)), UNASSIGNED)
        self.sizes_ = np.bincount(labels[active], minlength=self.k_).astype(np.int64)
        self.profiles_ = self.describe(X, labels=labels)
        self.default_names_ = default_names(self.profiles_)
        return self

    def _select(self, raw: F64) -> None:
        """Which ratios cluster, and the clipping, filling and scaling of each (learned on the
        fitted customers). Ratios are considered in ``feature_names`` order."""
        with warnings.catch_warnings():  # an all-missing ratio is dropped just below
            warnings.simplefilter("ignore", RuntimeWarning)
            low = np.nanquantile(raw, self.winsor, axis=0)
            high = np.nanquantile(raw, 1 - self.winsor, axis=0)
            clipped = np.clip(raw, low, high)
            fill = np.nanmedian(clipped, axis=0)
        filled = np.where(np.isnan(clipped), fill, clipped)
        std = np.nan_to_num(filled.std(axis=0))
        missing = np.isnan(raw).mean(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = np.nan_to_num(np.corrcoef(filled, rowvar=False))
        used: list[int] = []
        dropped: dict[str, str] = {}
        for j, name in enumerate(self.feature_names_):
            if missing[j] > self.max_missing:
                dropped[name] = f"missing for {missing[j]:.0%} of the fitted customers"
            elif std[j] <= 1e-12:
                dropped[name] = "the same for every fitted customer"
            elif used and (r := float(np.abs(corr[j, used]).max())) >= self.max_correlation:
                twin = self.feature_names_[used[int(np.abs(corr[j, used]).argmax())]]
                dropped[name] = f"correlated with {twin} (r = {r:.2f})"
            else:
                used.append(j)
        if not used:
            raise PersonaError("no persona feature varies among the fitted customers")
        self.used_ = np.asarray(used, np.int64)
        self.dropped_ = dropped
        self.low_, self.high_, self.fill_ = low, high, fill
        self.mean_ = filled[:, used].mean(axis=0)
        self.scale_ = std[used]

    def _standardise(self, raw: F64) -> F64:
        u = self.used_
        clipped = np.clip(raw[:, u], self.low_[u], self.high_[u])
        filled = np.where(np.isnan(clipped), self.fill_[u], clipped)
        out: F64 = (filled - self.mean_) / self.scale_
        return out

    def _choose_k(self, z: F64) -> None:
        from sklearn.cluster import KMeans
        from sklearn.metrics import silhouette_score
        from threadpoolctl import threadpool_limits

        scores: dict[int, float] = {}
        fitted = {}
        # One thread: k-means on a few hundred thousand short rows takes well under a second
        # that way, while OpenMP workers spinning on cores other work holds made it 5-50x
        # slower (measured on 2 busy cores). The answer does not depend on the threads.
        with threadpool_limits(1):
            for k in range(self.k_min, min(self.k_max, len(z) - 1) + 1):
                km = KMeans(k, n_init=self.n_init, random_state=self.seed).fit(z)
                fitted[k] = km
                scores[k] = float(silhouette_score(
                    z, km.labels_, sample_size=min(self.silhouette_sample, len(z)),
                    random_state=self.seed))
        best = max(scores, key=lambda k: (round(scores[k], 6), -k))
        km = fitted[best]
        sizes = np.bincount(km.labels_, minlength=best)
        # Largest first; equal sizes by centroid, so ids do not depend on k-means' numbering.
        order = np.lexsort((*km.cluster_centers_.T[::-1], -sizes))
        self.k_ = best
        self.cluster_centers_ = np.asarray(km.cluster_centers_[order], np.float64)
        self.silhouette_ = scores
        self.inertia_ = {k: float(m.inertia_) for k, m in fitted.items()}

    # -- assignment ------------------------------------------------------------------------
    def _nearest(self, z: F64) -> I64:
        c = self.cluster_centers_
        d = (z * z).sum(axis=1)[:, None] - 2.0 * z @ c.T + (c * c).sum(axis=1)[None, :]
        return np.asarray(d.argmin(axis=1), np.int64)

    def predict(self, X: Inputs, assign_all: bool = False) -> I64:  # noqa: N803
        """Each customer's persona id; -1 (unassigned) for customers with fewer than
        ``min_events`` events in the window, unless ``assign_all`` (then the nearest)."""
        cols = columns_of(X)
        labels = self._nearest(self._standardise(
            persona_features(cols, self.window_days, self.channels_)))
        if not assign_all:
            labels[activity(cols, self.window_days) < self.min_events] = UNASSIGNED
        return labels

    def describe(self, X: Inputs, labels: I64 | None = None,  # noqa: N803
                 churn: F64 | None = None, value: F64 | None = None) -> list[dict[str, Any]]:
        """Each persona in plain words (see ``models.persona_words.describe``); ``churn`` and
        ``value`` (per customer of ``X``, NaN unknown) add mean churn risk and expected value."""
        cols = columns_of(X)
        raw = persona_features(cols, self.window_days, self.channels_)
        labels = self.predict(cols) if labels is None else labels
        clipped = np.clip(raw, self.low_, self.high_)
        stage = cols.get("stage_current")
        revenue = cols.get(f"revenue_{self.window_days}d")
        return describe(clipped, labels, self.k_, self.feature_names_, {
            "stage": stage, "revenue": revenue, "churn": churn, "value": value},
            self.stages, self.window_days, self.top_features,
            getattr(self, "values_known_", True))  # models fitted before it was kept

    @property
    def criterion(self) -> dict[str, Any]:
        """How k was chosen, for logs and reports."""
        return {"name": "silhouette (mean, euclidean, standardised ratios)",
                "sample": self.silhouette_sample, "range": [self.k_min, self.k_max],
                "values": {str(k): round(v, 4) for k, v in self.silhouette_.items()},
                "chosen": self.k_}



def _fewer(events: npt.NDArray[Any], need: int) -> tuple[str, list[str]]:
    """What would let enough customers in, from the busiest ``need`` customers' fewest
    events (a lead-in and the options). A later cutoff is not among them: whether one exists
    is the data's, not the model's, to say."""
    top = np.sort(np.nan_to_num(np.asarray(events, float)))[::-1]
    at = int(top[need - 1]) if len(top) >= need else 0
    if at >= 1:
        return "", [f"min_events: {at} would admit them", "lower k_max"]
    return (f"fewer than {need:,} customers have any event in the window: ",
            ["choose a longer window_days"])
