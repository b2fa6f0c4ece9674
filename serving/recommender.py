"""Next-best-action for scored customers: uplift per action and outcome from the served uplift
models, the customer's past contacts from the history, then the catalog's arbitration
(``models.arbitration``). No web framework here.

Each answer carries a recommendation id and, per action, the probability this policy chose it
(exploration included). A caller that delivers an action reports it back as an
``action_sent`` event carrying both, so later uplift training knows how it was assigned.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

import numpy as np
import numpy.typing as npt

from features.online import Vectors
from features.spec import FeatureSpec
from models.actions import Catalog, check_action_vocabulary
from models.arbitration import arbitrate
from models.arbitration_batch import Batch, Sent, candidates, top_actions
from models.recommendation import Contact, Customer, Decision, Ranked
from models.uplift_model import JourneyUplift, SharedPropensities
from models.uplift_support import off_support
from serving.champions import ModelSet
from serving.errors import NotReadyError
from serving.ids import random_ids
from serving.predictor import Scored

F64 = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]


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


class _Subsets:
    """Uplift for the customers with at least one open action only: their rows of each
    encoded matrix (one copy per distinct matrix: models sharing an encoding share it, and so
    can share propensities), the open pairs among a model's actions, and the answers widened
    back to every customer (0 elsewhere)."""

    def __init__(self, open_: Bools, index: Mapping[str, int]) -> None:
        self.open_, self.index = open_, index
        self.need = np.flatnonzero(open_.any(axis=1))
        self._copies: list[tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]] = []

    def predict(self, model: JourneyUplift, matrix: npt.NDArray[np.float32],
                shared: SharedPropensities) -> tuple[F64, F64]:
        n, k = len(self.open_), len(model.actions_)
        control, uplift = np.zeros(n), np.zeros((n, k))
        if len(self.need):  # none: no rows to score, and none could be shaped
            control[self.need], uplift[self.need] = model.predict_shared(
                self.rows(matrix), shared, self._wanted(model.actions_))
        return control, uplift

    def rows(self, matrix: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        for full, rows in self._copies:
            if full is matrix:
                return rows
        rows = matrix[self.need]
        self._copies.append((matrix, rows))
        return rows

    def _wanted(self, actions: Sequence[str]) -> Bools:
        """(needed rows, ``actions``): the open pairs (an action the catalog does not have
        is never open)."""
        out = np.zeros((len(self.need), len(actions)), bool)
        for j, action in enumerate(actions):
            if action in self.index:
                out[:, j] = self.open_[self.need, self.index[action]]
        return out


class Recommender:
    def __init__(self, spec: FeatureSpec, catalog: Catalog, top_k: int | None,
                 exploration: float | None, seed: int | None = None) -> None:
        check_action_vocabulary(catalog, spec)  # else its sends would escape its own rules
        self.catalog = catalog
        self.top_k = top_k
        self.exploration = exploration
        self.rng = np.random.default_rng(seed)
        self.spec = spec

    def uplift(self, models: ModelSet, vectors: Vectors) -> tuple[
            list[dict[str, dict[str, float]]], list[dict[str, float]], list[frozenset[str]]]:
        """Per customer: per action and outcome the estimated change in probability, per
        outcome its probability with no action (what a discount is valued against), and the
        actions whose estimates the log cannot check (``Customer.unsupported``)."""
        out: list[dict[str, dict[str, float]]] = [{} for _ in range(len(vectors))]
        base: list[dict[str, float]] = [{} for _ in range(len(vectors))]
        shared = SharedPropensities()
        unchecked = off_support(self.catalog.ids, self._support(models, vectors, shared))
        for outcome, (control, uplift, actions) in self._uplift(models, vectors, shared).items():
            for i, (p0, row) in enumerate(zip(control.tolist(), uplift.tolist(), strict=True)):
                base[i][outcome] = p0
                for action, u in zip(actions, row, strict=True):
                    out[i].setdefault(action, {})[outcome] = u
        return out, base, unchecked

    def _support(self, models: ModelSet, vectors: Vectors, shared: SharedPropensities,
                 some: _Subsets | None = None) -> Bools:
        """(n, catalog actions): False where a served model finds that the log almost never
        sent the action to such a customer (``models.uplift_support``), True elsewhere:
        for the actions of models trained before they learned where, and for the customers
        ``some`` leaves out (none of their actions is open)."""
        out = np.ones((len(vectors), len(self.catalog.actions)), bool)
        if some is not None and not len(some.need):
            return out  # no rows to score (and none could be shaped)
        rows = slice(None) if some is None else some.need
        for served in models.uplift.values():
            model = served.model
            matrix = model.vectors_matrix(vectors)
            support = model.supported(matrix if some is None else some.rows(matrix), shared)
            if support is None:
                continue
            for j, action in enumerate(model.actions_):
                column = self.catalog.index.get(action)
                if column is not None:
                    out[rows, column] &= support[:, j]
        return out

    def _uplift(self, models: ModelSet, vectors: Vectors, shared: SharedPropensities,
                some: _Subsets | None = None) -> dict[str, tuple[F64, F64, tuple[str, ...]]]:
        """Per outcome: the probability with no action (n,), the uplift (n, actions), and
        the actions of its columns. ``some``: estimate only its open (customer, action) pairs
        (``arbitration_batch.candidates``), 0 at the others; a customer with none gets 0 for
        the probability with no action too."""
        if not models.uplift:
            raise NotReadyError("no uplift models are being served: train and promote them "
                                "(journey uplift, journey promote --target uplift-convert)")
        out = {}
        for outcome, served in models.uplift.items():
            model = served.model
            matrix = model.vectors_matrix(vectors)
            control, uplift = (model.predict_shared(matrix, shared) if some is None
                               else some.predict(model, matrix, shared))
            out[outcome] = (control, uplift, tuple(model.actions_))
        return out

    def top_actions(self, models: ModelSet, vectors: Vectors, stages: npt.NDArray[np.int64],
                    predictions: Mapping[str, F64], sent: Sent, now_us: int
                    ) -> tuple[list[str | None], F64]:
        """Each customer's top action (None: none) and its value, as ``recommend`` with one
        slot and no exploration decides them, for a whole batch at once
        (``models.arbitration_batch``). ``stages``: codes into the spec's stages (-1: none);
        ``predictions``: churn and conversion; ``sent``: the contacts already sent. Uplift is
        estimated only for the actions open to each customer (28 % of the pairs in the
        benchmark worlds, and the effect models were most of the time) whose estimates the
        log can check."""
        batch = Batch(stages, self.spec.stages, predictions, vectors.column, {}, {}, sent)
        open_ = candidates(self.catalog, batch, now_us)
        shared, some = SharedPropensities(), _Subsets(open_, self.catalog.index)
        # In place: the subsets keep their rows (and so the propensities computed on them)
        # and estimate only the pairs left open.
        support = self._support(models, vectors, shared, some)
        open_ &= support
        arrays = self._uplift(models, vectors, shared, some)
        effects: dict[str, dict[str, F64]] = {}
        for outcome, (_, uplift, actions) in arrays.items():
            for j, action in enumerate(actions):
                effects.setdefault(action, {})[outcome] = uplift[:, j]
        baseline = {outcome: control for outcome, (control, _, _) in arrays.items()}
        batch = replace(batch, baseline=baseline, uplift=effects)

        def exact(i: int) -> Ranked | None:
            stage = int(stages[i])
            customer = Customer(
                customer_id=vectors.matrix.customer_ids[i],
                stage=self.spec.stages[stage] if stage >= 0 else None,
                predictions={k: float(v[i]) for k, v in predictions.items()},
                features=_Row(vectors, i), contacts=sent.contacts(i),
                baseline={k: float(v[i]) for k, v in baseline.items()},
                unsupported=off_support(self.catalog.ids, support[i:i + 1])[0])
            uplift = {a: {o: float(u[i]) for o, u in by.items()} for a, by in effects.items()}
            decision = arbitrate(self.catalog, customer, uplift, now_us, top_k=1,
                                 exploration=0.0, explain=False)
            return decision.actions[0] if decision.actions else None

        index, value = top_actions(self.catalog, batch, now_us, exact, open_)
        ids = [*self.catalog.ids, None]  # index -1 picks the None
        return [ids[i] for i in index.tolist()], value

    def recommend(self, models: ModelSet, vectors: Vectors, scored: list[Scored],
                  contacts: Sequence[Sequence[Contact]], now_us: int, top_k: int | None = None,
                  explore: bool = True, explain: bool = True) -> list[Recommended]:
        """``contacts``: each customer's contacts already sent (``models.contacts``);
        ``explain=False``: the recommended actions without their reasons (``arbitrate``)."""
        uplifts, baselines, unchecked = self.uplift(models, vectors)
        out = []
        ids = random_ids(len(scored))
        for i, s in enumerate(scored):
            customer = Customer(
                customer_id=s.customer_id, stage=s.current_stage,
                predictions={"churn": s.churn, "conversion": s.conversion},
                features=_Row(vectors, i), contacts=contacts[i],
                baseline=baselines[i], unsupported=unchecked[i],
            )
            decision = arbitrate(self.catalog, customer, uplifts[i], now_us,
                                 top_k=top_k or self.top_k,
                                 exploration=self.exploration if explore else 0.0, rng=self.rng,
                                 explain=explain)
            out.append(Recommended(ids[i], s.customer_id, s.as_of, decision, s))
        return out
