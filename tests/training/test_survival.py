"""The time_to_churn target trained, tracked, registered and gated like the classifiers, on its
own horizon and cutoffs (the experiment's survival section)."""

from __future__ import annotations

from pathlib import Path

import pytest

from features.errors import ConfigError
from models.registry import alias_version
from models.survival import LightGBMSurvival
from tests.training.world import (
    SMALL_SURVIVAL,
    Trained,
    World,
    copy_registry,
    dataset,
    experiment,
    source,
    train_into,
)
from training.experiment import load_experiment
from training.promote import promote_all
from training.survival import at_risk
from training.train import CHALLENGER, CHAMPION

pytestmark = pytest.mark.slow  # trains on the shared world
REGISTERED = "journey-time-to-churn"


@pytest.fixture(scope="module")
def survival(world: World, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    return train_into(world, tmp_path_factory.mktemp("survival"), SMALL_SURVIVAL)


def test_the_section_is_required_and_checked(tmp_path: Path) -> None:
    no_section = {k: v for k, v in SMALL_SURVIVAL.items() if k != "survival"}
    with pytest.raises(ConfigError, match="survival section"):
        experiment(tmp_path, no_section)
    short = {**SMALL_SURVIVAL, "survival": {**SMALL_SURVIVAL["survival"], "horizon_days": 30}}
    with pytest.raises(ConfigError, match=r"survival\.horizon_days"):
        experiment(tmp_path, short)
    overlap = {**SMALL_SURVIVAL, "survival": {**SMALL_SURVIVAL["survival"], "cutoffs": {
        "train": ["2025-06-01"], "valid": "2025-07-01", "test": "2025-10-01"}}}
    with pytest.raises(ConfigError, match="validation cutoff"):
        experiment(tmp_path, overlap)


def test_both_families_are_tracked_and_the_hazard_model_is_challenger(survival: Trained) -> None:
    km, lgbm = survival.result("time_to_churn", "baseline"), survival.result(
        "time_to_churn", "lightgbm")
    assert km.test["c_index"] == 0.5  # one curve for everyone orders nobody
    assert lgbm.test["c_index"] > 0.7
    assert lgbm.test["ibs"] < km.test["ibs"]
    client = survival.tracking.client()
    ch = alias_version(client, REGISTERED, CHALLENGER)
    assert ch is not None and str(ch.version) == lgbm.version
    tags = dict(ch.tags)
    assert tags["journey.horizon_days"] == "91"
    assert tags["journey.test_cutoff"] == "2025-10-01"
    assert tags["journey.train_cutoffs"] == "2025-03-01,2025-04-01"
    assert tags["journey.definition_hash"] == survival.ds.definition_hash
    run = client.get_run(lgbm.run_id)
    assert {"test_c_index", "test_ibs", "valid_c_index"} <= set(run.data.metrics)
    assert run.data.params["model.horizon_days"] == "91"


def test_the_logged_model_has_signature_and_pinned_requirements(survival: Trained) -> None:
    import mlflow.sklearn
    from mlflow.models import get_model_info

    version = survival.result("time_to_churn", "lightgbm").version
    uri = f"models:/{REGISTERED}/{version}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", survival.tracking.tracking_uri)
        info = get_model_info(uri)
        model = mlflow.sklearn.load_model(uri)
    assert info.signature is not None
    assert [c.name for c in info.signature.outputs.inputs] == ["expected_days"]
    assert isinstance(model, LightGBMSurvival)
    ds = survival.ds.survival
    assert ds is not None
    rows = at_risk(ds.test)[0]
    s = model.predict_survival(rows, [7, 30, 90])
    assert (s[:, 0] >= s[:, 1]).all() and (s[:, 1] >= s[:, 2]).all()


def test_promotion_gate_on_c_index(survival: Trained, world: World, tmp_path: Path) -> None:
    tracking = copy_registry(survival.tracking, tmp_path / "registry")
    src = source(world)
    try:
        first = promote_all(["time_to_churn"], tracking, src, 0.001)[0]
        assert first.promoted and first.metric == "c_index"
        # A Kaplan-Meier challenger cannot beat the hazard champion.
        client = tracking.client()
        km = survival.result("time_to_churn", "baseline").version
        client.set_registered_model_alias(REGISTERED, CHALLENGER, km)
        second = promote_all(["time_to_churn"], tracking, src, 0.001)[0]
    finally:
        src.close()
    assert not second.promoted and "does not beat" in second.reason
    assert second.challenger_score == pytest.approx(0.5)
    champion = alias_version(client, REGISTERED, CHAMPION)
    assert champion is not None
    assert str(champion.version) == survival.result("time_to_churn", "lightgbm").version


def test_the_shipped_survival_experiment_loads() -> None:
    exp = load_experiment(Path(__file__).resolve().parents[2] / "experiments" / "survival.yaml")
    assert exp.targets == ["time_to_churn"] and exp.survival is not None
    assert exp.survival.horizon_days >= 90
    assert exp.for_survival().cutoffs == exp.survival.cutoffs


def test_a_survival_only_experiment_reads_only_its_own_frames(world: World,
                                                             tmp_path: Path) -> None:
    exp = experiment(tmp_path, SMALL_SURVIVAL)
    ds = dataset(world, exp)
    assert ds.survival is not None and ds.survival.test is ds.test
    assert set(ds.test["cutoff"].dt.date.astype(str)) == {"2025-10-01"}
    assert set(ds.train["cutoff"].dt.date.astype(str)) == {"2025-03-01", "2025-04-01"}
