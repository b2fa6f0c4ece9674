"""The feature vector's columns, derived from the spec: names in order and block offsets that
the compiled kernel writes to."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from features.errors import ConfigError
from features.spec import FeatureSpec

CATEGORICAL = ("last_event_type", "last_channel")
# Block order inside the offsets array handed to the kernel.
BLOCKS = (
    "rfm",
    "rfm_w",
    "totals",
    "types",
    "stages",
    "chans",
    "stage",
    "gaps",
    "sess",
    "sess_w",
    "trend",
    "act_w",
    "act_a",
    "act_tail",
    "scores",
)


@dataclass(frozen=True)
class Layout:
    names: tuple[str, ...]  # numeric columns, in matrix order
    offsets: npt.NDArray[np.int64]  # start column of each block in BLOCKS order
    score_columns: tuple[int, ...]  # per score: 3, or 4 with a `low` count

    @property
    def width(self) -> int:
        return len(self.names)

    @property
    def all_names(self) -> tuple[str, ...]:
        return (*self.names, *CATEGORICAL)


def layout(spec: FeatureSpec) -> Layout:
    names: list[str] = []
    origins: list[str] = []  # the spec field each column comes from ("" built in)
    offsets: dict[str, int] = {}

    def block(name: str, columns: list[str], origin: list[str] | str = "") -> None:
        offsets[name] = len(names)
        names.extend(columns)
        origins.extend(origin if isinstance(origin, list) else [origin] * len(columns))

    ws = spec.windows_days
    block("rfm", ["tenure_days", "recency_days", "purchase_recency_days"])
    block("rfm_w", [f"{m}_{w}d" for w in ws for m in ("events", "purchases", "revenue")])
    block("totals", ["events_total", "purchases_total", "revenue_total", "avg_order_value"])
    block("types", [f"n_{t}_{w}d" for w in ws for t in spec.event_types],
          [f"the taxonomy's event type {t!r}" for _ in ws for t in spec.event_types])
    block("stages", [f"st_{s}_{w}d" for w in ws for s in spec.stages],
          [f"the taxonomy's stage {s!r}" for _ in ws for s in spec.stages])
    block("chans", [f"ch_{c}_{w}d" for w in ws for c in spec.channel_vocab],
          [_entry("channels", spec.channels, c) for _ in ws for c in spec.channel_vocab])
    block("stage", ["stage_current", "stage_furthest", "days_in_stage", "stage_regressions"])
    block("gaps", ["gap_mean_days", "gap_std_days", "gap_max_days", "gap_last_days"])
    block(
        "sess",
        ["sessions_total", "session_events_mean", "session_minutes_mean", "days_between_sessions"],
    )
    block("sess_w", [f"sessions_{w}d" for w in ws])
    block("trend", [f"trend_events_{w}d" for w in ws])
    block("act_w", [f"actions_{w}d" for w in ws])
    block("act_a", [f"act_{a}_{ws[-1]}d" for a in spec.action_vocab],
          [_entry("actions", spec.actions, a) for a in spec.action_vocab])
    block("act_tail", ["days_since_action", "action_responses", "action_response_rate"])
    score_cols: list[str] = []
    score_origins: list[str] = []
    widths = []
    for s in spec.scores:
        cols = [f"{s.name}_count", f"{s.name}_mean", f"{s.name}_last"]
        if s.low is not None:
            cols.append(f"{s.name}_low")
        widths.append(len(cols))
        score_cols.extend(cols)
        score_origins.extend([f"scores.{s.name}"] * len(cols))
    block("scores", score_cols, score_origins)
    _refuse_clashes(spec, [
        ("customer_id", ""), *zip(names, origins, strict=True),
        *((c, "") for c in CATEGORICAL),
        *((f"attr_{a}", f"attributes[{i}]") for i, a in enumerate(spec.attributes)),
    ])
    return Layout(tuple(names), np.array([offsets[b] for b in BLOCKS], np.int64), tuple(widths))


def _entry(key: str, listed: tuple[str, ...], value: str) -> str:
    return f"{key}[{listed.index(value)}]" if value in listed else ""


def _refuse_clashes(spec: FeatureSpec, columns: list[tuple[str, str]]) -> None:
    """Every column of a table of vectors (key, numeric, categorical, attributes) once: a name
    made twice would be silently overwritten in one engine and ambiguous in another."""
    first: dict[str, str] = {}
    for name, origin in columns:
        if name not in first:
            first[name] = origin
            continue
        other = first[name] or "a built-in feature"
        if not origin:  # a built-in made after a spec entry: blame the entry
            origin, other = first[name], "a built-in feature"
        if not origin.startswith(("scores", "channels", "actions", "attributes")):
            raise ConfigError(f"{spec.source}: the column {name!r} is made by both "
                              f"{other} and {origin}")
        raise ConfigError(spec.where(
            origin, f"makes the column {name!r}, which {other} makes too; rename it"))


# Feature families that experiments select by name (`features: [rfm, timing]`). Each is a set
# of blocks, so a family follows the spec (windows, vocabularies) without listing columns.
FAMILY_BLOCKS: dict[str, tuple[str, ...]] = {
    "rfm": ("rfm", "rfm_w", "totals"),
    "types": ("types",),
    "stages": ("stages", "stage"),
    "channels": ("chans",),
    "timing": ("gaps", "sess", "sess_w", "trend"),
    "actions": ("act_w", "act_a", "act_tail"),
    "scores": ("scores",),
}
FAMILIES = (*FAMILY_BLOCKS, "last", "attributes")


def families(spec: FeatureSpec) -> dict[str, tuple[str, ...]]:
    """Column names of each feature family, in vector order."""
    lay = layout(spec)
    bounds = [*lay.offsets.tolist(), lay.width]
    block_cols = {b: lay.names[bounds[i] : bounds[i + 1]] for i, b in enumerate(BLOCKS)}
    out = {f: tuple(c for b in bs for c in block_cols[b]) for f, bs in FAMILY_BLOCKS.items()}
    out["last"] = CATEGORICAL
    out["attributes"] = tuple(f"attr_{a}" for a in spec.attributes)
    return out
