"""Batch scoring without a registry: models that give every class the same probability, and a
population of hand-built events (customer-sorted, with their segments), so what scoring makes
of the events' values can be checked without training anything."""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import pandas as pd

from features.events import EventArrays
from features.spec import FeatureSpec
from models.registry import Loaded
from models.targets import TARGETS, target
from serving.champions import ModelSet, Served
from serving.scoring import Population
from tests.models.test_journey_map import arrays

Event = tuple[int, float, str | None, str, float]


class Constant:
    """A classifier answering 1/k for each of its k classes (a baseline champion's API)."""

    def __init__(self, classes: int) -> None:
        self.classes = classes

    def predict_proba(self, frame: pd.DataFrame) -> npt.NDArray[np.float64]:
        return np.full((len(frame), self.classes), 1.0 / self.classes)


def constant_models(spec: FeatureSpec) -> ModelSet:
    models = {}
    for name in TARGETS:
        t = target(name, spec.stages)
        version = cast(Any, SimpleNamespace(version="1", tags={}))
        models[name] = Served(t, Loaded(cast(Any, Constant(len(t.classes))), version))
    return ModelSet(models)


def population(events: Sequence[Event], values: dict[int, float] | None = None,
               customers: int = 7, attributes: Sequence[str] = ()) -> Population:
    """The events as a scoring population; ``values``: an event's value by its position in
    customer and time order (the others have none); ``attributes``: customer attributes
    nobody has a value of."""
    ev = arrays(events, customers=customers)
    for i, v in (values or {}).items():
        ev.value[i] = v
    ids = np.arange(customers)
    segments = (np.searchsorted(ev.cust, ids), np.searchsorted(ev.cust, ids, side="right"))
    return Population(EventArrays(ev.customer_ids, ev.cust, ev.ts, ev.etype, ev.channel,
                                  ev.action, ev.value, ev.score, segments=segments),
                      {a: (np.full(customers, -1, np.int32), []) for a in attributes})
