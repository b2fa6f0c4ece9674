"""The trigger routes (marketer role): firings with their delivery status, the rules, and a dry
run of one rule for one customer."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import PurePath
from typing import Annotated, Any, Literal

import anyio
from fastapi import Query
from pydantic import BaseModel, Field

from features.errors import ConfigError
from serving.deps import Watcher, not_found
from serving.errors import BadRequestError, NotFoundError, NotReadyError, UnknownCustomerError
from serving.route_table import RouteTable
from serving.schema_fields import AsOfTime, CleanId
from serving.state import ServiceState
from serving.trigger_dry_run import dry_run
from serving.trigger_rules import iso_us
from serving.trigger_states import StateReader


class DeliveryOut(BaseModel):
    endpoint: str
    status: Literal["pending", "retrying", "delivered", "dead"]
    attempts: int
    http_status: int | None
    last_error: str | None
    next_attempt_at: str | None = Field(description="When a retrying delivery tries again.")
    updated_at: str | None


class FiringOut(BaseModel):
    firing_id: str
    rule: str
    customer_id: str
    as_of: str = Field(description="The evaluation time; cool-downs count from it.")
    fired_at: str = Field(description="Wall-clock time of the firing.")
    source: Literal["events", "scoring run"]
    status: Literal["pending", "retrying", "delivered", "dead", "held"] = Field(
        description="dead: a delivery gave up after its last attempt (the dead letter); "
        "held: not sent (``held_reason``).")
    held_reason: Literal["rate_cap"] | None = Field(
        description="rate_cap: the rule had sent its max_per_minute firings in the last "
        "minute.")
    details: dict[str, Any] = Field(description="As in the webhook body.")
    deliveries: list[DeliveryOut]


class FiringsOut(BaseModel):
    firings: list[FiringOut]
    matched: int = Field(description="Firings that match the filters, on every page.")
    next_before: int | None = Field(description="Pass as ``before`` for the next (older) page; "
                                    "null on the last page.")
    counts: dict[str, int] = Field(description="Every firing stored, per status.")


class RuleOut(BaseModel):
    id: str
    kind: str
    description: str
    params: dict[str, Any]
    endpoints: list[str]
    cooldown_seconds: float
    max_per_minute: int = Field(description="Firings sent a minute at most; more are held.")
    enabled: bool


class RulesOut(BaseModel):
    source: str = Field(description="The rules file's name.")
    rules: list[RuleOut]
    status: dict[str, Any] = Field(description="Evaluations queued and dropped, deliveries "
                                   "in flight.")


class StateOut(BaseModel):
    as_of: str
    stage: str | None = Field(description="null: no customer event yet.")
    churn: float | None = Field(description="null: no churn model served.")
    last_activity: str | None = Field(description="The last customer event (contacts are not "
                                      "activity).")
    blocked: dict[str, str | None] = Field(description="Per action a became_eligible rule "
                                           "watches: why it may not be sent now (null: it may).")


class LastFiringOut(BaseModel):
    firing_id: str
    at_us: int = Field(description="The evaluation time, in microseconds since 1970.")
    fired_at: str
    status: Literal["pending", "retrying", "delivered", "dead"]
    source: Literal["events", "scoring run"]


class DryRunOut(BaseModel):
    """In ``DryRun.to_dict``'s order and types: the answer is that dict, now with a schema."""

    rule: str
    kind: str
    enabled: bool
    customer_id: str
    as_of: str
    compared_with: str = Field(description="What \"before\" is, in words.")
    before: StateOut | None
    now: StateOut | None = Field(description="null: no events before as_of.")
    condition_met: bool
    reason: str
    details: dict[str, Any] = Field(description="The values compared, as in the webhook body.")
    last_firing: LastFiringOut | None
    cooldown_until: str | None = Field(description="Set while a firing holds the rule back.")
    would_fire: bool
    evaluated_on: list[Literal["events", "scoring runs"]]


def firing_out(row: dict[str, Any]) -> FiringOut:
    body = json.loads(row["body"])
    return FiringOut(firing_id=row["firing_id"], rule=row["rule"],
                     customer_id=row["customer_id"], as_of=iso_us(row["at_us"]),
                     fired_at=row["fired_at"], source=row["source"], status=row["status"],
                     held_reason=row["held_reason"], details=body["details"],
                     deliveries=[DeliveryOut(**d) for d in row["deliveries"]])


def _dry_run(state: ServiceState, rule_id: str, customer_id: str,
             as_of: datetime | None, since: datetime | None) -> DryRunOut:
    history = state.history
    if history is None:
        raise NotReadyError(state.readiness()["message"] or "not ready")
    # As /predict: histories end at the service's clock, so a later as_of would count the
    # customer inactive ever since (9999-12-31 fired an inactivity rule). ``since`` must be
    # before it, so it is bounded too.
    when = state.asked(as_of)
    if since is not None and since >= when:
        raise BadRequestError("since must be before as_of", "since")
    triggers = state.triggers
    try:
        rule = triggers.config.rule(rule_id)
    except ConfigError as exc:
        raise NotFoundError(f"no trigger rule {rule_id!r}", "rule") from exc
    if customer_id not in history:
        raise UnknownCustomerError(f"no events for customer {customer_id!r}", "customer_id")
    r = triggers.reader  # a reader for this rule alone: it may watch what no enabled rule does
    reader = StateReader(r.spec, r.predictor, r.catalog, [rule])
    return DryRunOut.model_validate(dry_run(
        rule, customer_id, lambda t: history.arrays(customer_id, t),
        history.attributes.of(customer_id), reader, state.holder.current, triggers.firings,
        when, since, state.settings.scores_path).to_dict())


def file_name(source: str) -> str:
    """The rules file's name without its folders (a server path is the server's business);
    the packaged default's ``<default triggers.yaml>`` as it is."""
    return source if source.startswith("<") else PurePath(source).name


api = RouteTable()
MAX_INT64 = 2**63 - 1


@api.get("/triggers/firings", tags=["triggers"])
async def firings(
    state: Watcher, rule: str | None = None, customer_id: CleanId | None = None,
    status: Literal["pending", "retrying", "delivered", "dead", "held"] | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    # Bounded to SQLite's integers: a larger one overflowed in the driver (a 500).
    before: Annotated[int | None, Query(ge=1, le=MAX_INT64,
                                        description="The previous page's next_before.")] = None,
    firing_id: Annotated[CleanId | None, Query(
        description="The one firing a log line or a receiver's X-Journey-Firing names.")] = None,
) -> FiringsOut:
    """Trigger firings, newest first, with each webhook delivery's status (``dead``: the
    last attempt failed; the dead letter keeps the last error; ``held``: over the rule's
    ``max_per_minute``, not sent). Pages by ``before``, so a firing stored meanwhile neither
    repeats nor hides one."""
    store = state.triggers.firings
    page = await anyio.to_thread.run_sync(store.firings, rule, customer_id, status, limit,
                                          before, firing_id)
    loaded = [r.id for r in state.triggers.config.rules]
    if rule is not None and page.matched == 0 and rule not in loaded:
        # A misspelt rule would read as "it never fired". A rule dropped from the settings
        # keeps its stored firings, so only a name with neither is refused.
        raise BadRequestError(f"rule {rule!r} is not a loaded rule ({', '.join(loaded) or 'none'})"
                              " and has no stored firings", "rule")
    return FiringsOut(firings=[firing_out(r) for r in page.rows], matched=page.matched,
                      next_before=page.rows[-1]["seq"] if page.more else None,
                      counts=store.counts())


@api.get("/triggers/rules", tags=["triggers"])
async def rules(state: Watcher) -> RulesOut:
    """The trigger rules loaded (endpoint names only: addresses and secrets stay
    server-side)."""
    t = state.triggers
    return RulesOut(source=file_name(t.config.source), status=t.status(), rules=[
        RuleOut(id=r.id, kind=r.kind, description=r.description, params=dict(r.params),
                endpoints=list(r.endpoints), cooldown_seconds=r.cooldown_seconds,
                max_per_minute=r.max_per_minute, enabled=r.enabled) for r in t.config.rules])


@api.get("/triggers/test", tags=["triggers"],
         responses=not_found("No such rule, or no events for the customer."))
async def test(state: Watcher, rule: str, customer_id: CleanId,
               as_of: AsOfTime | None = None,
               since: AsOfTime | None = None) -> DryRunOut:
    """Dry run: whether ``rule`` would fire for the customer as of ``as_of`` (default
    now) and why or why not - the values compared and the cool-down - without storing or
    sending anything. "Before" is the customer as of ``since``, else the newest score
    snapshot, else just before their last event."""
    return await anyio.to_thread.run_sync(_dry_run, state, rule, customer_id, as_of, since)
