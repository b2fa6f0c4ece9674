"""The units of work `make test` hands its processes (tests/scheduling.py)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from tests.scheduling import (
    GROUPS,
    ROOT,
    longest_first,
    pytest_collection_modifyitems,
    read_seconds,
    scope_of,
)


def test_a_grouped_file_is_its_group_and_any_other_file_itself() -> None:
    assert scope_of("tests/features/test_spark.py::test_x[a::b]") == "group:spark"
    assert scope_of("tests/features/test_blank_actions.py::test_y") == "group:spark"
    assert scope_of("tests/serving/dashboard/test_dashboard_a11y.py::t") == "group:dashboard"
    assert scope_of("tests/features/test_spark_extra.py::t") == "tests/features/test_spark_extra.py"
    assert scope_of("tests/serving/test_dashboard.py::t") == "tests/serving/test_dashboard.py"


def test_every_member_of_a_group_exists() -> None:
    for members in GROUPS.values():
        for member in members:
            path = ROOT / member
            assert path.is_dir() if member.endswith("/") else path.is_file(), member


def _item(nodeid: str, spark: bool) -> Any:
    return SimpleNamespace(nodeid=nodeid,
                           get_closest_marker=lambda name: object() if spark else None)


def test_a_spark_test_outside_the_spark_group_is_refused() -> None:
    fine = [_item("tests/features/test_spark.py::t", True),
            _item("tests/features/test_kernels.py::t", False)]
    pytest_collection_modifyitems(cast(list[pytest.Item], fine))
    stray = [*fine, _item("tests/features/test_new.py::t", True)]
    with pytest.raises(pytest.UsageError, match=r"tests/features/test_new\.py: .*GROUPS"):
        pytest_collection_modifyitems(cast(list[pytest.Item], stray))


def test_units_go_out_longest_first_and_unknown_ones_by_their_tests() -> None:
    units = {"a.py": {"t1": False}, "b.py": {f"t{i}": False for i in range(10)},
             "group:spark": {"t": False}, "c.py": {"t": False}}
    seconds = {"a.py": 3.0, "group:spark": 100.0, "c.py": 0.1}
    # b.py is not in the file: 10 tests count 5 s.
    assert list(longest_first(units, seconds)) == ["group:spark", "b.py", "a.py", "c.py"]
    assert list(longest_first(units, {})) == ["b.py", "a.py", "group:spark", "c.py"]


def test_a_missing_or_broken_seconds_file_orders_by_tests_alone(tmp_path: Path) -> None:
    assert read_seconds(tmp_path / "absent.json") == {}
    (tmp_path / "broken.json").write_text("{not json", encoding="utf-8")
    assert read_seconds(tmp_path / "broken.json") == {}
    (tmp_path / "list.json").write_text("[1, 2]", encoding="utf-8")
    assert read_seconds(tmp_path / "list.json") == {}
    (tmp_path / "mixed.json").write_text('{"a.py": 2, "b.py": "x"}', encoding="utf-8")
    assert read_seconds(tmp_path / "mixed.json") == {"a.py": 2.0}


def test_the_committed_seconds_file_is_read() -> None:
    assert {"group:spark", "group:dashboard"} <= set(read_seconds())
