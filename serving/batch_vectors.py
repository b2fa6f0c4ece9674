"""A batch of stored customers' feature vectors, gathered from the histories in one kernel
pass: what /predict/batch, /recommend and the drift sample of a scoring run score. Apart from
serving/state.py because it needs only the histories and the online features, not the
service's store, writer or workers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from features.batch import micros
from features.events import EventArrays
from features.history import HistoryIndex
from features.online import OnlineFeatures, Vectors
from serving.champions import ModelSet


@dataclass(frozen=True)
class Batch:
    models: ModelSet
    history: HistoryIndex
    when: datetime
    t: int
    known: list[str]
    unknown: list[str]
    vectors: Vectors | None
    contacts: list[EventArrays] | None = None  # per known customer: events up to t inclusive


def batch_vectors(online: OnlineFeatures, models: ModelSet, history: HistoryIndex,
                  when: datetime, customer_ids: Sequence[str], contacts: bool = False) -> Batch:
    """The known customers' vectors as of ``when``; unknown ids listed apart.
    ``contacts``: also each customer's events up to ``when`` inclusive (a contact sent at
    that time is already sent), and a customer with no event before ``when`` is unknown too
    (nothing to base a decision on). Either way a customer with no event before ``when``
    is listed as unknown, as /predict answers 404 for one."""
    t = micros(when)
    known = list(dict.fromkeys(c for c in customer_ids if c in history))
    upto: list[EventArrays] | None = None
    if contacts:
        pairs = [(c, h) for c in known
                 if (h := history.arrays(c, t + 1)) is not None and len(h) and h.ts[0] < t]
        known, upto = [c for c, _ in pairs], [h for _, h in pairs]
    arrays = history.many(known, t) if known else None
    if arrays is not None and not contacts:
        counts = np.bincount(arrays.cust, minlength=len(known))
        if not counts.all():  # rare: gathered once more without them
            known = [c for c, n in zip(known, counts.tolist(), strict=True) if n]
            arrays = history.many(known, t) if known else None
    kept = set(known)
    unknown = [c for c in dict.fromkeys(customer_ids) if c not in kept]  # request order
    vectors = None
    if arrays is not None:
        vectors = online.vectors(arrays, t, [history.attributes.of(c) for c in known])
    return Batch(models, history, when, t, known, unknown, vectors, upto)
