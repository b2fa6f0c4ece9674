"""Scenario files are read strictly: unknown keys (with a suggestion), types and ranges, keys
written twice and files not in UTF-8 are errors naming the file, the line and the field."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from features.errors import ConfigError
from features.simulator.params import late_shifts, load_params
from features.simulator.run import SimSpec, simulate


def scenario(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text("extends: default\n" + body, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # A misspelt key was ignored: the scenario ran as the default without a word.
        ("shift:\n  - {from: 2025-02-01, buy_factor: 0.7}\n",
         "line 2: shift: unknown key; did you mean shifts?"),
        ("contact_rate: 1.5\n", "line 2: contact_rate: must be a number from 0 to 1, got 1.5"),
        ("arrival_share: -2\n", "line 2: arrival_share: must be a number from 0 to 1, got -2"),
        ("effect_days: -3\n", "line 2: effect_days: must be from 0 to 36500, got -3"),
        ("effect_days: 2.5\n", "line 2: effect_days: must be a whole number, got 2.5"),
        # These were tracebacks (float('lots'), [1, 2].items(), date.fromisoformat).
        ("contact_rate: lots\n", "line 2: contact_rate: must be a number, got 'lots'"),
        ("engagement: [1, 2]\n", "line 2: engagement: must be a mapping, got [1, 2]"),
        ("start: yesterday\n", "line 2: start: must be a date (YYYY-MM-DD), got 'yesterday'"),
        ("start: '2025-02-30'\n", "line 2: start: '2025-02-30' is not a date on the calendar"),
        ("start: 2025-13-01\n", "line 2, column 8: not valid YAML: '2025-13-01' is not a valid "
         "date or time"),
        ("shifts:\n  - {from: 2025-02-30, buy_factor: 0.7}\n",
         "line 3, column 12: not valid YAML: '2025-02-30' is not a valid date or time"),
        # A key written twice: YAML kept the last one.
        ("contact_rate: 0.1\ncontact_rate: 0.2\n",
         "line 3: contact_rate: written twice (first at line 2)"),
        ("contact_lapsed: no\n", "line 2: contact_lapsed: must be true or false, got 'no'"),
        ("engagement: {floor: 0.5, cap: 0.4, session_bump: 0, purchase_bump: 0, "
         "bad_experience: 1}\n", "line 2: engagement.cap: must be at least engagement.floor "
         "(0.5), got 0.4"),
        ("churn: {bad_experience: 1.5}\n", "line 2: churn.inactivity_per_30d: is required"),
        ("acquisition_channels: [search, tv]\n",
         "line 2: acquisition_channels[1]: 'tv' is not one of session_channels"),
    ],
)
def test_a_bad_top_level_value_names_file_line_and_field(
        tmp_path: Path, body: str, expected: str) -> None:
    path = scenario(tmp_path, body)
    with pytest.raises(ConfigError) as info:
        load_params(path)
    assert str(info.value).startswith(f"{path}: {expected}")


TYPE = """types:
  only:
    share: 1
    engagement: 0.8
    decay: 0.97
    session_rate: 0.16
    ad_click: 0.3
    products: 2.5
    cart: 0.3
    checkout: 0.55
    buy: {buy}
    basket: 32.0
    login: 0.5
    ticket: 0.04
    bad_csat: 0.25
    review: 0.02
    referral: 0.01
    survey: 0.03
    churn: 0.004
    email_open: 0.35
    email_click: 0.4
    region: [1, 0, 0, 0]
    device: [0.7, 0.2, 0.1]
    acquisition: {acquisition}
    channels: [0.2, 0.25, 0.3, 0.1, 0.05, 0.05, 0.05]
actions:
  mail:
    channel: email
    stages: [awareness]
    discount: {discount}
"""


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"buy": "1.5"}, "line 12: types.only.buy: must be a number from 0 to 1, got 1.5"),
        ({"acquisition": "[1, 0, 0, 0, 0, -1]"},
         "line 25: types.only.acquisition[5]: must be a number of at least 0, got -1"),
        ({"acquisition": "[0, 0, 0, 0, 0, 0]"},
         "line 25: types.only.acquisition: shares are all 0: at least one must be above 0"),
        ({"discount": "1.2"}, "line 31: actions.mail.discount: must be a number from 0 to 1"),
    ],
)
def test_a_bad_type_or_action_value_names_its_line(
        tmp_path: Path, values: dict[str, str], expected: str) -> None:
    fields = {"buy": "0.35", "acquisition": "[1, 0, 0, 0, 0, 0]", "discount": "0.1"} | values
    path = scenario(tmp_path, TYPE.format(**fields))
    with pytest.raises(ConfigError) as info:
        load_params(path)
    assert str(info.value).startswith(f"{path}: {expected}")


def test_a_scenario_of_its_own_types_and_actions_compiles(tmp_path: Path) -> None:
    p = load_params(scenario(tmp_path, TYPE.format(buy=0.35, acquisition="[1, 0, 0, 0, 0, 0]",
                                                   discount=0.1)))
    assert p.types == ("only",) and p.actions == ("mail",)


def test_a_problem_in_a_key_taken_from_the_default_says_so(tmp_path: Path) -> None:
    # The scenario's session_channels do not fit the default's types: no line of its own.
    path = scenario(tmp_path, "session_channels: [search, social, email, display, direct, "
                              "referral]\n")
    with pytest.raises(ConfigError) as info:
        load_params(path)
    assert str(info.value).startswith(
        f"{path}: types.deal_seeker.channels (from the default): must list 6 shares, one per "
        "entry of session_channels; got 7 entries")


def test_a_parameter_file_not_in_utf8_is_an_error_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "scenario.yaml"
    path.write_bytes(b"extends: default\n# Sc\xe9nario\ncontact_rate: 0.1\n")
    with pytest.raises(ConfigError) as info:
        load_params(path)
    assert str(info.value) == f"{path}: line 2: not UTF-8 text (byte 0xe9); save the file as UTF-8"


def test_an_empty_file_says_what_it_should_hold(tmp_path: Path) -> None:
    path = tmp_path / "scenario.yaml"
    path.write_text("# nothing yet\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="the file is empty; a scenario holds `extends: "):
        load_params(path)


def test_a_shift_after_the_simulated_period_is_a_warning(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = scenario(tmp_path, "shifts:\n  - {from: 2025-01-05, buy_factor: 0.7}\n"
                              "  - {from: 2025-03-01, buy_factor: 0.5}\n")
    expected = (f"warning: {path}: line 4: shifts[1].from: 2025-03-01 is after the simulated "
                "period (2025-01-01 to 2025-01-10): the shift changes none of its events")
    assert late_shifts(load_params(path), 10) == [expected]
    assert late_shifts(load_params(path), 60) == []
    with caplog.at_level(logging.WARNING, "journey.simulator"):
        simulate(SimSpec(20, 10, 1, str(path)), tmp_path / "out", workers=1)
    assert [r.getMessage() for r in caplog.records] == [expected]
