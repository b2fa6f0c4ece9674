"""The spec loader is strict: read with the strict YAML loader, typed, and every error names
the file, the line and the field; a spec that the engines would compute differently (two scores
on one event type, a column made twice, a vocabulary entry twice) is refused."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from features.batch import to_table
from features.errors import ConfigError
from features.kernels import FeatureMatrix
from features.layout import layout
from features.spec import FeatureSpec, ScoreSpec, load_spec

TWO_SCORES = """\
scores:
  csat: {event_type: support_ticket, key: csat, low: 2}
  effort: {event_type: support_ticket, key: effort}
"""


def spec_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "features.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def refused(path: Path) -> str:
    with pytest.raises(ConfigError) as err:
        load_spec(path)
    return str(err.value)


def test_two_scores_on_one_event_type_are_refused_naming_both(tmp_path: Path) -> None:
    message = refused(spec_file(tmp_path, TWO_SCORES))
    assert message.startswith(f"{tmp_path / 'features.yaml'}: line 3: scores.effort: ")
    assert "'csat'" in message and "'effort'" in message and "support_ticket" in message


def test_a_spec_made_in_code_cannot_have_two_scores_on_one_event_type() -> None:
    spec = load_spec()
    effort = ScoreSpec("effort", "support_ticket", "effort")
    with pytest.raises(ConfigError, match=r"scores\.effort: .*'csat' and 'effort'"):
        replace(spec, scores=(*spec.scores, effort))


@pytest.mark.parametrize(("text", "field", "column"), [
    ("scores:\n  session_events: {event_type: review, key: rating}\n",
     "scores.session_events", "session_events_mean"),
    ("scores:\n  gap: {event_type: review, key: r}\n  attr_x: {event_type: survey_response, "
     "key: nps}\nattributes: [region, x_count]\n", "attributes[1]", "attr_x_count"),
])
def test_a_column_made_twice_is_refused_naming_the_entry(tmp_path: Path, text: str, field: str,
                                                          column: str) -> None:
    message = refused(spec_file(tmp_path, text))
    assert re.match(rf"{re.escape(str(tmp_path))}/features.yaml: line \d+: "
                    rf"{re.escape(field)}: makes the column '{column}'", message), message


def test_layout_refuses_a_clash_in_a_spec_made_in_code() -> None:
    spec = load_spec()
    clash = replace(spec, scores=(ScoreSpec("session_events", "review", "rating"),))
    with pytest.raises(ConfigError, match=r"scores\.session_events: makes the column "
                                          r"'session_events_mean'"):
        layout(clash)


def test_to_table_refuses_a_column_twice() -> None:
    matrix = FeatureMatrix(["c"], ("a", "a"), np.zeros((1, 2)), {})
    with pytest.raises(ValueError, match="named twice"):
        to_table(matrix, {})


@pytest.mark.parametrize(("text", "field", "words"), [
    ("channels: [email, email]\n", "channels[1]", "listed twice"),
    ("actions: [x, x]\n", "actions[1]", "listed twice"),
    ("attributes: [region, region]\n", "attributes[1]", "listed twice"),
    ("channels: [email, other]\n", "channels[1]", "reserved"),
    ("actions: [other]\n", "actions[0]", "reserved"),
    ("channels: [Email]\n", "channels[0]", "lower-case"),
    ("channels: [email, 5]\n", "channels[1]", "name"),
    ("scores:\n  csat: {event_type: support_ticket, key: csat, lowest: 2}\n",
     "scores.csat.lowest", "did you mean low"),
    ("scores:\n  csat: {event_type: support_ticket}\n", "scores.csat.key", "required"),
    ("scores:\n  csat: {event_type: support_tix, key: csat}\n", "scores.csat.event_type",
     "'support_tix'"),
    ("scores:\n  csat: {event_type: support_ticket, key: 5}\n", "scores.csat.key", "text"),
    ("scores:\n  csat: {event_type: support_ticket, key: csat, low: '2'}\n",
     "scores.csat.low", "number"),
    ("scores:\n  csat: {event_type: support_ticket, key: csat, low: .nan}\n",
     "scores.csat.low", "finite"),
    ("scores:\n  my score: {event_type: support_ticket, key: csat}\n", "scores.my score",
     "letters"),
    ("scores: [csat]\n", "scores", "map"),
    ("session_gap_minutes: .nan\n", "session_gap_minutes", "positive"),
    ("response_window_hours: .inf\n", "response_window_hours", "positive"),
    ("session_gap_minutes: '30m'\n", "session_gap_minutes", "number"),
    ("response_window_hours: 0\n", "response_window_hours", "positive"),
    ("windows_days: [7, 100000000]\n", "windows_days[1]", "36500"),
    ("windows_days: [7, 30.5]\n", "windows_days[1]", "whole"),
    ("windows_days: [7, 7]\n", "windows_days[1]", "increase"),
    ("windows_days: []\n", "windows_days", "non-empty"),
    ("\n\nwindow_days: [7]\n", "window_days", "did you mean windows_days"),
    ("windows_days: [7]\nchannels: [email]\nwindows_days: [30]\n", "windows_days",
     "written twice (first at line 1)"),
])
def test_every_error_names_file_line_and_field(tmp_path: Path, text: str, field: str,
                                               words: str) -> None:
    message = refused(spec_file(tmp_path, text))
    assert re.match(rf"{re.escape(str(tmp_path))}/features.yaml: line \d+: {re.escape(field)}: ",
                    message), message
    assert words in message


def test_the_line_is_the_field_s_own(tmp_path: Path) -> None:
    text = "windows_days: [7, 30]\nscores:\n  csat: {event_type: support_ticket, key: csat}\n" \
           "  rating:\n    event_type: review\n    key: rating\n    low: x\n"
    assert ": line 7: scores.rating.low: " in refused(spec_file(tmp_path, text))


def test_yaml_errors_name_the_line(tmp_path: Path) -> None:
    message = refused(spec_file(tmp_path, "windows_days: [7, 30\nchannels: [email]\n"))
    assert re.search(r"features.yaml: line 2, column \d+: not valid YAML", message), message


@pytest.mark.parametrize("key", ["a..b", ".a", "a.", "a[0]", "a*", " a", "a ", 'x"y', "x\\y",
                                 "a\tb"])
def test_score_keys_must_be_paths_of_property_names(tmp_path: Path, key: str) -> None:
    text = f"scores:\n  s: {{event_type: review, key: {json.dumps(key)}}}\n"
    message = refused(spec_file(tmp_path, text))
    assert "line 2: scores.s.key: " in message


def test_the_strict_loader_reads_yaml_1_2(tmp_path: Path) -> None:
    """`no`, `on` and `yes` are names, not booleans; 1e2 is a number."""
    text = "channels: [email, no, on]\nresponse_window_hours: 1e2\n" \
           "scores:\n  ok: {event_type: review, key: yes}\n"
    spec = load_spec(spec_file(tmp_path, text))
    assert spec.channels == ("email", "no", "on")
    assert spec.response_window_hours == 100.0
    assert spec.scores[0].key == "yes"


def test_keys_with_quotes_spaces_and_dots_load(tmp_path: Path) -> None:
    text = "scores:\n  q: {event_type: review, key: \"it's\"}\n" \
           "  spaced: {event_type: support_ticket, key: \"my key\"}\n" \
           "  nps: {event_type: survey_response, key: survey.nps}\n"
    spec = load_spec(spec_file(tmp_path, text))
    assert [s.path for s in spec.scores] == [("it's",), ("my key",), ("survey", "nps")]


def test_the_shipped_spec_is_a_feature_spec() -> None:
    spec = load_spec()
    assert isinstance(spec, FeatureSpec)
    assert spec.lines["scores.csat"] > spec.lines["scores"] > 1
