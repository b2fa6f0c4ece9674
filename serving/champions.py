"""The served models: each target's version under the served alias, loaded natively, swapped
as one set so a request never sees models from two different loads.

A reload that fails (missing alias, unreadable artifact, registry down, feature definitions
that differ from the service's) keeps the last good set and records why.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from features.spec import FeatureSpec
from models.lgbm import LightGBMClassifier
from models.persona_params import REGISTERED_NAME as PERSONAS
from models.personas import PersonaModel
from models.registry import (
    NOT_FOUND,
    Loaded,
    RegistryError,
    alias_version,
    load_native,
    load_version,
)
from models.survival import SurvivalCurves
from models.targets import SURVIVAL, TARGETS, Target, target
from models.uplift_model import JourneyUplift
from models.uplift_model import registered_name as uplift_name

UPLIFT_OUTCOMES = ("convert", "churn")
# Loads a reload makes before giving up on aliases that keep moving under it (each takes
# seconds; promotions move every champion within milliseconds, so two nearly always do).
LOAD_ATTEMPTS = 3

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.tracking import MlflowClient


log = logging.getLogger("journey.serving")

@dataclass(frozen=True)
class Served:
    target: Target
    loaded: Loaded

    @property
    def version(self) -> str:
        return str(self.loaded.version.version)

    @property
    def explainable(self) -> bool:
        return isinstance(self.loaded.model, LightGBMClassifier)


@dataclass(frozen=True)
class ServedUplift:
    model: JourneyUplift
    version: str


@dataclass(frozen=True)
class ServedPersona:
    model: PersonaModel
    version: str


@dataclass(frozen=True)
class ServedSurvival:
    model: SurvivalCurves
    version: str


@dataclass(frozen=True)
class ModelSet:
    models: dict[str, Served]  # by target name
    # by outcome; empty when no uplift model is registered (recommendations unavailable)
    uplift: dict[str, ServedUplift] = field(default_factory=dict)
    loaded_at: float = field(default_factory=time.time)
    persona: ServedPersona | None = None  # None when none is registered (no persona column)
    survival: ServedSurvival | None = None  # None when none is registered (time_to_churn null)

    def versions(self) -> dict[str, str]:
        personas = {PERSONAS: self.persona.version} if self.persona else {}
        survival = {SURVIVAL: self.survival.version} if self.survival else {}
        return {**{name: s.version for name, s in self.models.items()},
                **{uplift_name(o): u.version for o, u in self.uplift.items()}, **personas,
                **survival}


def _check_definitions(registered: str, version: ModelVersion, spec: FeatureSpec) -> None:
    tags = dict(version.tags)
    if tags.get("journey.definition_hash") != spec.hash:
        raise RegistryError(
            f"{registered} v{version.version} was trained on feature definitions "
            f"{tags.get('journey.definition_hash')}; the service computes {spec.hash}: train "
            "on the current feature definitions (journey train) and promote"
        )


def load_uplift(client: MlflowClient, spec: FeatureSpec, alias: str) -> dict[str, ServedUplift]:
    """Each outcome's ``alias`` uplift version, where one is registered. A registered one that
    cannot be loaded fails the load (it was meant to be served)."""
    out: dict[str, ServedUplift] = {}
    for outcome in UPLIFT_OUTCOMES:
        version = alias_version(client, uplift_name(outcome), alias)
        if version is None:
            continue
        _check_definitions(uplift_name(outcome), version, spec)
        model = load_native(version, JourneyUplift)
        assert isinstance(model, JourneyUplift)
        model.propensity_digest()  # now, not on the first request
        out[outcome] = ServedUplift(model, str(version.version))
    return out


def load_models(client: MlflowClient, spec: FeatureSpec, alias: str) -> ModelSet:
    """Every target's ``alias`` version; all or nothing (scores, next-best-actions and the
    service need each target's probabilities)."""
    versions = served_versions(client, spec, alias)
    models: dict[str, Served] = {}
    for name, version in versions.items():
        registered = target(name, spec.stages).registered_name
        tags = dict(version.tags)
        _check_definitions(registered, version, spec)
        loaded = load_version(client, version)
        if isinstance(loaded.model, LightGBMClassifier):
            try:  # registered before linear trees were refused
                loaded.model.check_constant_leaves()
            except ValueError as exc:
                raise RegistryError(f"{registered} v{version.version}: {exc}; train it again "
                                    "without linear_tree and promote") from exc
            loaded.model.prepare()  # path tables and forest now, not on the first request
        t = target(name, spec.stages, tags.get("journey.label", "churned_inactive"))
        models[name] = Served(t, loaded)
    return ModelSet(models, load_uplift(client, spec, alias),
                    persona=load_persona(client, spec, alias),
                    survival=load_survival(client, spec, alias))


def served_versions(client: MlflowClient, spec: FeatureSpec, alias: str
                    ) -> dict[str, ModelVersion]:
    """Each target's ``alias`` version. Every missing one is named in one error, with the
    targets that have one and what to do: an analyst whose data cannot train one target (churn
    labels of a single class) learns at once why nothing can be scored, not one run at a time."""
    found = {name: alias_version(client, target(name, spec.stages).registered_name, alias)
             for name in TARGETS}
    missing = [name for name, v in found.items() if v is None]
    if missing:
        # Trained but held back by the promotion gate: training again is not the fix.
        held = {name: str(v.version) for name in missing if (v := alias_version(
            client, target(name, spec.stages).registered_name, "challenger")) is not None}
        raise RegistryError(missing_message(spec, alias, missing, {
            name: str(v.version) for name, v in found.items() if v is not None}, held))
    return {name: v for name, v in found.items() if v is not None}


def missing_message(spec: FeatureSpec, alias: str, missing: list[str],
                    present: dict[str, str], held: dict[str, str] | None = None) -> str:
    """Why models cannot be served: the targets without an ``alias`` version, those with one
    (``present``: version by target), and how to give each missing one a version (``held``:
    the challenger versions of missing targets, which the promotion gate has not passed)."""
    held = held or {}

    def registered(name: str) -> str:
        return target(name, spec.stages).registered_name

    def step(n: str) -> str:
        if n in held:
            return (f"{n}: challenger v{held[n]} was not promoted (`journey promote --target "
                    f"{n}` says why; train a better one, or `--force` it)")
        return (f"{n}: train it (list {n} under `targets:` in the experiment, then `journey "
                f"train --experiment ...`) and `journey promote --target {n}`")

    # "<model> has no version with alias ..." as before, for whoever searches logs for it.
    lacking = (f"model {registered(missing[0])} has" if len(missing) == 1 else
               "models " + ", ".join(f"{registered(n)} ({n})" for n in missing) + " have")
    have = (", ".join(f"{n} ({registered(n)} v{v})" for n, v in present.items()) if present
            else "none of them")
    if present or held:
        steps = "Per missing target: " + "; ".join(step(n) for n in missing)
    else:  # nothing trained yet (a newcomer's first `serve`): one step, not one per target
        steps = ("Train them (`journey train --experiment experiments/default.yaml`), then "
                 "`journey promote`")
    return (f"{lacking} no version with alias {alias!r}: scoring and serving need one for "
            f"every target ({', '.join(TARGETS)}); those with one: {have}. {steps}. A target "
            "whose training labels have a single class (e.g. no customer churned) cannot be "
            "trained on this data")


def _optional(client: MlflowClient, spec: FeatureSpec, alias: str, registered: str,
              expected: type) -> tuple[object, str] | None:
    """The ``alias`` version of an optional model and its number, or None when none is
    registered (a registered one that cannot be loaded fails the load, as uplift models do)."""
    version = alias_version(client, registered, alias)
    if version is None:
        return None
    _check_definitions(registered, version, spec)
    return load_native(version, expected), str(version.version)


def load_survival(client: MlflowClient, spec: FeatureSpec, alias: str) -> ServedSurvival | None:
    """The ``alias`` time-to-churn model, when one is registered."""
    got = _optional(client, spec, alias, target(SURVIVAL, spec.stages).registered_name,
                    SurvivalCurves)
    if got is None:
        return None
    assert isinstance(got[0], SurvivalCurves)
    return ServedSurvival(got[0], got[1])


def load_persona(client: MlflowClient, spec: FeatureSpec, alias: str) -> ServedPersona | None:
    """The ``alias`` persona model, when one is registered."""
    got = _optional(client, spec, alias, PERSONAS, PersonaModel)
    if got is None:
        return None
    assert isinstance(got[0], PersonaModel)
    return ServedPersona(got[0], got[1])


class ModelHolder:
    """The current model set, and the outcome of the last load attempt.

    ``probe`` reads which version each alias names (cheap); ``loader`` loads them (seconds)."""

    def __init__(self, loader: Callable[[], ModelSet], probe: Callable[[], dict[str, str]]):
        self._loader, self._probe = loader, probe
        self._lock = threading.Lock()
        self.current: ModelSet | None = None
        self.last_error: str | None = None
        self.failures = 0

    def reload(self) -> bool:
        """Load the aliases' versions when they differ from those served; True when the
        served set changed. On failure the current set stays and the error is kept."""
        with self._lock:
            # Any failure (registry down, artifact unreadable, missing alias) must leave the
            # service on its last good models, whatever the exception type.
            try:
                if self.current is not None and self._probe() == self.current.versions():
                    self.last_error = None
                    return False
                fresh = self._load_settled()
            except Exception as exc:
                self.failures += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("models not reloaded (still serving %s): %s",
                            self.current.versions() if self.current else "none",
                            self.last_error)
                return False
            changed = self.current is None or fresh.versions() != self.current.versions()
            if changed:
                log.info("serving models %s (were %s)", fresh.versions(),
                         self.current.versions() if self.current else "none")
            self.current = fresh  # one reference swap: readers see the old set or the new one
            self.last_error = None
            return changed

    def _load_settled(self) -> ModelSet:
        """A load whose versions the aliases still name once it is done. The loader reads each
        alias as it reaches that model, seconds apart: a promotion moving the champions in
        between gives a set never promoted together, which is loaded again."""
        for _ in range(LOAD_ATTEMPTS):
            fresh = self._loader()
            now = self._probe()
            if now == fresh.versions():
                return fresh
            log.info("the aliases moved while models were loaded (loaded %s, now %s): "
                     "loading again", fresh.versions(), now)
        raise RegistryError(
            f"the aliases moved during each of {LOAD_ATTEMPTS} loads (last loaded "
            f"{fresh.versions()}, the registry now names {now}): a promotion kept moving them; "
            "the next reload tries again")


def alias_versions(client: MlflowClient, spec: FeatureSpec, alias: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for name in TARGETS:
        v = alias_version(client, target(name, spec.stages).registered_name, alias)
        if v is not None:
            out[name] = str(v.version)
    for outcome in UPLIFT_OUTCOMES:
        v = alias_version(client, uplift_name(outcome), alias)
        if v is not None:
            out[uplift_name(outcome)] = str(v.version)
    persona = alias_version(client, PERSONAS, alias)
    if persona is not None:
        out[PERSONAS] = str(persona.version)
    survival = alias_version(client, target(SURVIVAL, spec.stages).registered_name, alias)
    if survival is not None:
        out[SURVIVAL] = str(survival.version)
    return out


def served_names(spec: FeatureSpec) -> tuple[str, ...]:
    """The registered names of every model the service may serve."""
    return (*(target(name, spec.stages).registered_name for name in TARGETS),
            *(uplift_name(o) for o in UPLIFT_OUTCOMES), PERSONAS,
            target(SURVIVAL, spec.stages).registered_name)


def registry_aliases(client: MlflowClient, spec: FeatureSpec) -> set[str]:
    """Every alias any of the service's models has in the registry (none: nothing promoted
    yet). Raises RegistryError when the registry does not answer."""
    from mlflow.exceptions import MlflowException

    found: set[str] = set()
    for name in served_names(spec):
        try:
            model = client.get_registered_model(name)
        except MlflowException as exc:
            if exc.error_code in NOT_FOUND:
                continue
            raise RegistryError(f"the model registry did not answer for {name} "
                                f"({exc.error_code})") from exc
        found |= set(model.aliases)
    return found
