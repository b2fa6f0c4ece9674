"""Checks of a request's events that need the service (its taxonomy and clock), after the
schema's own: every bad row of a batch is named in one answer, not one per round trip."""

from __future__ import annotations

import json
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ValidationError

from features.store import AppendResult
from features.taxonomy import Taxonomy
from serving.errors import BadRequestError
from serving.utc import iso_z

MAX_LISTED = 100  # problems and duplicate ids named in one answer; the counts are exact


def check_events(events: list[dict[str, Any]], taxonomy: Taxonomy, latest: datetime | None,
                 where: str = "events") -> None:
    """Raises one BadRequestError listing every event of an unknown type, dated after
    ``latest`` (when given), or re-using an earlier event's id with other content."""
    problems = _problems(list(enumerate(events)), taxonomy, latest, where)
    if problems:
        raise _listing(problems)


def schema_passed_problems(events: object, model: type[BaseModel], taxonomy: Taxonomy,
                           latest: datetime | None, where: str = "events"
                           ) -> list[dict[str, str]]:
    """``check_events``' problems with the events of a request body that its schema refused
    for others: those of ``events`` (the body's raw list) that ``model`` accepts are checked
    as the route would, so one answer names every bad event, not the schema's now and the
    service's after the sender fixed those."""
    if not isinstance(events, list):
        return []
    passed: list[tuple[int, dict[str, Any]]] = []
    for i, raw in enumerate(events):
        try:
            passed.append((i, model.model_validate(raw).model_dump()))
        except ValidationError:
            continue
    return [{"field": field, "message": problem}
            for field, problem in _problems(passed, taxonomy, latest, where)[:MAX_LISTED]]


def _problems(events: list[tuple[int, dict[str, Any]]], taxonomy: Taxonomy,
              latest: datetime | None, where: str) -> list[tuple[str, str]]:
    """(field, problem) of each (index, event) of a request that the service refuses."""
    problems: list[tuple[str, str]] = []
    known = None if taxonomy.unknown_event_types == "keep" else taxonomy.event_stage
    first_seen: dict[str, dict[str, Any]] = {}
    first_index: dict[str, int] = {}
    for i, e in events:
        if known is not None and e["event_type"] not in known:
            problems.append((f"{where}[{i}].event_type",
                             f"event type {e['event_type']!r} is not in the stage taxonomy "
                             f"({taxonomy.source}); known: {', '.join(sorted(known))}"))
        if latest is not None and e["ts"] > latest:
            problems.append((f"{where}[{i}].ts",
                             f"ts {iso_z(e['ts'])} is in the future (after "
                             f"{iso_z(latest)}); check the sender's clock and time zone"))
        event_id = e.get("event_id")
        if event_id is not None:
            first = first_seen.setdefault(event_id, e)
            j = first_index.setdefault(event_id, i)
            if j != i and first != e:
                problems.append((f"{where}[{i}].event_id",
                                 f"event_id {event_id!r} is also {where}[{j}]'s, with other "
                                 "content: one of them would be dropped as a re-send"))
    return problems


def _listing(problems: list[tuple[str, str]]) -> BadRequestError:
    field, first = problems[0]
    more = len(problems) - 1
    message = f"{field}: {first}" + (f" (and {more:,} more problems, in errors)" if more else "")
    errors = [{"field": f, "message": m} for f, m in problems[:MAX_LISTED]]
    return BadRequestError(message, field, errors)


def stored_form(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Events as the store holds them: properties as compact JSON text."""
    return [{**e, "properties": None if e.get("properties") is None
             else json.dumps(e["properties"], separators=(",", ":"))} for e in events]


def conflict_warnings(conflicts: list[tuple[str, str]]) -> list[str]:
    return [f"event_id {event_id!r} is already stored for a different event (differs in "
            f"{fields}): this one was not stored; send a changed event with a new event_id"
            for event_id, fields in conflicts]


def duplicate_ids(events: list[dict[str, Any]], result: AppendResult) -> list[str]:
    """The request's event ids the store already held (first MAX_LISTED, in request order)."""
    if result.duplicates == 0 or result.rows is None:
        return []
    unclaimed = set(result.rows["event_id"].to_pylist())
    out: dict[str, None] = {}  # an id sent twice in the request is a duplicate once inserted
    for e in events:
        event_id = e["event_id"]
        if event_id in unclaimed:
            unclaimed.discard(event_id)
        elif event_id not in out:
            out[event_id] = None
            if len(out) == MAX_LISTED:
                break
    return list(out)


def checked_as_of(requested: datetime | None, clock: datetime, tolerance_seconds: float,
                  pinned: bool) -> datetime:
    """The time to score as of: ``requested``, refused when after the service's clock by more
    than the tolerance /events allows its timestamps (the same clock skew). Stored histories
    end at the clock: a later as_of counts every customer as inactive ever since (as_of
    9999-12-31 answered churn 0.99). In UTC, either way: a clock pinned with an offset
    (JOURNEY_AS_OF=...-05:00) is the same instant, and answers, snapshots and dates drawn
    from it are UTC's."""
    if requested is None:
        return clock.astimezone(UTC)
    when = requested.astimezone(UTC)
    if when > clock + timedelta(seconds=tolerance_seconds):
        whose = "pinned by JOURNEY_AS_OF" if pinned else "now"
        raise BadRequestError(f"as_of {iso_z(when)} is after the service's clock "
                              f"({iso_z(clock)}, {whose}); ask as of a time up to it",
                              "as_of")
    return when


def after_clock(events: list[dict[str, Any]], as_of: datetime | None) -> list[str]:
    """A warning when the service's clock is pinned (JOURNEY_AS_OF) at or before some events:
    they are stored, but predictions as of that clock do not count them. At counts too:
    features use the events strictly before as_of, so an event at the clock's very instant
    is left out (a customer with only that one is "no events before" it)."""
    if as_of is None:
        return []
    later = sum(1 for e in events if e["ts"] >= as_of)
    if not later:
        return []
    return [f"{later:,} of the events are at or after the service's clock (JOURNEY_AS_OF="
            f"{iso_z(as_of)}): stored, but predictions as of that time do not count them "
            "until the clock moves past them"]


CONTACT_TYPE = "action_sent"  # the event type a delivered action is reported back as


def contact_warnings(events: list[dict[str, Any]], known: Collection[str],
                     where: str = "events") -> list[str]:
    """Warnings for contacts the contact policy cannot tie to a catalog action (``known``: the
    actions both the catalog and the feature spec name). The data contract makes ``action``
    optional, so they are stored; but an ``action_sent`` without one is no contact at all, and
    an unknown action is recorded as "other": it counts toward the global and channel caps,
    never toward any action's cool-down, caps or exclusions."""
    missing: list[int] = []
    unknown: dict[str, list[int]] = {}
    for i, e in enumerate(events):
        action = e.get("action")
        if action and action not in known:
            unknown.setdefault(action, []).append(i)
        elif not action and e["event_type"] == CONTACT_TYPE:
            missing.append(i)
    out = []
    if missing:
        out.append(f"{_indexes(where, missing, 'action')}: {CONTACT_TYPE} without an action: "
                   "stored, but it counts toward no contact cap or cool-down; send the "
                   "recommended action's id (its report_as event)")
    for action, rows in unknown.items():
        out.append(f"{_indexes(where, rows, 'action')}: action {action!r} is not in the action "
                   f"catalog ({', '.join(sorted(known))}): stored, but it will not count for any "
                   "action's cool-down, caps or exclusions, only toward the global and "
                   "channel caps")
    return out


def _indexes(where: str, rows: list[int], field: str) -> str:
    shown = ", ".join(f"{where}[{i}].{field}" for i in rows[:5])
    return shown + (f" (and {len(rows) - 5:,} more)" if len(rows) > 5 else "")
