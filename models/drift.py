"""Drift statistics: a reference profile of the training snapshot (features and the model's
scores on it) and its comparison with a live window, per column: the population stability
index over the reference's bins and a distribution test (two-sample Kolmogorov-Smirnov for
numeric columns, chi-square for categorical ones).

Numeric columns are cut at the reference's quantiles, the outer bins open-ended, missing values
a bin of their own; categorical columns keep their most frequent levels plus "other" and
"missing". A column is a score when its name starts with ``score_`` (see ``score_columns``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field
from scipy import stats
from sklearn.base import BaseEstimator

from features.errors import ConfigError
from features.yaml_config import read_config, validated

F64 = npt.NDArray[np.float64]
SCORE_PREFIX = "score_"
PROFILE_ARTIFACT = "drift/profile.json"  # in the run that logged the model
OTHER, MISSING = "<other>", "<missing>"
EPS = 1e-4  # proportion floor: an empty bin on one side must not make the PSI infinite
Status = Literal["ok", "warn", "alarm", "too_few"]


class _Schema(BaseModel):
    model_config = ConfigDict(extra="forbid")
    bins: int = Field(10, ge=2)
    max_levels: int = Field(20, ge=1)
    sample_size: int = Field(1000, ge=10)
    max_rows: int = Field(50_000, ge=100)
    psi_warn: float = Field(0.1, gt=0)
    psi_alarm: float = Field(0.25, gt=0)
    p_value: float = Field(0.01, gt=0, lt=1)
    min_samples: int = Field(500, ge=1)
    exclude: list[str] = Field(default_factory=list)


@dataclass(frozen=True)
class DriftSettings:
    bins: int = 10
    max_levels: int = 20
    sample_size: int = 1000
    max_rows: int = 50_000
    psi_warn: float = 0.1
    psi_alarm: float = 0.25
    p_value: float = 0.01
    min_samples: int = 500
    exclude: tuple[str, ...] = ()


def load_drift_settings(path: str | Path | None = None) -> DriftSettings:
    """Drift settings (None: the shipped ``models/config/drift.yaml``); an error names the
    file and the key."""
    config = read_config(path, "models.config", "drift.yaml", "drift settings", empty_ok=True)
    parsed, source = validated(_Schema, *config), config.source
    if parsed.psi_alarm < parsed.psi_warn:
        raise ConfigError(f"{source}: psi_alarm ({parsed.psi_alarm}) is below psi_warn "
                          f"({parsed.psi_warn})")
    return DriftSettings(**{**parsed.model_dump(), "exclude": tuple(parsed.exclude)})


def score_columns(target: str, classes: tuple[str, ...], proba: F64) -> dict[str, F64]:
    """A model's scores as profile columns: the positive class's probability of a binary
    model (``score_churn``), each class's of a multiclass one (``score_next_stage_decision``)."""
    if len(classes) == 2:
        return {f"{SCORE_PREFIX}{target}": np.asarray(proba[:, 1], dtype=np.float64)}
    return {f"{SCORE_PREFIX}{target}_{c}": np.asarray(proba[:, k], dtype=np.float64)
            for k, c in enumerate(classes)}


def _is_numeric(values: pd.Series) -> bool:
    return bool(pd.api.types.is_numeric_dtype(values)) and not pd.api.types.is_bool_dtype(values)


def _as_float(values: pd.Series) -> F64:
    return np.asarray(pd.to_numeric(values, errors="coerce"), dtype=np.float64)


def _as_labels(values: pd.Series) -> npt.NDArray[np.object_]:
    labels: npt.NDArray[np.object_] = values.astype(str).to_numpy(dtype=object)
    labels[values.isna().to_numpy()] = None
    return labels


def _quantiles(ordered: F64, probs: F64) -> F64:
    """Linear-interpolation quantiles (numpy's default) of an already sorted array."""
    at = probs * (len(ordered) - 1)
    lo = np.floor(at).astype(np.int64)
    hi = np.minimum(lo + 1, len(ordered) - 1)
    out: F64 = ordered[lo] + (at - lo) * (ordered[hi] - ordered[lo])
    return out


class DriftProfile(BaseEstimator):  # type: ignore[misc]
    """The reference distribution of each column of a training snapshot."""

    def __init__(self, bins: int = 10, max_levels: int = 20, sample_size: int = 1000) -> None:
        self.bins = bins
        self.max_levels = max_levels
        self.sample_size = sample_size

    def fit(self, frame: pd.DataFrame) -> DriftProfile:
        if frame.empty:
            raise ValueError("a drift profile needs at least one reference row")
        self.n_ = len(frame)
        self.edges_: dict[str, F64] = {}
        self.levels_: dict[str, list[str]] = {}
        self.freqs_: dict[str, F64] = {}
        self.quantiles_: dict[str, F64] = {}
        for name in frame.columns:
            if _is_numeric(frame[name]):
                self._fit_numeric(str(name), _as_float(frame[name]))
            else:
                self._fit_categorical(str(name), _as_labels(frame[name]))
        self.columns_ = [str(c) for c in frame.columns]
        return self

    def _fit_numeric(self, name: str, x: F64) -> None:
        # One sort serves the cut points, the KS quantiles and the bin counts.
        known = np.sort(x[~np.isnan(x)])
        if known.size:
            cuts = _quantiles(known, np.linspace(0, 1, self.bins + 1)[1:-1])
            m = min(self.sample_size, known.size)
            # Evenly spaced order statistics (inverted CDF): real values, atoms kept.
            self.quantiles_[name] = known[np.ceil((np.arange(m) + 0.5) / m * known.size)
                                          .astype(np.int64) - 1]
        else:
            cuts, self.quantiles_[name] = np.array([]), np.array([])
        edges = self.edges_[name] = np.unique(cuts)
        below = np.searchsorted(known, edges, side="left")  # values under each edge
        counts = np.diff(np.concatenate([[0], below, [known.size]]))
        self.freqs_[name] = np.append(counts, len(x) - known.size) / len(x)

    def _fit_categorical(self, name: str, labels: npt.NDArray[np.object_]) -> None:
        seen = pd.Series(labels).dropna().value_counts(sort=True)
        self.levels_[name] = [str(v) for v in seen.index[: self.max_levels]]
        self.freqs_[name] = self.counts(name, labels) / len(labels)

    def is_numeric(self, name: str) -> bool:
        return name in self.edges_

    def bin_names(self, name: str) -> list[str]:
        if self.is_numeric(name):
            e = self.edges_[name]
            lows = ["-inf", *[f"{v:g}" for v in e]]
            highs = [*[f"{v:g}" for v in e], "inf"]
            spans = ["[" + lo + ", " + hi + ")" for lo, hi in zip(lows, highs, strict=True)]
            return [*spans, MISSING]
        return [*self.levels_[name], OTHER, MISSING]

    def counts(self, name: str, values: F64 | npt.NDArray[np.object_]) -> F64:
        """How many of ``values`` fall in each of the column's bins (missing last)."""
        if name in self.edges_:
            x = np.asarray(values, dtype=np.float64)
            nan = np.isnan(x)
            where = np.searchsorted(self.edges_[name], x[~nan], side="right")
            k = len(self.edges_[name]) + 1
            return np.append(np.bincount(where, minlength=k), nan.sum()).astype(np.float64)
        levels = self.levels_[name]
        labels = np.asarray(values, dtype=object)
        codes = pd.Index(levels, dtype=object).get_indexer(pd.Index(labels, dtype=object))
        codes = np.where(pd.isna(labels), len(levels) + 1,
                         np.where(codes < 0, len(levels), codes))
        return np.bincount(codes, minlength=len(levels) + 2).astype(np.float64)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: what ``from_dict`` reads back."""
        def floats(a: F64) -> list[float]:
            return [float(v) for v in a]

        return {
            "params": self.get_params(),
            "n": self.n_,
            "columns": self.columns_,
            "edges": {k: floats(v) for k, v in self.edges_.items()},
            "levels": self.levels_,
            "freqs": {k: floats(v) for k, v in self.freqs_.items()},
            "quantiles": {k: floats(v) for k, v in self.quantiles_.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DriftProfile:
        try:
            profile = cls(**data["params"])
            profile.n_ = int(data["n"])
            profile.columns_ = list(data["columns"])
            profile.edges_ = {k: np.array(v, dtype=np.float64) for k, v in data["edges"].items()}
            profile.levels_ = {k: list(v) for k, v in data["levels"].items()}
            profile.freqs_ = {k: np.array(v, dtype=np.float64) for k, v in data["freqs"].items()}
            profile.quantiles_ = {k: np.array(v, dtype=np.float64)
                                  for k, v in data["quantiles"].items()}
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a drift profile: {type(exc).__name__}: {exc}") from exc
        return profile

    def merged(self, other: DriftProfile) -> DriftProfile:
        """This profile plus the columns only ``other`` has (several models' profiles, each
        column described once: by the first profile that has it)."""
        data, theirs = self.to_dict(), other.to_dict()
        extra = [c for c in other.columns_ if c not in self.columns_]
        for key in ("edges", "levels", "freqs", "quantiles"):
            data[key] = {**data[key], **{k: v for k, v in theirs[key].items() if k in extra}}
        data["columns"] = [*self.columns_, *extra]
        data["n"] = min(self.n_, other.n_)  # the KS p-values' reference size: the smaller
        return DriftProfile.from_dict(data)


def psi(expected: F64, actual: F64) -> float:
    """Population stability index of two proportion vectors over the same bins."""
    e = np.maximum(np.asarray(expected, dtype=np.float64), EPS)
    a = np.maximum(np.asarray(actual, dtype=np.float64), EPS)
    return float(np.sum((a - e) * np.log(a / e)))


def ks_pvalue(reference_quantiles: F64, n_reference: int, live: F64) -> tuple[float, float]:
    """(statistic, asymptotic p-value) of the two-sample KS test, the reference given by
    evenly spaced quantiles and its real size."""
    live = np.sort(live[~np.isnan(live)])
    if reference_quantiles.size == 0 or live.size == 0:
        return float("nan"), float("nan")
    grid = np.concatenate([reference_quantiles, live])
    f_ref = np.searchsorted(reference_quantiles, grid, side="right") / reference_quantiles.size
    f_live = np.searchsorted(live, grid, side="right") / live.size
    d = float(np.max(np.abs(f_ref - f_live)))
    en = n_reference * live.size / (n_reference + live.size)
    return d, float(stats.kstwobign.sf(d * np.sqrt(en)))  # the limit law: no O(n^2) exact sums


def chi2_pvalue(reference_freqs: F64, observed: F64) -> tuple[float, float]:
    """(statistic, p-value) of observed counts against the reference proportions."""
    n = observed.sum()
    expected = np.maximum(reference_freqs, EPS) * n
    statistic = float(np.sum((observed - expected) ** 2 / expected))
    dof = max(int((reference_freqs > 0).sum()) - 1, 1)
    return statistic, float(stats.chi2.sf(statistic, dof))


@dataclass(frozen=True)
class DriftRow:
    name: str
    kind: Literal["feature", "score"]
    psi: float
    test: Literal["ks", "chi2"]
    statistic: float
    p_value: float
    status: Status
    n: int
    bins: list[str] = field(default_factory=list)
    reference: list[float] = field(default_factory=list)
    live: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class DriftReport:
    rows: list[DriftRow]
    alarm: bool
    window_size: int
    start: datetime | None
    end: datetime | None
    reference_size: int
    settings: DriftSettings
    missing_columns: list[str] = field(default_factory=list)

    def alarms(self) -> list[DriftRow]:
        return [r for r in self.rows if r.status == "alarm"]

    def reason(self) -> str | None:
        """What drifted, in a line (None when nothing alarms): a retraining trigger's reason."""
        worst = sorted(self.alarms(), key=lambda r: -r.psi)
        if not worst:
            return None
        named = ", ".join(f"{r.name} (PSI {r.psi:.2f})" for r in worst[:5])
        more = f" and {len(worst) - 5} more" if len(worst) > 5 else ""
        return f"{len(worst)} drift alarm(s): {named}{more}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (times as ISO 8601, NaN statistics as None)."""
        out = asdict(self)
        out["start"] = self.start.isoformat() if self.start else None
        out["end"] = self.end.isoformat() if self.end else None
        out["settings"]["exclude"] = list(self.settings.exclude)
        for row in out["rows"]:
            for key in ("psi", "statistic", "p_value"):
                if not np.isfinite(row[key]):
                    row[key] = None
        return out


def _status(value: float, p: float, n: int, s: DriftSettings) -> Status:
    if n < s.min_samples:
        return "too_few"
    significant = np.isfinite(p) and p < s.p_value
    if significant and value >= s.psi_alarm:
        return "alarm"
    if significant and value >= s.psi_warn:
        return "warn"
    return "ok"


def compare_column(profile: DriftProfile, name: str, values: pd.Series,
                   settings: DriftSettings) -> DriftRow:
    numeric = profile.is_numeric(name)
    raw: F64 | npt.NDArray[np.object_] = _as_float(values) if numeric else _as_labels(values)
    observed = profile.counts(name, raw)
    n = int(observed.sum())
    share = observed / n if n else np.zeros_like(observed)
    value = psi(profile.freqs_[name], share) if n else float("nan")
    if numeric:
        statistic, p = ks_pvalue(profile.quantiles_[name], profile.n_, np.asarray(raw, float))
    else:
        statistic, p = chi2_pvalue(profile.freqs_[name], observed) if n else (np.nan, np.nan)
    return DriftRow(
        name=name, kind="score" if name.startswith(SCORE_PREFIX) else "feature",
        psi=value, test="ks" if numeric else "chi2", statistic=statistic, p_value=p,
        status=_status(value, p, n, settings), n=n, bins=profile.bin_names(name),
        reference=[float(v) for v in profile.freqs_[name]], live=[float(v) for v in share],
    )


def compare(profile: DriftProfile, live: pd.DataFrame, settings: DriftSettings,
            start: datetime | None = None, end: datetime | None = None,
            pause: Callable[[], None] | None = None) -> DriftReport:
    """The live window ``live`` (rows seen between ``start`` and ``end``) against the
    reference, column by column; columns the window lacks are listed, not compared.
    ``pause`` runs between columns (a service yields the interpreter there)."""
    monitored = [c for c in profile.columns_ if c not in settings.exclude]
    rows = []
    for c in (c for c in monitored if c in live):
        rows.append(compare_column(profile, c, live[c], settings))
        if pause is not None:
            pause()
    return DriftReport(
        rows=rows,
        alarm=any(r.status == "alarm" for r in rows),
        window_size=len(live),
        start=start,
        end=end,
        reference_size=profile.n_,
        settings=settings,
        missing_columns=[c for c in monitored if c not in live],
    )


@dataclass(frozen=True)
class Window:
    """A live window: numeric columns (features, scores) and label columns as arrays, row
    for row, and the times of its oldest and newest row. Arrays travel cheaply to a worker
    process (models.drift_worker); the frame is built where it is compared."""

    numbers: F64
    labels: npt.NDArray[np.object_]
    names: tuple[str, ...]
    label_names: tuple[str, ...]
    start: datetime | None = None
    end: datetime | None = None

    def frame(self) -> pd.DataFrame:
        frame = pd.DataFrame(self.numbers, columns=list(self.names))
        for j, name in enumerate(self.label_names):
            frame[name] = self.labels[:, j]
        return frame


def compare_window(profile: DriftProfile, window: Window, settings: DriftSettings,
                   pause: Callable[[], None] | None = None) -> DriftReport:
    return compare(profile, window.frame(), settings, window.start, window.end, pause)


def reference_rows(frame: pd.DataFrame, settings: DriftSettings, seed: int = 0
                   ) -> pd.DataFrame:
    """At most ``settings.max_rows`` rows of a training snapshot (a seeded sample)."""
    if len(frame) > settings.max_rows:
        return frame.sample(settings.max_rows, random_state=seed)
    return frame


def fit_profile(frame: pd.DataFrame, settings: DriftSettings) -> DriftProfile:
    return DriftProfile(settings.bins, settings.max_levels, settings.sample_size).fit(frame)
