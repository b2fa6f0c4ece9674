"""Next-best-action for scored customers: uplift per action and outcome from the served uplift
models, the customer's past contacts from the history, then the catalog's arbitration
(``models.arbitration``). No web framework here.

Each answer carries a recommendation id and, per action, the probability this policy chose it
(exploration included). A caller that delivers an action reports it back as an
``action_sent`` event carrying both, so later uplift training knows how it was assigned.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from features.online import Vectors
from features.spec import FeatureSpec
from models.actions import Catalog, check_action_vocabulary
from models.arbitration import arbitrate
from models.recommendation import Contact, Customer, Decision
from serving.champions import ModelSet
from serving.errors import NotReadyError
from serving.ids import random_ids
from serving.predictor import Scored


@dataclass(frozen=True)
class Recommended:
    recommendation_id: str
    customer_id: str
    as_of: datetime
    decision: Decision
    scored: Scored


class _Row(Mapping[str, float | str | None]):
    """One customer's features, read from the vectors on demand (conditions read a few)."""

    def __init__(self, vectors: Vectors, i: int) -> None:
        self._v, self._i = vectors, i

    def __getitem__(self, name: str) -> float | str | None:
        has, value = self._v.value(self._i, name)
        if not has:
            raise KeyError(name)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self._v.matrix.names)

    def __len__(self) -> int:
        return len(self._v.matrix.names)


class Recommender:
    def __init__(self, spec: FeatureSpec, catalog: Catalog, top_k: int | None,
                 exploration: float | None, seed: int | None = None) -> None:
        check_action_vocabulary(catalog, spec)  # else its sends would escape its own rules
        self.catalog = catalog
        self.top_k = top_k
        self.exploration = exploration
        self.rng = np.random.default_rng(seed)
        self.spec = spec

    def uplift(self, models: ModelSet, vectors: Vectors
               ) -> tuple[list[dict[str, dict[str, float]]], list[dict[str, float]]]:
        """Per customer: per action and outcome the estimated change in probability, and per
        outcome its probability with no action (what a discount is valued against)."""
        if not models.uplift:
            raise NotReadyError("no uplift models are being served: train and promote them "
                                "(journey uplift, journey promote --target uplift-convert)")
        out: list[dict[str, dict[str, float]]] = [{} for _ in range(len(vectors))]
        base: list[dict[str, float]] = [{} for _ in range(len(vectors))]
        for outcome, served in models.uplift.items():
            model = served.model
            control, uplift = model.predict_matrix_with_control(model.vectors_matrix(vectors))
            for i, (p0, row) in enumerate(zip(control.tolist(), uplift.tolist(), strict=True)):
                base[i][outcome] = p0
                for action, u in zip(model.actions_, row, strict=True):
                    out[i].setdefault(action, {})[outcome] = u
        return out, base

    def recommend(self, models: ModelSet, vectors: Vectors, scored: list[Scored],
                  contacts: Sequence[Sequence[Contact]], now_us: int, top_k: int | None = None,
                  explore: bool = True, explain: bool = True) -> list[Recommended]:
        """``contacts``: each customer's contacts already sent (``models.contacts``);
        ``explain=False``: the recommended actions without their reasons (``arbitrate``)."""
        uplifts, baselines = self.uplift(models, vectors)
        out = []
        ids = random_ids(len(scored))
        for i, s in enumerate(scored):
            customer = Customer(
                customer_id=s.customer_id, stage=s.current_stage,
                predictions={"churn": s.churn, "conversion": s.conversion},
                features=_Row(vectors, i), contacts=contacts[i],
                baseline=baselines[i],
            )
            decision = arbitrate(self.catalog, customer, uplifts[i], now_us,
                                 top_k=top_k or self.top_k,
                                 exploration=self.exploration if explore else 0.0, rng=self.rng,
                                 explain=explain)
            out.append(Recommended(ids[i], s.customer_id, s.as_of, decision, s))
        return out
