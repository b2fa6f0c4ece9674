"""Simulator parameters: the YAML model compiled into arrays the vectorised engine indexes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import yaml

from features.errors import ConfigError

STAGES = ("awareness", "consideration", "decision", "purchase", "retention", "advocacy")
PURCHASE_STAGE = STAGES.index("purchase")
TYPE_SCALARS = (
    "share",
    "engagement",
    "decay",
    "session_rate",
    "ad_click",
    "products",
    "cart",
    "checkout",
    "buy",
    "basket",
    "login",
    "ticket",
    "bad_csat",
    "review",
    "referral",
    "survey",
    "churn",
    "email_open",
    "email_click",
)
TYPE_VECTORS = {
    "region": "regions",
    "device": "devices",
    "acquisition": "acquisition_channels",
    "channels": "session_channels",
}
EFFECTS = ("session", "buy", "churn", "advocacy")
SHIFT_FACTORS = {"price_factor": "price", "buy_factor": "buy", "churn_factor": "churn"}
SHIFT_KEYS = ("from", "session_channels", *SHIFT_FACTORS)
BASES = ("default",)  # what ``extends`` may name
PHASES = ("pre", "post")
F = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Shift:
    """A change of behaviour from day ``from_day`` on (a drift scenario); the neutral values
    (no channel mix, factors 1) leave the base parameters as they are."""

    from_day: int
    channels: F | None = None  # (k,) session channel mix for every type, replacing the types'
    price: float = 1.0  # order values multiplied
    buy: float = 1.0  # purchase probability multiplied (before its 0.98 cap)
    churn: float = 1.0  # daily churn hazard multiplied


NO_SHIFT = Shift(from_day=0)


@dataclass(frozen=True)
class SimParams:
    start: date
    arrival_share: float
    effect_days: int
    contact_rate: float
    contact_lapsed: bool  # the logging policy also contacts customers who silently churned
    engagement: dict[str, float]
    churn: dict[str, float]
    types: tuple[str, ...]
    regions: tuple[str, ...]
    devices: tuple[str, ...]
    acquisition_channels: tuple[str, ...]
    session_channels: tuple[str, ...]
    t: dict[str, F]  # per-type scalars, each shape (n_types,)
    tv: dict[str, F]  # per-type distributions, each (n_types, k)
    actions: tuple[str, ...]
    action_channel: tuple[str, ...]
    action_weight: F  # (K,)
    action_stages: npt.NDArray[np.bool_]  # (K, n_stages)
    action_requires_bad: npt.NDArray[np.bool_]  # (K,)
    action_discount: F  # (K,)
    effect: F  # (K, n_types, 2 phases, 4 effects) multipliers
    unhappy: F  # (K, 4) multipliers; 1 where an action has no `unhappy` block
    has_unhappy: npt.NDArray[np.bool_]  # (K,)
    source: str = "<default>"
    shifts: tuple[Shift, ...] = ()  # in date order

    def shift_on(self, day: int) -> Shift:
        """The shift in force on ``day``: the latest one started, alone (shifts do not stack)."""
        current = NO_SHIFT
        for shift in self.shifts:
            if shift.from_day <= day:
                current = shift
        return current


def _require(raw: dict[str, Any], key: str, where: str) -> Any:
    if key not in raw:
        raise ConfigError(f"{where}: missing key {key!r}")
    return raw[key]


def _flag(raw: dict[str, Any], key: str, src: str) -> bool:
    # Absent means false: parameter files of simulations made before a flag existed must
    # replay exactly (the oracle recompiles a simulation's own params.yaml).
    value = raw.get(key, False)
    if not isinstance(value, bool):
        raise ConfigError(f"{src}: {key} must be true or false, not {value!r}")
    return value


def _effect_row(block: dict[str, Any] | None, where: str) -> list[float]:
    block = block or {}
    unknown = set(block) - set(EFFECTS)
    if unknown:
        raise ConfigError(f"{where}: unknown effect {sorted(unknown)}; effects are {list(EFFECTS)}")
    return [float(block.get(e, 1.0)) for e in EFFECTS]


def _compile_actions(raw: dict[str, Any], types: tuple[str, ...], src: str) -> dict[str, Any]:
    names = tuple(raw)
    k, nt = len(names), len(types)
    effect = np.ones((k, nt, 2, 4))
    unhappy = np.ones((k, 4))
    stages = np.zeros((k, len(STAGES)), dtype=bool)
    for i, name in enumerate(names):
        spec = raw[name]
        where = f"{src}: actions.{name}"
        for stage in _require(spec, "stages", where):
            if stage not in STAGES:
                raise ConfigError(f"{where}.stages: unknown stage {stage!r}")
            stages[i, STAGES.index(stage)] = True
        for type_name, phases in (spec.get("effects") or {}).items():
            if type_name not in types:
                raise ConfigError(f"{where}.effects: unknown customer type {type_name!r}")
            for p, phase in enumerate(PHASES):
                effect[i, types.index(type_name), p] = _effect_row(
                    phases.get(phase), f"{where}.effects.{type_name}.{phase}"
                )
        if spec.get("unhappy") is not None:
            unhappy[i] = _effect_row(spec["unhappy"], f"{where}.unhappy")
    return {
        "actions": names,
        "action_channel": tuple(str(raw[n]["channel"]) for n in names),
        "action_weight": np.array([float(raw[n].get("weight", 1.0)) for n in names]),
        "action_stages": stages,
        "action_requires_bad": np.array(
            [bool(raw[n].get("requires_bad_experience", False)) for n in names]
        ),
        "action_discount": np.array([float(raw[n].get("discount", 0.0)) for n in names]),
        "effect": effect,
        "unhappy": unhappy,
        "has_unhappy": np.array([raw[n].get("unhappy") is not None for n in names]),
    }


def _factor(spec: dict[str, Any], key: str, where: str) -> float:
    value = spec.get(key, 1.0)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < np.inf:
        raise ConfigError(f"{where}.{key} must be a positive number, not {value!r}")
    return float(value)


def _shift_channels(spec: dict[str, Any], n_channels: int, where: str) -> F | None:
    if "session_channels" not in spec:
        return None
    mix = spec["session_channels"]
    if not isinstance(mix, list) or len(mix) != n_channels:
        raise ConfigError(
            f"{where}.session_channels must list {n_channels} shares (one per session_channels)"
        )
    try:
        shares = np.array([float(x) for x in mix])
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}.session_channels: not a number: {exc}") from exc
    if (shares < 0).any() or abs(shares.sum() - 1.0) > 1e-6:
        raise ConfigError(f"{where}.session_channels: shares must be >= 0 and sum to 1")
    return shares


def _compile_shifts(raw: Any, start: date, n_channels: int, src: str) -> tuple[Shift, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError(f"{src}: shifts must be a list of shifts")
    shifts: list[Shift] = []
    for i, spec in enumerate(raw):
        where = f"{src}: shifts[{i}]"
        if not isinstance(spec, dict):
            raise ConfigError(f"{where} must be a mapping with keys {list(SHIFT_KEYS)}")
        unknown = set(spec) - set(SHIFT_KEYS)
        if unknown:
            raise ConfigError(
                f"{where}: unknown key {sorted(unknown)}; keys are {list(SHIFT_KEYS)}"
            )
        try:
            first = date.fromisoformat(str(_require(spec, "from", where)))
        except ValueError as exc:
            raise ConfigError(f"{where}.from: not a date (YYYY-MM-DD): {spec['from']!r}") from exc
        day = (first - start).days
        if day < 0 or (shifts and day <= shifts[-1].from_day):
            raise ConfigError(f"{where}.from: {first} must be on or after start ({start}) "
                              "and after the previous shift's")
        shifts.append(
            Shift(
                from_day=day,
                channels=_shift_channels(spec, n_channels, where),
                **{field: _factor(spec, key, where) for key, field in SHIFT_FACTORS.items()},
            )
        )
    return tuple(shifts)


def _parse(text: str, src: str) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{src}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{src}: expected a mapping of simulator parameters")
    return raw


def _default_text() -> str:
    return resources.files("features.simulator").joinpath("default.yaml").read_text()


def resolve_extends(raw: dict[str, Any], src: str) -> dict[str, Any]:
    """``extends: default`` takes every top-level key from the default parameters that the
    file does not set itself (a shallow merge: a key the file sets replaces the default's
    whole value), so a scenario file holds only what it changes."""
    if "extends" not in raw:
        return raw
    base = raw["extends"]
    if base not in BASES:
        raise ConfigError(f"{src}: extends must be one of {list(BASES)}, not {base!r}")
    own = {k: v for k, v in raw.items() if k != "extends"}
    return {**_parse(_default_text(), "<default simulator>"), **own}


def resolved_text(text: str, src: str) -> str:
    """The parameter text a simulation records: ``text`` itself, or with ``extends`` the
    merged parameters, so the recorded file replays even if the default changes later."""
    raw = _parse(text, src)
    if "extends" not in raw:
        return text
    merged = yaml.safe_dump(resolve_extends(raw, src), sort_keys=False)
    return f"# {src} (extends: {raw['extends']}), merged\n{merged}"


def compile_params(raw: dict[str, Any], src: str) -> SimParams:
    raw = resolve_extends(raw, src)
    types_raw = _require(raw, "types", src)
    types = tuple(types_raw)
    vocab = {k: tuple(_require(raw, k, src)) for k in TYPE_VECTORS.values()}
    t: dict[str, F] = {}
    tv: dict[str, F] = {}
    for key in TYPE_SCALARS:
        t[key] = np.array([float(_require(types_raw[n], key, f"{src}: types.{n}")) for n in types])
    for key, vocab_key in TYPE_VECTORS.items():
        rows = [list(map(float, _require(types_raw[n], key, f"{src}: types.{n}"))) for n in types]
        for n, row in zip(types, rows, strict=True):
            if len(row) != len(vocab[vocab_key]):
                raise ConfigError(
                    f"{src}: types.{n}.{key} has {len(row)} entries; "
                    f"{vocab_key} has {len(vocab[vocab_key])}"
                )
        tv[key] = np.array(rows)
    start = date.fromisoformat(str(raw.get("start", "2025-01-01")))
    return SimParams(
        start=start,
        arrival_share=float(raw.get("arrival_share", 0.75)),
        effect_days=int(raw.get("effect_days", 14)),
        contact_rate=float(raw.get("contact_rate", 0.03)),
        contact_lapsed=_flag(raw, "contact_lapsed", src),
        engagement={k: float(v) for k, v in _require(raw, "engagement", src).items()},
        churn={k: float(v) for k, v in _require(raw, "churn", src).items()},
        types=types,
        regions=vocab["regions"],
        devices=vocab["devices"],
        acquisition_channels=vocab["acquisition_channels"],
        session_channels=vocab["session_channels"],
        t=t,
        tv=tv,
        source=src,
        shifts=_compile_shifts(raw.get("shifts"), start, len(vocab["session_channels"]), src),
        **_compile_actions(_require(raw, "actions", src), types, src),
    )


def load_params(path: str | Path | None = None) -> SimParams:
    if path is None:
        text, src = _default_text(), "<default simulator>"
    else:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"simulator parameter file not found: {p}")
        text, src = p.read_text(encoding="utf-8"), str(p)
    return compile_params(_parse(text, src), src)
