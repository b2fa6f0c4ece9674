from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from features.errors import ConfigError
from features.simulator.params import STAGES, load_params
from features.simulator.run import params_text
from features.taxonomy import load_taxonomy


def test_default_parameters_compile() -> None:
    p = load_params()
    assert p.types == ("deal_seeker", "loyalist", "browser", "at_risk")
    assert abs(p.t["share"].sum() - 1) < 1e-9
    assert p.effect.shape == (len(p.actions), len(p.types), 2, 4)
    assert p.tv["channels"].shape == (len(p.types), len(p.session_channels))
    # The simulator's stages are the default taxonomy's.
    assert load_taxonomy().stages == STAGES


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda r: r["actions"]["retargeting_ad"].update(stages=["nirvana"]),
            "actions.retargeting_ad.stages[0]: unknown stage 'nirvana'",
        ),
        (
            lambda r: r["types"]["loyalist"].update(region=[1.0]),
            "types.loyalist.region: must list 4 shares, one per entry of regions; got 1 "
            "entries",
        ),
        (
            lambda r: r["actions"]["loyalty_offer"]["effects"].update(robot={"post": {}}),
            "actions.loyalty_offer.effects.robot: unknown customer type 'robot'",
        ),
        (
            lambda r: r["actions"]["loyalty_offer"]["effects"]["loyalist"].update(post={"joy": 2}),
            "effects.loyalist.post.joy: unknown key; allowed: session, buy, churn, advocacy",
        ),
        (lambda r: r["types"]["browser"].pop("buy"), "types.browser.buy: is required"),
        (lambda r: r.update(contact_lapsed="yes"),
         "contact_lapsed: must be true or false, got 'yes'"),
    ],
)
def test_invalid_parameters_name_file_and_key(
        tmp_path: Path, edit: Callable[[dict[str, Any]], object], message: str) -> None:
    raw = yaml.safe_load(params_text(None))
    edit(raw)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError) as info:
        load_params(path)
    assert str(path) in str(info.value) and message in str(info.value)


def test_missing_parameter_file() -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_params("/nonexistent/params.yaml")
