"""After a load: the channels of its new events that the feature spec does not list, and its
events after now.

Features count such a channel as ``other`` (the spec's vocabulary fixes the feature
columns), so a log whose channels are spelled its own way (UCI's TrafficType codes, Segment's
utm sources ``fb`` or ``googlemax``) would put every event in one bucket without a word. The
load says which values, how many events, and how to map them.

The counts come from one GROUP BY over the integer channel codes of the rows the load
appended (they follow the last rowid stored before it): no pass over the source again.
"""

from __future__ import annotations

import textwrap
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from features.errors import ConfigError
from features.spec import OTHER, load_spec
from features.store import EventStore
from features.taxonomy import Taxonomy

NAMED = 5  # channels named with their counts; the rest are counted
WIDTH = 96


def last_rowid(es: EventStore) -> int:
    """The rowid of the newest stored event (-1: none); a load appends after it."""
    row = es.con.execute("SELECT coalesce(max(rowid), -1) FROM events").fetchone()
    return int(row[0]) if row else -1


def new_channels(es: EventStore, after: int) -> Counter[str]:
    """Events per channel among those stored after rowid ``after``."""
    rows = es.con.execute("SELECT channel_code, count(*) FROM events WHERE rowid > ? "
                          "GROUP BY channel_code", [after]).fetchall()
    names = {code: name for name, code in es.vocab("channel").items()}
    return Counter({names[int(code)]: int(n) for code, n in rows})


def unknown_channel_lines(counts: Counter[str], listed: tuple[str, ...], where: str) -> list[str]:
    """The note on channels the spec does not list (none: no lines). ``where``: the spec's
    file and line of its channels."""
    unknown = Counter({name: n for name, n in counts.items()
                       if name not in listed and name != OTHER})
    if not unknown:
        return []
    top = unknown.most_common(NAMED)
    more = len(unknown) - len(top)
    names = ", ".join(f"{name!r} ({n:,})" for name, n in top) + (
        f" and {more:,} more" if more > 0 else "")
    events = sum(unknown.values())
    # The user's own value in the example, quoted: YAML would read `01:` as the number 1.
    first = top[0][0]
    example = (f"'{first}': {listed[0]}" if listed and first.isprintable() and "'" not in first
               else "fb: social")
    note = (f"note: {events:,} of {sum(counts.values()):,} new events have channels the "
            f"feature spec does not list, which features count as {OTHER!r}: {names}")
    advice = (f"to keep them apart: add them to the spec's channels ({where}; "
              "JOURNEY_FEATURE_SPEC), or rename them to channels it lists in a mapping file's "
              f"`channels:` block (`{example}`) and load into a new store (--store): in "
              "this one a row loaded again under another channel is another event, stored "
              "twice")
    return [*textwrap.wrap(note, WIDTH, subsequent_indent="    "),
            *textwrap.wrap(advice, WIDTH, initial_indent="  ", subsequent_indent="    ")]


def channel_note(es: EventStore, after: int, spec_path: Path | None,
                 taxonomy: Taxonomy) -> list[str]:
    """The lines `journey ingest` prints about the new events' channels. A spec that cannot
    be read is said in one line: the load has been stored, and it does not need the spec."""
    try:
        spec = load_spec(spec_path, taxonomy)
    except ConfigError as exc:
        return [f"note: channels not checked against the feature spec: {exc}"]
    line = spec.lines.get("channels")
    where = f"{spec.source}, line {line}" if line else spec.source
    return unknown_channel_lines(new_channels(es, after), spec.channels, where)


def future_note(es: EventStore, after: int, now: datetime | None = None) -> list[str]:
    """A warning when the load's new events (after rowid ``after``) include times after now:
    a simulation or replay, or a source whose clock or time zone is off. ``POST /v1/events``
    refuses those; a file is loaded as it is, and its future events count once the clock
    reaches them (or under a clock pinned by JOURNEY_AS_OF)."""
    now = now or datetime.now(UTC)
    # Times as numbers both ways: a TIMESTAMPTZ read into Python needs pytz, which we lack.
    row = es.con.execute("SELECT count(*), epoch_us(max(ts)) FROM events WHERE rowid > ? "
                         "AND ts > to_timestamp(?)", [after, now.timestamp()]).fetchone()
    if not row or not row[0]:
        return []
    latest = datetime.fromtimestamp(row[1] / 1e6, UTC).isoformat(timespec="seconds")
    latest = latest.replace("+00:00", "Z")
    return [f"warning: {int(row[0]):,} events of this load are after now (the latest "
            f"{latest}): predictions and features count them once the clock reaches them "
            "(or under a JOURNEY_AS_OF pinned later); is the source's clock or time zone off?"]
