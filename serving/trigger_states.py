"""Customer states for trigger rules from encoded event histories, computed as the service
computes predictions and recommendations: the same kernel (stage), the served churn model
(calibrated probability) and the catalog's rules (eligibility, contact policy, arbitration).
Only what the enabled rules need is computed; several customers go through one kernel pass."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np

from features.batch import micros
from features.events import EventArrays
from features.online import OnlineFeatures, Vectors
from features.spec import FeatureSpec
from models.actions import Catalog
from models.arbitration import blocked
from models.contacts import contacts_from_arrays
from models.recommendation import Contact, Customer
from serving.champions import ModelSet
from serving.predictor import Predictor, Scored
from serving.recommender import Recommender
from serving.trigger_config import Rule
from serving.trigger_rules import CustomerState

Attrs = dict[str, str | None]


def stack(histories: Sequence[EventArrays]) -> EventArrays:
    """Several one-customer histories as one set of arrays (customer codes in order)."""
    sizes = np.array([len(h) for h in histories], np.int64)
    ends = np.cumsum(sizes)

    def cat(name: str) -> np.ndarray:
        return np.concatenate([getattr(h, name) for h in histories])

    return EventArrays([h.customer_ids[0] for h in histories],
                       np.repeat(np.arange(len(histories), dtype=np.int32), sizes),
                       cat("ts"), cat("etype"), cat("channel"), cat("action"), cat("value"),
                       cat("score"), segments=(ends - sizes, ends))


class StateReader:
    def __init__(self, spec: FeatureSpec, predictor: Predictor, catalog: Catalog,
                 rules: Sequence[Rule]) -> None:
        self.spec = spec
        self.online = OnlineFeatures(spec)
        self.predictor = predictor
        self.catalog = catalog
        self.recommender = Recommender(spec, catalog, None, 0.0)
        watched = [r for r in rules if r.kind == "became_eligible"]
        self.eligible = sorted({r.params["action"] for r in watched
                                if r.params["level"] == "eligible"})
        self.recommended = sorted({r.params["action"] for r in watched
                                   if r.params["level"] == "recommended"})
        self.scores = bool(watched) or any(r.kind == "risk_crossed" for r in rules)

    def states(self, models: ModelSet | None, histories: Sequence[EventArrays | None],
               attributes: Sequence[Attrs], when: datetime) -> list[CustomerState | None]:
        """Each customer's state as of ``when`` from their events before it (None: no event
        before it)."""
        t = micros(when)
        keep = [i for i, h in enumerate(histories) if h is not None and len(h) > 0]
        out: list[CustomerState | None] = [None] * len(histories)
        if not keep:
            return out
        mine = [h for i in keep if (h := histories[i]) is not None]
        vectors = self.online.vectors(stack(mine), t, [attributes[i] for i in keep])
        scored = (self.predictor.score(models, vectors, when, explain=False)
                  if models is not None and self.scores else None)
        stages = [self._stage(vectors, k) for k in range(len(keep))]
        blocks = self._blocked(models, vectors, scored, mine, stages, t)
        for k, i in enumerate(keep):
            out[i] = CustomerState(
                at_us=t, stage=stages[k], churn=scored[k].churn if scored is not None else None,
                last_activity_us=self._last_activity(mine[k]), blocked=blocks[k])
        return out

    def _stage(self, vectors: Vectors, k: int) -> str | None:
        """``stage_current`` is the stage's index in the taxonomy (-1: no customer event)."""
        code = vectors.value(k, "stage_current")[1]
        s = int(code) if isinstance(code, float) and np.isfinite(code) else -1
        return self.spec.stages[s] if 0 <= s < len(self.spec.stages) else None

    def _last_activity(self, h: EventArrays) -> int | None:
        """The last customer event: one whose type maps to a stage (contacts do not count)."""
        mask = self.online.enc.stage_of_type[h.etype] >= 0
        return int(h.ts[mask].max()) if mask.any() else None

    def _blocked(self, models: ModelSet | None, vectors: Vectors, scored: list[Scored] | None,
                 histories: list[EventArrays], stages: list[str | None], t: int
                 ) -> list[dict[str, str | None]]:
        """Per customer, for each watched action, why it may not be sent (None: it may)."""
        out: list[dict[str, str | None]] = [{} for _ in histories]
        if not (self.eligible or self.recommended):
            return out
        records = vectors.records()
        contacts = [contacts_from_arrays(h, self.spec) for h in histories]
        for k, h in enumerate(histories):
            s = scored[k] if scored is not None else None
            customer = Customer(
                customer_id=h.customer_ids[0], stage=stages[k],
                predictions={"churn": s.churn, "conversion": s.conversion} if s else {},
                features=records[k], contacts=contacts[k])
            for action in self.eligible:
                out[k][action] = blocked(self.catalog, customer, action, t)
        if self.recommended:
            self._recommended(models, vectors, scored, contacts, t, out)
        return out

    def _recommended(self, models: ModelSet | None, vectors: Vectors,
                     scored: list[Scored] | None, contacts: list[list[Contact]], t: int,
                     out: list[dict[str, str | None]]) -> None:
        """Whether next-best-action (the catalog's top k, no exploration) recommends each
        watched action, and if not, the reason arbitration gives."""
        if models is None or scored is None or not models.uplift:
            for row in out:
                row.update(dict.fromkeys(self.recommended, "no uplift models are served"))
            return
        done = self.recommender.recommend(models, vectors, scored, contacts, t, explore=False)
        for row, r in zip(out, done, strict=True):
            chosen = {a.action for a in r.decision.actions}
            held = {x.action: f"{x.stage}: {x.reason}" for x in r.decision.suppressed}
            for action in self.recommended:
                row[action] = None if action in chosen else held.get(
                    action, r.decision.no_action_reason or "not recommended")
