"""`journey triggers test`: a dry run of one behavioural trigger rule for one customer, on the
event store; and the trigger evaluation that follows `journey score`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from features.errors import ConfigError, StoreError
from features.spec import FeatureSpec
from features.store import EventStore
from journey.common import StoreOpt, app, friendly_errors, parse_when
from models.actions import Catalog
from serving.settings import ServeSettings

if TYPE_CHECKING:
    # Scikit-learn, LightGBM and numba come with these: a command imports them when it runs,
    # so `journey --help` and the light commands do not wait ~2 s for them.
    from serving.champions import ModelSet
    from serving.snapshots import Snapshot
    from serving.trigger_states import Attrs
    from serving.triggers import Triggers

triggers_app = typer.Typer(help="Behavioural triggers: rules that fire signed webhooks.",
                           no_args_is_help=True)
app.add_typer(triggers_app, name="triggers")


def _attributes(store: EventStore, spec: FeatureSpec, customer_id: str) -> Attrs:
    from features.history import Attributes

    row = store.con.execute("SELECT customer_key FROM customers WHERE customer_id = ?",
                            [customer_id]).fetchone()
    columns = {name: (codes, [str(v) for v in vocab.to_pylist()])
               for name, (codes, vocab) in store.attributes_by_key(spec.attributes).items()}
    return Attributes({customer_id: int(row[0])} if row else {}, columns).of(customer_id)


@triggers_app.command("test")
@friendly_errors
def test(
    rule: Annotated[str, typer.Argument(help="The rule's id in the trigger rules file.")],
    customer: Annotated[str, typer.Option("--customer", help="The customer's id.")],
    as_of: Annotated[str | None, typer.Option(
        "--as-of", help="Judge as of this time (default: now, or JOURNEY_AS_OF).")] = None,
    since: Annotated[str | None, typer.Option(
        help="Compare with the customer as of this time (default: the newest score "
             "snapshot's time, else just before their last event).")] = None,
    store: StoreOpt = None,
) -> None:
    """Dry run: would RULE fire for the customer now, and why or why not?

    Shows the values it compares and its cool-down. Nothing is stored or sent.

    It reads the event store, which a running service holds: ask the service instead
    (GET /v1/triggers/test?rule=RULE&customer_id=ID)."""
    from models.registry import client_for
    from serving.champions import load_models
    from serving.firings import FiringStore
    from serving.predictor import Predictor
    from serving.service_files import served_catalog, served_spec, served_triggers
    from serving.trigger_dry_run import dry_run
    from serving.trigger_states import StateReader

    settings = ServeSettings(store=store) if store else ServeSettings()
    when = parse_when(as_of) if as_of else (settings.as_of or datetime.now(UTC))
    spec = served_spec(settings)
    catalog = served_catalog(settings, spec)
    found = served_triggers(settings, spec, catalog).rule(rule)
    reader = StateReader(spec, Predictor(spec.stages, 0, settings.risk_bands), catalog, [found])
    models: ModelSet | None = None
    if reader.scores:  # churn or next-best-action: the served models
        models = load_models(client_for(settings.tracking_uri), spec, settings.model_alias)
    try:
        es = EventStore(settings.store_path, read_only=True)
    except StoreError as exc:
        raise StoreError(f"{exc}\n(a running service holds the store: ask it instead, GET "
                         f"/v1/triggers/test?rule={rule}&customer_id={customer})") from exc
    with es:
        table = es.customer_history(customer)
        attrs = _attributes(es, spec, customer)
    if table.num_rows == 0:
        raise ConfigError(f"no events for customer {customer!r} in {settings.store_path}")
    enc = reader.online.enc
    result = dry_run(found, customer, lambda t: enc.one_customer(customer, table, t), attrs,
                     reader, models, FiringStore(settings.firings_path), when,
                     parse_when(since) if since else None, settings.scores_path)
    for line in result.lines():
        typer.echo(line)


def scoring_triggers(settings: ServeSettings, spec: FeatureSpec, catalog: Catalog) -> Triggers:
    """The rules judged after `journey score`, loaded before it scores: a bad rules file must
    stop the run before it publishes a snapshot (segments, the dashboard and the next run's
    comparison read the newest one, and older ones are pruned)."""
    from serving.predictor import Predictor
    from serving.service_files import served_triggers
    from serving.triggers import Triggers

    return Triggers.for_settings(settings, spec, catalog,
                                 Predictor(spec.stages, 0, settings.risk_bands), lambda: None,
                                 served_triggers(settings, spec, catalog))


def fire_after_scoring(triggers: Triggers, snap: Snapshot, wait_seconds: float = 10.0) -> None:
    """Judge the scoring-run rules on a new snapshot and send what fires, waiting up to
    ``wait_seconds`` for deliveries; the rest stay pending for the service's next start."""
    if not triggers.active:
        triggers.close()
        return
    triggers.start()
    try:
        fired = triggers.evaluate_snapshot(snap)
    finally:
        triggers.close(wait_seconds)
    left = triggers.sender.busy
    typer.echo(f"triggers: {fired:,} fired" + (f", {left:,} deliveries pending (the service "
                                                "resumes them when it starts)" if left else ""))
