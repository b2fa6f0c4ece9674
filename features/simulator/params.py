"""Simulator parameters: the YAML model compiled into arrays the vectorised engine indexes."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import yaml

from features.simulator.params_check import Checker, parse, read_file

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
ENGAGEMENT_KEYS = ("floor", "cap", "session_bump", "purchase_bump", "bad_experience")
CHURN_KEYS = ("bad_experience", "inactivity_per_30d")
ACTION_KEYS = ("channel", "weight", "stages", "discount", "requires_bad_experience", "effects",
               "unhappy")
REQUIRED_KEYS = ("engagement", "churn", *TYPE_VECTORS.values(), "types", "actions")
TOP_KEYS = ("extends", "start", "arrival_share", "effect_days", "contact_rate",
            "contact_lapsed", *REQUIRED_KEYS, "shifts")
MAX_DAYS = 36_500  # an action's effect lasts at most 100 years
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
    origin: str = field(default="", compare=False)  # "file: line N: shifts[0].from", for warnings


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


def _scalar_ranges() -> dict[str, tuple[float, float]]:
    """Each per-type scalar's range: a probability (per session, visit or day) or a rate or
    mean that only has to be >= 0 (session_rate is clipped to 0.9 where it is used)."""
    open_ended = ("share", "engagement", "session_rate", "products", "basket")
    return {k: (0.0, math.inf) if k in open_ended else (0.0, 1.0) for k in TYPE_SCALARS}


def _compile_types(check: Checker, raw: Any, vocab: dict[str, tuple[str, ...]]
                   ) -> tuple[tuple[str, ...], dict[str, F], dict[str, F]]:
    types_raw = check.mapping(raw, "types")
    if not types_raw:
        check.fail("types", "must name at least one customer type")
    keys = (*TYPE_SCALARS, *TYPE_VECTORS)
    ranges = _scalar_ranges()
    for name, spec in types_raw.items():
        check.mapping(spec, f"types.{name}", keys, required=keys)
    types = tuple(types_raw)
    t = {key: np.array([check.number(types_raw[n][key], f"types.{n}.{key}", *ranges[key])
                        for n in types]) for key in TYPE_SCALARS}
    if not t["share"].sum() > 0:
        check.fail("types", "every type's share is 0: at least one must be above 0")
    tv = {key: np.array([check.shares(types_raw[n][key], f"types.{n}.{key}", vocab_key,
                                      len(vocab[vocab_key])) for n in types])
          for key, vocab_key in TYPE_VECTORS.items()}
    return types, t, tv


def _effect_row(check: Checker, block: Any, where: str) -> list[float]:
    """Multipliers (>= 0) of session, buy, churn and advocacy; 1 where not given."""
    if block is None:
        return [1.0] * len(EFFECTS)
    check.mapping(block, where, EFFECTS)
    return [check.number(block.get(e, 1.0), f"{where}.{e}") for e in EFFECTS]


def _action_effects(check: Checker, spec: dict[str, Any], types: tuple[str, ...],
                    where: str) -> F:
    """(n_types, 2 phases, 4 effects) multipliers of one action."""
    effect = np.ones((len(types), 2, 4))
    effects = spec.get("effects")
    for type_name, phases in check.mapping({} if effects is None else effects,
                                           f"{where}.effects").items():
        if type_name not in types:
            check.fail(f"{where}.effects.{type_name}",
                       f"unknown customer type {type_name!r}; types are {list(types)}")
        here = f"{where}.effects.{type_name}"
        check.mapping({} if phases is None else phases, here, PHASES)
        for p, phase in enumerate(PHASES):
            effect[types.index(type_name), p] = _effect_row(
                check, (phases or {}).get(phase), f"{here}.{phase}")
    return effect


def _action_stages(check: Checker, value: Any, where: str) -> npt.NDArray[np.bool_]:
    if not isinstance(value, list) or not value:
        check.fail(where, f"must be a non-empty list of stages ({', '.join(STAGES)}), "
                   f"got {value!r}")
    row = np.zeros(len(STAGES), dtype=bool)
    for i, stage in enumerate(value):
        if stage not in STAGES:
            check.fail(f"{where}[{i}]", f"unknown stage {stage!r}; stages are {list(STAGES)}")
        row[STAGES.index(stage)] = True
    return row


def _compile_actions(check: Checker, raw: Any, types: tuple[str, ...]) -> dict[str, Any]:
    actions = check.mapping(raw, "actions")
    if not actions:
        check.fail("actions", "must name at least one action (contact_rate: 0 contacts no one)")
    specs = {n: check.mapping(a, f"actions.{n}", ACTION_KEYS, required=("channel", "stages"))
             for n, a in actions.items()}
    names = tuple(specs)
    unhappy = [check.mapping(s["unhappy"], f"actions.{n}.unhappy", EFFECTS)
               if s.get("unhappy") is not None else None for n, s in specs.items()]
    return {
        "actions": names,
        "action_channel": tuple(check.text(s["channel"], f"actions.{n}.channel")
                                for n, s in specs.items()),
        "action_weight": np.array([check.number(s.get("weight", 1.0), f"actions.{n}.weight")
                                   for n, s in specs.items()]),
        "action_stages": np.array([_action_stages(check, s["stages"], f"actions.{n}.stages")
                                   for n, s in specs.items()]),
        "action_requires_bad": np.array([
            check.flag(s.get("requires_bad_experience", False),
                       f"actions.{n}.requires_bad_experience") for n, s in specs.items()]),
        # A share of the order value given away: 1 gives the order away whole.
        "action_discount": np.array([check.number(s.get("discount", 0.0),
                                                  f"actions.{n}.discount", 0.0, 1.0)
                                     for n, s in specs.items()]),
        "effect": np.array([_action_effects(check, s, types, f"actions.{n}")
                            for n, s in specs.items()]),
        "unhappy": np.array([_effect_row(check, u, f"actions.{n}.unhappy")
                             for n, u in zip(names, unhappy, strict=True)]),
        "has_unhappy": np.array([u is not None for u in unhappy]),
    }


def _compile_shifts(check: Checker, raw: Any, start: date, n_channels: int
                    ) -> tuple[Shift, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        check.fail("shifts", f"must be a list of shifts (each a mapping with keys "
                   f"{', '.join(SHIFT_KEYS)}), got {raw!r}")
    shifts: list[Shift] = []
    for i, spec in enumerate(raw):
        where = f"shifts[{i}]"
        check.mapping(spec, where, SHIFT_KEYS, required=("from",))
        first = check.day(spec["from"], f"{where}.from")
        day = (first - start).days
        if day < 0:
            check.fail(f"{where}.from", f"{first} is before start ({start}): a shift begins "
                       "on or after it")
        if shifts and day <= shifts[-1].from_day:
            check.fail(f"{where}.from", f"{first} must be after the previous shift's from "
                       f"({start + timedelta(days=shifts[-1].from_day)}): shifts are listed in "
                       "date order")
        channels = spec.get("session_channels")
        shifts.append(Shift(
            from_day=day,
            channels=None if channels is None else np.array(check.shares(
                channels, f"{where}.session_channels", "session_channels", n_channels,
                total_one=True)),
            **{name: check.number(spec.get(key, 1.0), f"{where}.{key}", above_low=True)
               for key, name in SHIFT_FACTORS.items()},
            origin=check.where(f"{where}.from"),
        ))
    return tuple(shifts)


def _default_text() -> str:
    return resources.files("features.simulator").joinpath("default.yaml").read_text("utf-8")


def resolve_extends(raw: dict[str, Any], src: str,
                    lines: Mapping[str, int] | None = None) -> dict[str, Any]:
    """``extends: default`` takes every top-level key from the default parameters that the
    file does not set itself (a shallow merge: a key the file sets replaces the default's
    whole value), so a scenario file holds only what it changes."""
    if "extends" not in raw:
        return raw
    base = raw["extends"]
    if base not in BASES:
        Checker(src, lines or {}).fail("extends", f"must be one of {list(BASES)}, got {base!r}")
    own = {k: v for k, v in raw.items() if k != "extends"}
    return {**parse(_default_text(), "<default simulator>")[0], **own}


def resolved_text(text: str, src: str) -> str:
    """The parameter text a simulation records: ``text`` itself, or with ``extends`` the
    merged parameters, so the recorded file replays even if the default changes later."""
    raw, lines = parse(text, src)
    if "extends" not in raw:
        return text
    merged = yaml.safe_dump(resolve_extends(raw, src, lines), sort_keys=False)
    return f"# {src} (extends: {raw['extends']}), merged\n{merged}"


def compile_params(raw: dict[str, Any], src: str,
                   lines: Mapping[str, int] | None = None) -> SimParams:
    """The parameters of a file's top-level mapping; ``lines``: each field's line in the file
    (``params_check.parse``), for errors."""
    own = tuple(raw) if "extends" in raw else ()
    raw = resolve_extends(raw, src, lines)
    check = Checker(src, lines or {}, own)
    check.mapping(raw, "", TOP_KEYS, required=REQUIRED_KEYS)
    vocab = {k: check.names(raw[k], k) for k in TYPE_VECTORS.values()}
    for i, channel in enumerate(vocab["acquisition_channels"]):
        if channel not in vocab["session_channels"]:  # a customer's first visit comes from it
            check.fail(f"acquisition_channels[{i}]", f"{channel!r} is not one of "
                       f"session_channels {list(vocab['session_channels'])}")
    types, t, tv = _compile_types(check, raw["types"], vocab)
    start = check.day(raw.get("start", "2025-01-01"), "start")
    engagement = _rates(check, raw["engagement"], "engagement", ENGAGEMENT_KEYS)
    if engagement["cap"] < engagement["floor"]:
        check.fail("engagement.cap", f"must be at least engagement.floor "
                   f"({engagement['floor']:g}), got {engagement['cap']:g}")
    return SimParams(
        start=start,
        # Customers arrive over this share of the simulated days: above 1, after the end.
        arrival_share=check.probability(raw.get("arrival_share", 0.75), "arrival_share"),
        effect_days=check.whole(raw.get("effect_days", 14), "effect_days", 0, MAX_DAYS),
        contact_rate=check.probability(raw.get("contact_rate", 0.03), "contact_rate"),
        # Absent means false: parameter files of simulations made before the flag existed
        # must replay exactly (the oracle recompiles a simulation's own params.yaml).
        contact_lapsed=check.flag(raw.get("contact_lapsed", False), "contact_lapsed"),
        engagement=engagement,
        churn=_rates(check, raw["churn"], "churn", CHURN_KEYS),
        types=types,
        regions=vocab["regions"],
        devices=vocab["devices"],
        acquisition_channels=vocab["acquisition_channels"],
        session_channels=vocab["session_channels"],
        t=t,
        tv=tv,
        source=src,
        shifts=_compile_shifts(check, raw.get("shifts"), start, len(vocab["session_channels"])),
        **_compile_actions(check, raw["actions"], types),
    )


def _rates(check: Checker, value: Any, path: str, keys: tuple[str, ...]) -> dict[str, float]:
    """A block of named numbers >= 0 (bumps, multipliers, floors), every one required."""
    block = check.mapping(value, path, keys, required=keys)
    return {k: check.number(block[k], f"{path}.{k}") for k in keys}


def params_from_text(text: str, src: str) -> SimParams:
    raw, lines = parse(text, src)
    return compile_params(raw, src, lines)


def load_params(path: str | Path | None = None) -> SimParams:
    if path is None:
        return params_from_text(_default_text(), "<default simulator>")
    return params_from_text(read_file(Path(path)), str(path))


def late_shifts(params: SimParams, days: int) -> list[str]:
    """Warnings for the shifts that start after a simulation of ``days`` days ends: they change
    none of its events (only an oracle's futures past the end)."""
    end = params.start + timedelta(days=days - 1)
    return [f"warning: {s.origin}: {params.start + timedelta(days=s.from_day)} is after the "
            f"simulated period ({params.start} to {end}): the shift changes none of its events"
            for s in params.shifts if s.from_day >= days]
