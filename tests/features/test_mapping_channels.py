"""A mapping's `channels:` renames source channels to the feature spec's (UCI's TrafficType
codes, Segment's utm sources), as `event_types:` renames event types; its mistakes are errors
at their file, line and field, before any row is read."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from features.errors import MappingError
from features.mapping import load_mapping_file, mapping_from_dict, parse_map_option

if TYPE_CHECKING:
    from tests.conftest import LoadFn

ROWS = ("user,when,what,src\n"
        "u1,2025-03-01T10:00:00Z,page_view,fb\n"
        "u1,2025-03-01T11:00:00Z,page_view, FB \n"
        "u2,2025-03-01T12:00:00Z,page_view,googlemax\n"
        "u2,2025-03-01T13:00:00Z,page_view,Attentive\n"
        "u3,2025-03-01T14:00:00Z,page_view,\n"
        "u3,2025-03-01T15:00:00Z,page_view,email\n")
MAPPING = ("columns: {customer_id: user, ts: when, event_type: what, channel: src}\n"
           "channels:\n"
           "  fb: social\n"
           "  GoogleMax: Search\n"
           "  7: referral\n")


def test_renamed_channels_are_stored_under_their_new_name(tmp_path: Path, load: LoadFn) -> None:
    source, mapping = tmp_path / "utm.csv", tmp_path / "m.yaml"
    source.write_text(ROWS, encoding="utf-8")
    mapping.write_text(MAPPING, encoding="utf-8")
    got = load(source, load_mapping_file(mapping))
    # Matched trimmed and in any case; a value without a rename keeps its own (lower-case);
    # a row without a channel gets the default, which is not renamed.
    assert got.column("channel") == ["social", "social", "search", "attentive", "unknown",
                                     "email"]


def test_numeric_keys_are_text(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(MAPPING, encoding="utf-8")
    assert load_mapping_file(path).channels == {"fb": "social", "googlemax": "search",
                                                "7": "referral"}


def test_map_option_keeps_the_files_renames(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(MAPPING, encoding="utf-8")
    assert parse_map_option("channel=medium", load_mapping_file(path)).channels["fb"] == "social"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("channels:\n  FB: social\n  fb: email\n",
         "line 3: channels.fb: renames 'fb' again ('FB' did already; channels are matched "
         "trimmed and in any case)"),
        ("channels: [fb]\n", "line 1: channels: must map each source value to a channel, "
         "got ['fb']"),
        ("channels:\n  fb: [social]\n", "line 2: channels.fb: must be text, got ['social']"),
        ("channels:\n  fb: ' '\n", "line 2: channels.fb: give the channel to store 'fb' as, "
         "not empty text"),
        ("channels:\n  fb: " + "x" * 129 + "\n", "line 2: channels.fb: 'xxxx"),
        ("chanels: {fb: social}\n", "unknown keys ['chanels']"),
    ],
)
def test_rename_mistakes_name_their_line(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(MappingError) as info:
        load_mapping_file(path)
    assert str(info.value).startswith(f"{path}: ")
    assert expected in str(info.value)


def test_without_renames_nothing_changes(tmp_path: Path, load: LoadFn) -> None:
    source = tmp_path / "utm.csv"
    source.write_text(ROWS, encoding="utf-8")
    mapping = mapping_from_dict({"columns": {"customer_id": "user", "ts": "when",
                                             "event_type": "what", "channel": "src"}}, "m")
    assert load(source, mapping).column("channel") == ["fb", "fb", "googlemax", "attentive",
                                                       "unknown", "email"]
