"""``LightGBMClassifier.predict_raw`` on a large frame (validation, test) goes through the
compiled forest and still gives LightGBM's probabilities to the bit; linear trees, whose leaves
the compiled paths would read as constants, are refused when fitted and when served."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import models.lgbm as lgbm_module
from models.lgbm import LINEAR_TREE, LightGBMClassifier


def frame(n: int, seed: int, classes: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n),
                      "c": rng.integers(0, 9, n).astype(float)})
    x.loc[rng.random(n) < 0.2, "b"] = np.nan
    score = x.a + x.b.fillna(0) + (x.c == 3)
    y = np.digitize(score + rng.normal(scale=0.5, size=n), [0.0, 1.0][: classes - 1])
    return x, y


@pytest.mark.parametrize("classes", [2, 3])
def test_the_forest_gives_lightgbms_probabilities(classes: int,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    x, y = frame(3000, 1, classes)
    xv, yv = frame(3000, 2, classes)
    model = LightGBMClassifier(classes=[str(c) for c in range(classes)], min_data_in_leaf=20,
                               max_rounds=60, ratios=False, calibration="none", seed=1)
    model.fit(x, y, (xv, yv))
    matrix = model.matrix(xv)
    want = np.asarray(model.booster_.predict(matrix, num_iteration=model.best_iteration_))
    monkeypatch.setattr(lgbm_module, "FOREST_ROWS", 10**9)
    assert "forest_" not in model.__dict__
    np.testing.assert_array_equal(model.predict_raw(xv), want)  # LightGBM's own predict
    assert "forest_" not in model.__dict__
    monkeypatch.setattr(lgbm_module, "FOREST_ROWS", 100)
    got = model.predict_raw(xv)
    assert "forest_" in model.__dict__  # this time through the compiled forest
    assert got.shape == want.shape and got.dtype == np.float64
    np.testing.assert_array_equal(got, want)


def test_linear_trees_are_refused_when_fitted() -> None:
    x, y = frame(500, 3, 2)
    with pytest.raises(ValueError, match="linear_tree is not supported"):
        LightGBMClassifier(linear_tree=True, min_data_in_leaf=20).fit(x, y, (x, y))


def test_a_linear_tree_model_from_before_is_not_served_by_the_compiled_paths() -> None:
    x, y = frame(500, 4, 2)
    model = LightGBMClassifier(min_data_in_leaf=20, max_rounds=10, ratios=False)
    model.fit(x, y, (x, y))
    model.linear_tree = True  # as a model registered before the refusal would be unpickled
    for built in ("forest_", "path_tables_"):
        model.__dict__.pop(built, None)
    for compiled in (model.forest, model.path_tables):
        with pytest.raises(ValueError, match="linear_tree is not supported"):
            compiled()
    assert "read each leaf as a constant" in LINEAR_TREE


def test_the_service_refuses_a_registered_linear_tree_model(monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    from types import SimpleNamespace

    import serving.champions as champions
    from features.spec import load_spec
    from models.registry import RegistryError

    spec = load_spec()
    x, y = frame(500, 5, 2)
    model = LightGBMClassifier(min_data_in_leaf=20, max_rounds=10, ratios=False).fit(x, y, (x, y))
    model.linear_tree = True
    version = SimpleNamespace(version="3", tags={"journey.definition_hash": spec.hash})
    monkeypatch.setattr(champions, "served_versions", lambda *_: {"churn": version})
    monkeypatch.setattr(champions, "load_version", lambda *_: SimpleNamespace(model=model))
    with pytest.raises(RegistryError, match=r"journey-churn v3: linear_tree is not supported"
                                            r".*train it again without linear_tree"):
        champions.load_models(None, spec, "champion")  # type: ignore[arg-type]


def test_prepare_builds_both_caches_from_one_dump(monkeypatch: pytest.MonkeyPatch) -> None:
    """A served model's path tables and forest come from one dump of its trees, and equal
    the ones built on their own."""
    from models.forest import Forest
    from models.paths import PathTables

    x, y = frame(2000, 3, 3)
    model = LightGBMClassifier(classes=["0", "1", "2"], min_data_in_leaf=20, max_rounds=30,
                               ratios=False, calibration="none", seed=1)
    model.fit(x, y, frame(2000, 4, 3))
    booster, it = model.booster_, model.best_iteration_
    alone_tables, alone_forest = PathTables.of(booster, it), Forest.of(booster, it)
    dumps: list[int] = []
    dump = booster.dump_model

    def counted(**kwargs: object) -> dict[str, object]:
        dumps.append(1)
        return dump(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(booster, "dump_model", counted)
    model.prepare()
    assert len(dumps) == 1
    model.prepare()  # built: no second dump
    model.path_tables(), model.forest()
    assert len(dumps) == 1
    for got, want in ((model.path_tables(), alone_tables), (model.forest(), alone_forest)):
        for name, value in vars(want).items():
            mine = getattr(got, name)
            if isinstance(value, tuple):
                for a, b in zip(mine, value, strict=True):
                    np.testing.assert_array_equal(a, b)
            else:
                np.testing.assert_array_equal(mine, value)
    xv = model.matrix(frame(500, 5, 3)[0])
    raw = np.asarray(booster.predict(xv, num_iteration=it), dtype=np.float64)
    np.testing.assert_array_equal(model.proba_batch(xv), model.calibrator_.transform(raw))
