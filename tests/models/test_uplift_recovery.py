"""On a simulator whose actions have known effects per customer type, the uplift models fitted
through the whole pipeline (event log -> decision points -> features -> learners) recover the
sign of each action's effect on conversion for each type."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from features.mapping import identity_mapping
from features.simulator.run import SimSpec, simulate
from features.spec import load_spec
from features.store import EventStore
from features.taxonomy import load_taxonomy
from tests.training.world import clean_env, one_thread, write_spec
from training.uplift import Decisions, fit_one, load_decisions
from training.uplift_spec import UpliftExperiment, load_uplift_experiment

ALL = ["awareness", "consideration", "decision", "purchase", "retention", "advocacy"]
# Two actions on non-email channels (an email's opens and clicks would add a mechanical
# effect for everyone): a coupon that quadruples deal seekers' buying and cuts loyalists' (it
# cheapens the brand for them), and a banner that only works on browsers. A new contact
# replaces the active action's effect in the simulator, so a type's "no effect" action is not
# exactly zero (a banner ends a loyalist's coupon penalty): only the designed signs are tested.
ACTIONS = {
    "coupon": {"channel": "app", "weight": 1, "stages": ALL,
               "effects": {"deal_seeker": {"pre": {"buy": 4.0}, "post": {"buy": 4.0}},
                           "loyalist": {"pre": {"buy": 0.2}, "post": {"buy": 0.2}}}},
    "banner": {"channel": "display", "weight": 1, "stages": ALL,
               "effects": {"browser": {"pre": {"buy": 4.0, "session": 2.0}}}},
}
EXPERIMENT: dict[str, Any] = {
    "name": "recovery", "horizon_days": 30, "control_rate": 0.1,
    "windows": {"train": {"start": "2025-02-15", "end": "2025-06-01"},
                "valid": {"start": "2025-07-01", "end": "2025-07-15"},
                "test": {"start": "2025-08-14", "end": "2025-08-21"}},
    "learners": [{"kind": "t", "params": {"learning_rate": 0.1}},
                 {"kind": "x", "params": {"learning_rate": 0.1}}],
    "seed": 3,
}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    root = tmp_path_factory.mktemp("recovery")
    params = yaml.safe_load(resources.files("features.simulator").joinpath(
        "default.yaml").read_text())
    params.update(actions=ACTIONS, contact_rate=0.1)
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    simulate(SimSpec(10_000, 270, seed=4, params_path=str(root / "params.yaml")), root / "sim",
             workers=1)
    store = root / "events.duckdb"
    with EventStore(store) as es:
        es.ingest(root / "sim" / "events", identity_mapping(), load_taxonomy())
        es.load_attributes(pq.read_table(root / "sim" / "customers"))
    truth = pq.read_table(root / "sim" / "truth").to_pandas()[["customer_id", "latent_type"]]
    return store, truth


@pytest.fixture(scope="module")
def decided(world: tuple[Path, pd.DataFrame],
            tmp_path_factory: pytest.TempPathFactory) -> tuple[UpliftExperiment, Decisions]:
    """The decision points and their features, once for both learners."""
    exp = load_uplift_experiment(write_spec(tmp_path_factory.mktemp("spec"), EXPERIMENT))
    with clean_env(), one_thread():
        return exp, load_decisions(exp, world[0], load_spec(), log=lambda _: None)


@pytest.mark.parametrize("learner", ["t", "x"])
def test_the_sign_of_each_effect_is_recovered_per_customer_type(
        world: tuple[Path, pd.DataFrame], decided: tuple[UpliftExperiment, Decisions],
        learner: str) -> None:
    truth = world[1]
    exp, d = decided
    with clean_env(), one_thread():
        spec = next(s for s in exp.learners if s.kind == learner)
        model = fit_one(exp, d, "convert", spec, None)
    rows = pd.concat([d.valid, d.test]).merge(truth, on="customer_id")
    # Recently active customers: the silently churned (whom no action reaches) dilute the
    # averages elsewhere; activity is what the business sees of being alive.
    rows = rows[rows["recency_days"] <= 14].reset_index(drop=True)
    uplift = pd.DataFrame(model.predict(rows), columns=list(model.actions_))
    by_type = uplift.groupby(rows["latent_type"].to_numpy()).mean()
    # Cells of a frame of floats (pandas-stubs types a .loc cell as any scalar).
    assert cast(float, by_type.loc["deal_seeker", "coupon"]) > 0.002, by_type
    assert cast(float, by_type.loc["loyalist", "coupon"]) < -0.01, by_type
    assert cast(float, by_type.loc["browser", "banner"]) > 0.005, by_type
    assert np.isfinite(uplift.to_numpy()).all()
