"""Targets: what each model learns from the labels snapshot and how its output is shaped."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.targets import CHURN_LABELS, INACTIVE, TARGETS, target

STAGES = ("awareness", "consideration", "decision", "purchase", "retention", "advocacy")


def test_next_stage_is_multiclass_over_stages_and_inactive() -> None:
    t = target("next_stage", STAGES)
    assert t.kind == "multiclass"
    assert t.classes == (*STAGES, INACTIVE)
    assert t.label == "next_stage"
    assert t.registered_name == "journey-next-stage"
    assert t.primary_metric == "log_loss"
    assert not t.higher_is_better


@pytest.mark.parametrize(("name", "label"), [("churn", "churned_inactive"),
                                             ("conversion", "converted")])
def test_binary_targets(name: str, label: str) -> None:
    t = target(name, STAGES)
    assert t.kind == "binary"
    assert t.classes == ("0", "1")
    assert t.label == label
    assert t.registered_name == f"journey-{name}"
    assert t.primary_metric == "roc_auc"
    assert t.higher_is_better


def test_churn_definition_is_configurable() -> None:
    assert target("churn", STAGES, "churned_no_purchase").label == "churned_no_purchase"
    assert target("conversion", STAGES, "churned_no_purchase").label == "converted"
    with pytest.raises(ValueError, match="churn label must be one of"):
        target("churn", STAGES, "churned_forever")
    assert set(CHURN_LABELS) == {"churned_inactive", "churned_no_purchase"}


def test_unknown_target() -> None:
    with pytest.raises(ValueError, match="unknown target 'ltv'"):
        target("ltv", STAGES)
    assert TARGETS == ("next_stage", "churn", "conversion")


def test_encode_binary_keeps_unlabelled_rows_out() -> None:
    """churned_no_purchase is only defined for earlier buyers: the others are masked out."""
    labels = pd.DataFrame({"churned_no_purchase": pd.array([True, None, False, None],
                                                           dtype="boolean")})
    y, known = target("churn", STAGES, "churned_no_purchase").encode(labels)
    np.testing.assert_array_equal(known, [True, False, True, False])
    np.testing.assert_array_equal(y[known], [1, 0])
    assert y.dtype == np.int64


def test_encode_multiclass_in_class_order() -> None:
    t = target("next_stage", STAGES)
    labels = pd.DataFrame({"next_stage": ["inactive", "awareness", None, "advocacy"]})
    y, known = t.encode(labels)
    np.testing.assert_array_equal(known, [True, True, False, True])
    np.testing.assert_array_equal(y[known], [6, 0, 5])


def test_encode_rejects_unknown_values_and_missing_columns() -> None:
    t = target("next_stage", STAGES)
    with pytest.raises(ValueError, match=r"\['loyalty'\] are not among"):
        t.encode(pd.DataFrame({"next_stage": ["awareness", "loyalty"]}))
    with pytest.raises(ValueError, match="labels have no column 'converted'"):
        target("conversion", STAGES).encode(pd.DataFrame({"next_stage": ["awareness"]}))
