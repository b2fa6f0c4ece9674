"""Batch scoring's stage columns: a customer without a stage (no events yet, or contacts only,
whose stage code is -1) gets a null stage, never the last stage by wrap-around nor a crash."""

from __future__ import annotations

import numpy as np

from features.spec import load_spec
from serving.scoring import _categorical, stage_names

STAGES = load_spec().stages


def test_a_customer_without_a_stage_has_a_null_stage_column() -> None:
    codes = np.array([-1.0, np.nan, 0.0, 2.0, 5.0])
    column = _categorical(codes, STAGES)
    assert column.to_pylist() == [None, None, STAGES[0], STAGES[2], STAGES[5]]


def test_stage_names_never_wrap_a_missing_stage_to_the_last() -> None:
    codes = np.array([-1.0, np.nan, 1.0, float(len(STAGES))])
    assert stage_names(codes, STAGES) == [None, None, STAGES[1], None]
