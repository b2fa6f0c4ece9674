"""Personas in plain words: what distinguishes each (its means against the population's, as
z-scores and in words), its typical stage, channels, value and churn risk, a default name, and
the editable names a marketer gives them (``<home>/personas/names.json``)."""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from features.errors import ConfigError

F64 = npt.NDArray[np.float64]
UNASSIGNED_NAME = "unassigned"
MAX_NAME = 60

# feature -> (words, kind): kind says how a value reads ("rate" per session, "share" a
# percentage, "money" a log order value, "score" a mean rating)
WORDS: dict[str, tuple[str, str]] = {
    "product_views_per_session": ("product views per session", "rate"),
    "cart_rate": ("of product views put in the cart", "share"),
    "checkout_rate": ("of carts taken to checkout", "share"),
    "buy_rate": ("of checkouts completed", "share"),
    "logins_per_session": ("logins per session", "rate"),
    "tickets_per_session": ("support tickets per session", "rate"),
    "ad_click_rate": ("of ad impressions clicked", "share"),
    "email_click_rate": ("of opened emails clicked", "share"),
    "log_order_value": ("typical order value", "money"),
    "csat_mean": ("mean CSAT", "score"),
}
# A "share" that is a ratio of event counts can pass 100 % when the later step repeats
# (Segment fires Checkout Started on each visit to the checkout): read as counts per step.
PER: dict[str, str] = {
    "cart_rate": "cart additions per product view",
    "checkout_rate": "checkouts per cart addition",
    "buy_rate": "purchases per checkout",
    "ad_click_rate": "ad clicks per impression",
    "email_click_rate": "email clicks per opened email",
}
# (feature, sign of its z-score) -> the words a default name starts from
PHRASES: dict[tuple[str, int], str] = {
    ("product_views_per_session", 1): "heavy browsers",
    ("product_views_per_session", -1): "focused shoppers",
    ("cart_rate", 1): "cart fillers", ("cart_rate", -1): "window shoppers",
    ("checkout_rate", 1): "checkout finishers", ("checkout_rate", -1): "cart abandoners",
    ("buy_rate", 1): "decisive buyers", ("buy_rate", -1): "checkout abandoners",
    ("log_order_value", 1): "big-basket buyers", ("log_order_value", -1): "small-basket buyers",
    ("logins_per_session", 1): "logged-in regulars",
    ("logins_per_session", -1): "anonymous visitors",
    ("tickets_per_session", 1): "support-heavy customers",
    ("csat_mean", 1): "satisfied customers", ("csat_mean", -1): "dissatisfied customers",
    ("ad_click_rate", 1): "ad clickers", ("email_click_rate", 1): "email clickers",
}
SHARE = "share_"
NO_VALUE = "no conversion carried a value"


def words_of(feature: str) -> tuple[str, str]:
    if feature.startswith(SHARE):
        return f"of touchpoints on {feature.removeprefix(SHARE)}", "share"
    return WORDS.get(feature, (feature.replace("_", " "), "rate"))


def trait(feature: str, value: float, average: float) -> str:
    """E.g. "3.1 product views per session, 2.0x the average (1.6)"."""
    label, kind = words_of(feature)
    if kind == "money":  # the mean of logs: a geometric mean, so is the average
        value, average = math.exp(value), math.exp(average)
        return f"{label} {value:,.2f}, {_times(value, average)} ({average:,.2f})"
    if kind == "score":
        return f"{label} {value:.2f} (average {average:.2f})"
    if kind == "share" and max(value, average) > 1 and feature in PER:
        return f"{_num(value)} {PER[feature]}, {_times(value, average)} ({_num(average)})"
    if kind == "share":
        return f"{value:.0%} {label}, {_times(value, average)} ({average:.0%})"
    return f"{_num(value)} {label}, {_times(value, average)} ({_num(average)})"


def _times(value: float, average: float) -> str:
    return f"{value / average:.1f}x the average" if average > 0 else "against an average"


def _num(v: float) -> str:
    return f"{v:.1f}" if abs(v) >= 1 else f"{v:.2f}"


def describe(clipped: F64, labels: npt.NDArray[np.int64], k: int, names: Sequence[str],
             extra: Mapping[str, F64 | None], stages: Sequence[str], window_days: int,
             top: int, values_known: bool = True) -> list[dict[str, Any]]:
    """One dict per persona id 0..k-1. ``clipped``: the persona features (winsorised) of the
    customers ``labels`` assigns (-1: unassigned, left out of the population too); ``extra``:
    per-customer ``stage`` (code), ``revenue`` in the window, ``churn`` and ``value``.
    ``values_known`` False: no conversion carried a value, so the window's revenue (0 for
    everyone) and order values are unknown, not figures: left out, and said so."""
    if not values_known:
        extra = {**extra, "revenue": None}
        money = [words_of(n)[1] == "money" for n in names]
        clipped = np.where(money, np.nan, clipped)
    pop = labels >= 0
    with warnings.catch_warnings():  # a feature nobody in a persona has is NaN: skipped
        warnings.simplefilter("ignore", RuntimeWarning)
        mu = np.nanmean(clipped[pop], axis=0)
        sd = np.nanstd(clipped[pop], axis=0)
        out = []
        for p in range(k):
            members = labels == p
            mean = np.nanmean(clipped[members], axis=0)
            z = np.where(sd > 0, (mean - mu) / np.where(sd > 0, sd, 1.0), np.nan)
            out.append(_persona(p, members, int(pop.sum()), names, mean, mu, z, extra,
                                stages, top) | {"values_known": values_known})
    return out


def _persona(p: int, members: npt.NDArray[np.bool_], population: int, names: Sequence[str],
             mean: F64, mu: F64, z: F64, extra: Mapping[str, F64 | None],
             stages: Sequence[str], top: int) -> dict[str, Any]:
    ranked = [j for j in np.argsort(-np.nan_to_num(np.abs(z), nan=-1.0)) if np.isfinite(z[j])]
    chosen = ranked[:top]
    shares = [(names[j].removeprefix(SHARE), float(mean[j])) for j in range(len(names))
              if names[j].startswith(SHARE) and np.isfinite(mean[j]) and mean[j] > 0]
    n = int(members.sum())
    # Shares and means are kept unrounded: the words and the dashboard round them once, for
    # display (a 4-decimal share, 0.3405 for 2,541 of 7,463, printed as 34.1% not 34.0%).
    return {
        "id": p, "customers": n, "share": n / population if population else None,
        "traits": [trait(names[j], float(mean[j]), float(mu[j])) for j in chosen],
        "top_features": [{"feature": names[j], "value": _r(mean[j]), "average": _r(mu[j]),
                          "z": _r(z[j], 2)} for j in chosen],
        "z": {names[j]: _r(z[j], 2) for j in ranked},
        "typical_stage": _typical_stage(extra.get("stage"), members, stages),
        "channels": [{"channel": c, "share": s}
                     for c, s in sorted(shares, key=lambda cs: -cs[1])[:3]],
        "revenue_mean": _mean(extra.get("revenue"), members),
        "churn_mean": _mean(extra.get("churn"), members),
        "expected_value_mean": _mean(extra.get("value"), members),
    }


def _typical_stage(codes: F64 | None, members: npt.NDArray[np.bool_],
                   stages: Sequence[str]) -> dict[str, Any] | None:
    if codes is None:
        return None
    mine = codes[members]
    mine = mine[np.isfinite(mine) & (mine >= 0)].astype(np.int64)
    if not len(mine):
        return None
    counts = np.bincount(mine)
    best = int(counts.argmax())
    name = stages[best] if best < len(stages) else str(best)
    return {"stage": name, "share": float(counts[best] / len(mine))}


def _mean(values: F64 | None, members: npt.NDArray[np.bool_]) -> float | None:
    if values is None:
        return None
    mine = values[members]
    mine = mine[np.isfinite(mine)]
    return float(mine.mean()) if len(mine) else None


def _r(x: float, digits: int = 4) -> float | None:
    return round(float(x), digits) if np.isfinite(x) else None


def default_names(profiles: Sequence[Mapping[str, Any]]) -> list[str]:
    """A name from each persona's strongest trait that has words ("window shoppers"), with
    its most over-used channel when there is one ("window shoppers (social)"); unique."""
    out: list[str] = []
    for prof in profiles:
        z: dict[str, float] = {k: v for k, v in prof["z"].items() if v is not None}
        phrase = next((PHRASES[(f, 1 if v > 0 else -1)] for f, v in z.items()
                       if abs(v) >= 0.25 and (f, 1 if v > 0 else -1) in PHRASES), None)
        channel = max(((f, v) for f, v in z.items() if f.startswith(SHARE) and v >= 0.5),
                      key=lambda fv: fv[1], default=None)
        if phrase is None:
            name = f"{channel[0].removeprefix(SHARE)}-first customers" if channel else \
                "average customers"
        else:
            name = f"{phrase} ({channel[0].removeprefix(SHARE)})" if channel else phrase
        out.append(name if name not in out else f"{name} #{prof['id']}")
    return out


# -- editable names ------------------------------------------------------------------------
def names_path(home: Path) -> Path:
    return home / "personas" / "names.json"


def _read(path: Path) -> dict[str, dict[str, str]]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: not a readable persona names file ({exc})") from exc
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise ConfigError(f"{path}: expected {{model version: {{persona id: name}}}}")
    return data


def read_names(path: Path, version: str) -> dict[int, str]:
    """The names given to the personas of one registered model version."""
    return {int(k): str(v) for k, v in _read(path).get(str(version), {}).items()}


def persona_names(defaults: Sequence[str], given: Mapping[int, str]) -> list[str]:
    """The name of each persona id: the given one, else the default."""
    return [given.get(i, d) for i, d in enumerate(defaults)]


def write_name(path: Path, version: str, pid: int, name: str, defaults: Sequence[str]) -> None:
    """Name persona ``pid`` of model ``version`` (checked: a known id, a short unique name)."""
    name = name.strip()
    if not 0 <= pid < len(defaults):
        raise ConfigError(f"persona {pid} does not exist: ids are 0..{len(defaults) - 1}")
    if not name or len(name) > MAX_NAME or name == UNASSIGNED_NAME or "\n" in name:
        raise ConfigError(f"persona name {name!r}: give 1-{MAX_NAME} characters on one line, "
                          f"not {UNASSIGNED_NAME!r}")
    data = _read(path)
    mine = data.setdefault(str(version), {})
    current = persona_names(defaults, {int(k): v for k, v in mine.items()})
    if name in (c for i, c in enumerate(current) if i != pid):
        raise ConfigError(f"persona name {name!r} is already used by another persona")
    mine[str(pid)] = name
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)  # a reader (a scoring run) never sees half a file


def summary_lines(prof: dict[str, Any], window_days: int | None = None) -> list[str]:
    """A persona's description as bullet lines (shared by the artifact, the CLI and the API).
    Its figures read as on the dashboard's persona card: churn risk in percent, money in
    whole units per customer, in the card's order and words."""
    out = [f"- {prof['customers']:,} customers ({prof['share']:.1%})"]
    out += [f"- {t}" for t in prof["traits"]]
    stage = prof.get("typical_stage")
    if stage:
        out.append(f"- typical stage: {stage['stage']} ({stage['share']:.0%})")
    if prof["channels"]:
        out.append("- main channels: " + ", ".join(f"{c['channel']} {c['share']:.0%}"
                                                  for c in prof["channels"]))
    window = f"revenue in the last {window_days} days" if window_days else "revenue in the window"
    # Personas fitted before values_known was kept lack it: their revenue is read as given.
    unknown = prof.get("values_known") is False and prof.get("revenue_mean") is None
    value = [f"churn risk {prof['churn_mean']:.1%} (mean)"
             if prof.get("churn_mean") is not None else None,
             f"expected value {prof['expected_value_mean']:,.0f} per customer"
             if prof.get("expected_value_mean") is not None else None,
             f"{window} {prof['revenue_mean']:,.0f} per customer"
             if prof.get("revenue_mean") is not None else
             f"{window} unknown ({NO_VALUE})" if unknown else None]
    if any(value):
        out.append("- " + ", ".join(v for v in value if v))
    return out
