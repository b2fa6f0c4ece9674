"""``Vectors.frame``: the frame baseline models score, built a column at a time, equal to the
one built from the per-customer dicts (columns, order, values and types). ``Vectors.column``:
one feature of every customer, equal to what ``Vectors.value`` reads customer by customer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.kernels import FeatureMatrix
from features.online import CodedAttributes, Vectors


def vectors(attributes: list[dict[str, str | None]]) -> Vectors:
    n = len(attributes)
    values = np.arange(2 * n, dtype=np.float64).reshape(n, 2)
    values[:, 1] = np.nan  # a feature the customers have no value for
    matrix = FeatureMatrix(
        customer_ids=[f"c{i}" for i in range(n)], names=("recency_days", "frequency"),
        values=values,
        categorical={"last_channel": (np.array([0, -1, 1][:n] + [0] * max(0, n - 3)),
                                      ("email", "web"))})
    return Vectors(matrix, attributes)


@pytest.mark.parametrize("attributes", [
    [{"region": "north", "device": None}, {"region": None}, {"device": "ios"}],
    [{}, {}, {}],
    [{"region": "north"}, {"region": "south"}, {"region": "east"}],
    [{"region": None}, {"region": None}, {}],
])
def test_frame_equals_the_frame_of_the_records(attributes: list[dict[str, str | None]]) -> None:
    v = vectors(attributes)
    pd.testing.assert_frame_equal(v.frame(), pd.DataFrame(v.records()))


def test_no_customers() -> None:
    v = Vectors(FeatureMatrix([], ("a",), np.zeros((0, 1)), {}), [])
    assert v.frame().shape == (0, 1) and list(v.frame().columns) == ["a"]


NAMES = ("recency_days", "frequency", "last_channel", "attr_region", "attr_device",
         "attr_unknown", "no_such_feature")


def _one_by_one(v: Vectors, name: str) -> list[object]:
    return [v.value(i, name)[1] for i in range(len(v))]


@pytest.mark.parametrize("name", NAMES)
def test_column_equals_the_values_read_one_by_one(name: str) -> None:
    dicts = vectors([{"region": "north", "device": None}, {"region": None}, {"device": "ios"}])
    codes = {"region": (np.array([0, -1, 1], np.int32), ["north", "south"]),
             "device": (np.array([-1, -1, 0], np.int32), ["ios"])}
    coded = Vectors(dicts.matrix, CodedAttributes(codes, 3), None, codes)
    for v in (dicts, coded):
        column = v.column(name)
        want = _one_by_one(v, name)
        assert len(column) == len(want)
        if column.dtype == object:
            assert column.tolist() == want
        else:
            assert column.dtype == np.float64
            np.testing.assert_array_equal(column, np.array(want, np.float64))
