"""Drift scenarios: ``shifts`` change behaviour from a date on, and nothing else."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from features.errors import ConfigError
from features.simulator.oracle import oracle_for
from features.simulator.params import load_params
from features.simulator.run import SimSpec, simulate

SHIFT_FROM = "2025-03-01"  # day 59
SHIFT = {
    "from": SHIFT_FROM,
    "session_channels": [0.05, 0.5, 0.05, 0.1, 0.1, 0.15, 0.05],
    "price_factor": 1.3,
    "buy_factor": 0.7,
    "churn_factor": 2.0,
}


def _scenario(tmp_path: Path, shifts: list[dict[str, object]]) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump({"extends": "default", "shifts": shifts}))
    return path


def _events(out: Path) -> pd.DataFrame:
    frame: pd.DataFrame = pq.read_table(out / "events").to_pandas()
    frame["channel"] = frame["channel"].astype(object)
    frame["event_type"] = frame["event_type"].astype(object)
    return frame


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("shift")
    base = tmp / "base"
    simulate(SimSpec(1_500, 120, 3), base, workers=1)
    shifted = tmp / "shifted"
    simulate(SimSpec(1_500, 120, 3, str(_scenario(tmp, [SHIFT]))), shifted, workers=1)
    return base, shifted


def test_extends_default_merges_the_shifts_onto_the_default(tmp_path: Path) -> None:
    p = load_params(_scenario(tmp_path, [SHIFT]))
    assert p.types == load_params().types
    (shift,) = p.shifts
    assert shift.from_day == 59 and shift.price == 1.3 and shift.churn == 2.0
    assert p.shift_on(58).price == 1.0 and p.shift_on(58).channels is None
    assert p.shift_on(59) is shift and p.shift_on(500) is shift


def test_later_shifts_replace_earlier_ones(tmp_path: Path) -> None:
    p = load_params(_scenario(tmp_path, [SHIFT, {"from": "2025-04-01"}]))
    assert p.shift_on(60).buy == 0.7
    assert p.shift_on(90).buy == 1.0 and p.shift_on(90).channels is None


def test_events_before_the_shift_are_untouched(pair: tuple[Path, Path]) -> None:
    base, shifted = (_events(p) for p in pair)
    cut = pd.Timestamp(SHIFT_FROM, tz="UTC")
    before_a = base[base.ts < cut].sort_values("event_id").reset_index(drop=True)
    before_b = shifted[shifted.ts < cut].sort_values("event_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(before_a, before_b)


def test_after_the_shift_channels_prices_and_purchases_move(pair: tuple[Path, Path]) -> None:
    base, shifted = (_events(p) for p in pair)
    cut = pd.Timestamp(SHIFT_FROM, tz="UTC")

    def after(frame: pd.DataFrame) -> pd.DataFrame:
        return frame[frame.ts >= cut]

    def social(frame: pd.DataFrame) -> float:
        sessions = after(frame)[after(frame).event_type.isin(["ad_impression", "page_view"])]
        return float((sessions.channel == "social").mean())

    def buys(frame: pd.DataFrame) -> pd.Series:
        return after(frame).loc[after(frame).event_type == "purchase", "value"]

    assert social(shifted) > social(base) + 0.15
    assert buys(shifted).mean() > 1.15 * buys(base).mean()
    assert len(buys(shifted)) < 0.8 * len(buys(base))


def test_the_oracle_applies_the_shift(pair: tuple[Path, Path]) -> None:
    base, shifted = (oracle_for(p, date(2025, 3, 1), 30, replicas=10) for p in pair)
    assert shifted.p_churned.mean() > base.p_churned.mean() + 0.02
    assert shifted.p_convert.mean() < base.p_convert.mean()
    # The state at the cutoff is the same: the shift starts on the cutoff day.
    assert (base.stage == shifted.stage).all()


def test_a_merged_scenario_is_recorded_whole(pair: tuple[Path, Path]) -> None:
    recorded = yaml.safe_load((pair[1] / "params.yaml").read_text())
    assert "extends" not in recorded and "types" in recorded
    assert recorded["shifts"][0]["price_factor"] == 1.3


@pytest.mark.parametrize(
    ("shifts", "message"),
    [
        ({"from": SHIFT_FROM}, "shifts: must be a list of shifts"),
        ([{"price_factor": 2}], "shifts[0].from: is required"),
        ([{"from": "soon"}], "shifts[0].from: must be a date (YYYY-MM-DD), got 'soon'"),
        ([{"from": "2024-12-31"}], "shifts[0].from: 2024-12-31 is before start (2025-01-01)"),
        ([SHIFT, {"from": "2025-02-01"}],
         "shifts[1].from: 2025-02-01 must be after the previous shift's from"),
        ([{"from": SHIFT_FROM, "price": 2}],
         "shifts[0].price: unknown key; did you mean price_factor?"),
        ([{"from": SHIFT_FROM, "buy_factor": 0}],
         "shifts[0].buy_factor: must be a number above 0, got 0"),
        ([{"from": SHIFT_FROM, "churn_factor": "x"}],
         "shifts[0].churn_factor: must be a number, got 'x'"),
        ([{"from": SHIFT_FROM, "session_channels": [1.0]}],
         "shifts[0].session_channels: must list 7 shares"),
        ([{"from": SHIFT_FROM, "session_channels": [0.5] * 7}],
         "shifts[0].session_channels: shares must sum to 1, got 3.5"),
    ],
)
def test_invalid_shifts_name_file_and_key(tmp_path: Path, shifts: object, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"extends": "default", "shifts": shifts}))
    with pytest.raises(ConfigError) as info:
        load_params(path)
    assert str(path) in str(info.value) and message in str(info.value)


def test_extends_names_a_known_base(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("extends: nightly\n")
    with pytest.raises(ConfigError, match="line 1: extends: must be one of"):
        load_params(path)


def test_no_shift_leaves_factors_neutral() -> None:
    neutral = load_params().shift_on(0)
    assert (neutral.price, neutral.buy, neutral.churn, neutral.channels) == (1.0, 1.0, 1.0, None)
