"""After a load, the channels of its new events that the feature spec does not list (features
count them as `other`) are named with their counts, and how to map them."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from features.ingest_channels import channel_note, last_rowid, new_channels, unknown_channel_lines
from features.mapping import identity_mapping
from features.spec import load_spec
from features.store import EventStore
from features.taxonomy import Taxonomy

HEADER = "customer_id,ts,event_type,channel\n"
LISTED = ("search", "social", "email")


def _rows(channels: list[str], day: int = 1) -> str:
    return HEADER + "".join(f"c{i},2025-03-{day:02d}T10:00:{i:02d}Z,page_view,{ch}\n"
                            for i, ch in enumerate(channels))


def test_only_the_loads_new_events_are_counted(tmp_path: Path, taxonomy: Taxonomy) -> None:
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    first.write_text(_rows(["fb", "fb", "email"]), encoding="utf-8")
    second.write_text(_rows(["Attentive", "email", "fb"], day=2), encoding="utf-8")
    with EventStore(tmp_path / "s.duckdb") as es:
        assert last_rowid(es) == -1
        es.ingest(first, identity_mapping(), taxonomy)
        after = last_rowid(es)
        assert after == 2
        es.ingest(second, identity_mapping(), taxonomy)
        assert new_channels(es, after) == Counter({"attentive": 1, "email": 1, "fb": 1})
        es.ingest(second, identity_mapping(), taxonomy)  # a re-load stores nothing new
        assert new_channels(es, last_rowid(es)) == Counter()


def test_the_note_names_the_top_values_then_counts_the_rest() -> None:
    counts = Counter({f"t{i}": 100 - i for i in range(1, 21)} | {"search": 500, "other": 7})
    lines = unknown_channel_lines(counts, LISTED, "spec.yaml, line 7")
    text = " ".join(line.strip() for line in lines)
    assert text.startswith(f"note: {sum(100 - i for i in range(1, 21)):,} of 2,297 new events "
                           "have channels the feature spec does not list, which features count "
                           "as 'other': 't1' (99), 't2' (98), 't3' (97), 't4' (96), 't5' (95) "
                           "and 15 more")
    assert "add them to the spec's channels (spec.yaml, line 7; JOURNEY_FEATURE_SPEC)" in text
    assert "a mapping file's `channels:` block (`'t1': search`)" in text
    assert all(len(line) <= 96 for line in lines)


def test_nothing_to_say_when_every_channel_is_listed() -> None:
    assert unknown_channel_lines(Counter({"search": 3, "other": 2}), LISTED, "s") == []


def test_the_shipped_spec_knows_the_default_channel(tmp_path: Path, taxonomy: Taxonomy) -> None:
    source = tmp_path / "a.csv"
    source.write_text(_rows(["", "googlemax", "Email"]), encoding="utf-8")
    with EventStore(tmp_path / "s.duckdb") as es:
        es.ingest(source, identity_mapping(), taxonomy)
        lines = channel_note(es, -1, None, taxonomy)
    assert "unknown" in load_spec().channels
    assert " ".join(line.strip() for line in lines).startswith(
        "note: 1 of 3 new events have channels the feature spec does not list, which features "
        "count as 'other': 'googlemax' (1) to keep them apart: ")


def test_a_spec_that_cannot_be_read_is_said_not_raised(tmp_path: Path,
                                                       taxonomy: Taxonomy) -> None:
    with EventStore(tmp_path / "s.duckdb") as es:
        lines = channel_note(es, -1, tmp_path / "missing.yaml", taxonomy)
    assert lines == [f"note: channels not checked against the feature spec: feature spec not "
                     f"found: {tmp_path / 'missing.yaml'}"]
