"""`journey personas` (discover, describe, rename) and `journey kpis` (journey KPIs of the
newest score snapshot by persona, stage, acquisition channel or month)."""

from __future__ import annotations

import shutil
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from features.errors import ConfigError
from features.spec import FeatureSpec, load_spec
from features.taxonomy import load_taxonomy
from journey.common import StoreOpt, app, friendly_errors, parse_when
from journey.settings import Settings
from models.persona_params import (
    REGISTERED_NAME,
    PersonaError,
    TooFewActiveError,
    load_persona_params,
)
from models.persona_words import names_path, persona_names, read_names, write_name
from serving.segments_personas import (
    NAMES_META,
    relabel_kpis,
    scored_and_current,
    snapshot_personas,
)
from serving.settings import ServeSettings
from serving.snapshots import Snapshot, latest, read_snapshot

if TYPE_CHECKING:  # scikit-learn: imported by the commands that fit or load a model
    from models.personas import PersonaModel


@app.command()
@friendly_errors
def personas(
    as_of: Annotated[str | None, typer.Option(
        "--as-of", help="Fit on the feature vectors as of this time (default: midnight after "
                        "the store's last event).")] = None,
    store: StoreOpt = None,
    config: Annotated[Path | None, typer.Option(
        help="Persona settings YAML (default: the shipped models/config/personas.yaml).")] = None,
    promote: Annotated[bool, typer.Option(
        help="Make this fit the champion even when one exists.")] = False,
    show: Annotated[bool, typer.Option(
        help="Only print the champion's personas (no fitting; not with --rename).")] = False,
    rename: Annotated[tuple[int, str] | None, typer.Option(
        help="Rename the champion's persona ID to NAME (no fitting; not with --show), e.g. "
             "--rename 2 'bargain hunters'.", metavar="ID NAME")] = None,
) -> None:
    """Discover behavioural personas in the customers' feature vectors.

    Describes each in plain words, tracks the fit in MLflow and registers it (champion when
    there is none). Scoring runs then add each customer's persona, a segment dimension."""
    renaming = rename is not None and rename[0] is not None
    _one_mode(show, renaming,
              [o for o, on in (("--as-of", as_of is not None), ("--config", config is not None),
                               ("--promote", promote)) if on])
    settings = Settings() if store is None else Settings(store=store)
    spec = load_spec(settings.feature_spec, load_taxonomy(settings.taxonomy))
    if rename is not None and renaming:
        _rename(settings, spec, rename[0], rename[1])
        return
    if show:
        model, version = _champion(settings, spec)
        profiles, source = _with_scores(settings, list(model.profiles_), version)
        _print(model, profiles, _names(settings, model, version),
               f"{REGISTERED_NAME} v{version} (champion)")
        typer.echo(source)
        return
    _fit(settings, spec, as_of, config, promote)


def _one_mode(show: bool, rename: bool, fitting: list[str]) -> None:
    """Fit, show or rename: one at a time, so no option is quietly ignored."""
    if show and rename:
        raise ConfigError("--show and --rename are two runs: rename first (`journey personas "
                          "--rename ID NAME`), then `journey personas --show` prints the result")
    mode = "--show" if show else "--rename" if rename else None
    if mode and fitting:
        raise ConfigError(f"{mode} fits nothing, so {', '.join(fitting)} would be ignored: "
                          f"leave {'it' if len(fitting) == 1 else 'them'} out, or fit "
                          f"without {mode}")


def _fit(settings: Settings, spec: FeatureSpec, as_of: str | None, config: Path | None,
         promote: bool) -> None:
    from training.dataset import SnapshotSource
    from training.personas import fit_and_track

    params = load_persona_params(config)
    if params.window_days not in spec.windows_days:  # its counts would all be missing
        raise ConfigError(f"{config or 'models/config/personas.yaml'}: window_days: "
                          f"{params.window_days} is not one of the feature spec's windows_days "
                          f"{list(spec.windows_days)} ({spec.source})")
    latest_cutoff = _after_last_event(settings.store_path)
    when = parse_when(as_of) if as_of else latest_cutoff
    if when > latest_cutoff:  # the window before it would hold fewer events, or none
        raise ConfigError(
            f"--as-of {as_of} is after the store's last event "
            f"({(latest_cutoff - timedelta(days=1)).date()}): personas are fitted on the "
            f"{params.window_days} days before the cutoff, so choose an earlier one, at most "
            f"{latest_cutoff.date()} (the default)")
    source = SnapshotSource(settings.store_path, settings.snapshots_path, spec, log=typer.echo,
                            memory_limit=settings.store_memory)
    try:
        frame = source.features(when).read()
    finally:
        source.close()
    scores = latest(ServeSettings(home=settings.home).scores_path)
    known = _values_known(settings.store_path, spec, when)
    try:
        run = fit_and_track(frame, params, spec, settings.tracking(), when, promote,
                            scores.customers() if scores is not None else None, known)
    except PersonaError as exc:
        raise persona_problem(exc, config, when, latest_cutoff) from exc
    where = f"{REGISTERED_NAME} v{run.version}" + (" (champion)" if run.champion else "")
    _print(run.model, run.profiles, _names(settings, run.model, run.version),
           f"{where}, fitted as of {when.date()} in {run.seconds:.1f}s")
    if scores is not None:
        typer.echo(f"churn risk and expected value from score snapshot {scores.id} (as of "
                   f"{scores.meta.get('as_of')})")
    if not run.champion:
        typer.echo("not the champion: `journey personas --promote` makes a fit the champion")


def persona_problem(exc: PersonaError, config: Path | None, when: datetime,
                    latest_cutoff: datetime) -> ConfigError:
    """The fit's error with what would help: a later cutoff only when the data goes on past
    this one, and where the settings are (they were tuned on the simulator)."""
    if isinstance(exc, TooFewActiveError) and when < latest_cutoff:
        exc = exc.adding(f"choose a later --as-of (at most {latest_cutoff.date()}, the "
                         "default: the day after the store's last event)")
    where = config or "models/config/personas.yaml"
    return ConfigError(f"{exc}. The settings are in {where}: change a copy and pass it with "
                       "--config")


def _values_known(store: Path, spec: FeatureSpec, before: datetime) -> bool:
    """Whether a conversion before ``before`` carries a value (as scoring asks, so the
    personas and the score snapshots agree): a store without one (a Segment track export)
    holds 0 revenue for everyone, which is no figure."""
    from features.store import EventStore

    with EventStore(store, read_only=True) as es:
        row = es.con.execute(
            "SELECT EXISTS (SELECT 1 FROM events WHERE ts < ? AND isfinite(value) AND "
            "event_type IN (SELECT unnest(?::VARCHAR[])))",
            [before, list(spec.taxonomy.conversion_event_types)]).fetchone()
    return bool(row and row[0])


def _after_last_event(store: Path) -> datetime:
    from features.store import EventStore

    if not store.exists():
        raise ConfigError(f"event store not found: {store}; run `journey ingest`")
    with EventStore(store, read_only=True) as es:
        last = es.time_range()[1]
    if last is None:
        raise ConfigError(f"the event store {store} has no events")
    day = last.replace(tzinfo=UTC).date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _champion(settings: Settings, spec: FeatureSpec) -> tuple[PersonaModel, str]:
    from models.personas import PersonaModel
    from models.registry import alias_version, load_native

    version = alias_version(settings.tracking().client(), REGISTERED_NAME, "champion")
    if version is None:
        raise ConfigError(f"no {REGISTERED_NAME} champion yet: run `journey personas`")
    model = load_native(version, PersonaModel)
    assert isinstance(model, PersonaModel)
    return model, str(version.version)


def _with_scores(settings: Settings, profiles: list[dict[str, Any]], version: str
                 ) -> tuple[list[dict[str, Any]], str]:
    """The profiles with churn risk and expected value from the newest score snapshot when
    it was scored with this persona model (matched by persona id), as the dashboard's cards
    show them; and a line saying where they come from."""
    snap = latest(ServeSettings(home=settings.home).scores_path)
    if snap is None or snap.meta.get("models", {}).get(REGISTERED_NAME) != version:
        return profiles, (f"churn risk and expected value: as at fitting time (no score "
                          f"snapshot of {REGISTERED_NAME} v{version} yet: `journey score`)")
    table = snap.customers(["persona", "persona_id", "churn", "expected_value"])
    found = snapshot_personas(snap.meta, table, names_path(settings.home))
    if found is None:
        return profiles, f"churn risk and expected value: snapshot {snap.id} has no persona ids"
    means = found.means(table["churn"], table["expected_value"])
    return ([{**p, **means.get(p["id"], {})} for p in profiles],
            f"churn risk and expected value from score snapshot {snap.id} (as of "
            f"{snap.meta.get('as_of')})")


def _names(settings: Settings, model: PersonaModel, version: str) -> list[str]:
    return persona_names(model.default_names_, read_names(names_path(settings.home), version))


def _rename(settings: Settings, spec: FeatureSpec, pid: int, name: str) -> None:
    model, version = _champion(settings, spec)
    path = names_path(settings.home)
    write_name(path, version, pid, name, model.default_names_)
    typer.echo(f"persona {pid} of {REGISTERED_NAME} v{version} is now {name.strip()!r} -> "
               f"{path} (segments, KPIs, exports and the dashboard show it now)")


def _print(model: PersonaModel, profiles: list[dict[str, Any]], names: list[str],
           header: str) -> None:
    from models.persona_words import summary_lines

    crit = ", ".join(f"{k}: {v}" for k, v in model.criterion["values"].items())
    typer.echo(f"{header}\n{model.k_} personas (k by silhouette, highest wins: {crit})\n"
               f"{model.n_active_:,} of {model.n_customers_:,} customers assigned "
               f"({model.n_active_ / max(model.n_customers_, 1):.0%}); the others have fewer "
               f"than {model.min_events} events in {model.window_days} days: unassigned")
    for prof, name in zip(profiles, names, strict=True):
        typer.echo(f"\n[{prof['id']}] {name}")
        # The share from the counts: models fitted before it was kept unrounded stored a
        # 4-decimal one, which prints 34.1% for 2,541 of 7,463 (34.05%), as the API does.
        share = prof["customers"] / model.n_active_ if model.n_active_ else prof.get("share")
        for line in summary_lines({**prof, "share": share}, model.window_days):
            typer.echo(f"    {line}")
    typer.echo("\nrename: journey personas --rename ID NAME")


@app.command()
@friendly_errors
def kpis(
    by: Annotated[str | None, typer.Option(
        help="persona, stage, a customer attribute (e.g. acquisition_channel) or month "
             "(default: persona, or stage without a persona model).")] = None,
    snapshot: Annotated[str | None, typer.Option(help="A snapshot id (default: the newest).")]
    = None,
) -> None:
    """Journey KPIs of the newest score snapshot per group, with 95 % intervals.

    Conversion, retention and repeat-purchase rates, CLV estimate, CSAT, NPS."""
    settings = ServeSettings()
    root = settings.scores_path
    snap = read_snapshot(root / snapshot) if snapshot else latest(root)
    if snap is None:
        raise ConfigError(f"no score snapshot in {root}: run `journey score` first")
    data = _current_kpis(snap, names_path(settings.home))
    by = by or ("persona" if "persona" in data["by"] else "stage")
    if by == "persona" and by not in data["by"]:
        raise ConfigError(_no_personas(snap, list(data["by"])))
    if by not in data["by"]:
        raise ConfigError(f"--by {by!r}: the KPIs are grouped by {', '.join(data['by'])}")
    typer.echo(f"KPIs by {by}, snapshot {snap.id} as of {snap.meta.get('as_of')} "
               "(95 % intervals in brackets)")
    if by == "month" and not any(r["customers"] for r in data["by"][by]):
        typer.echo(_no_months(data, settings.store_path))
    # The dashboard's words and order: its Journey KPIs table, everyone at the foot.
    rows = [*data["by"][by], {**data["overall"], "group": EVERYONE}]
    table = [KPI_HEADER] + [_kpi_row(r) for r in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    for r in table:
        typer.echo("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                             for i, (c, w) in enumerate(zip(r, widths, strict=True))))
    # The snapshot's own words: one scored before a definition changed keeps its figures,
    # and must not be read under the new one.
    clv = data.get("definitions", {}).get("clv")
    note = (f"CLV, as this snapshot defines it: {clv}" if clv else
            "CLV = revenue per active buyer-year x an active buyer's expected lifetime (see "
            "`definitions` in GET /v1/kpis)")
    # The definition is a paragraph (~700 characters): one line of it ran off every terminal.
    width = min(shutil.get_terminal_size((100, 24)).columns, 100)
    typer.echo(textwrap.fill(note, width, break_on_hyphens=False, break_long_words=False))


KPI_HEADER = ["Group", "Customers", "Conversion", "Retention", "Repeat purchase",
              "CLV (per customer)", "CSAT (mean rating)", "NPS"]
EVERYONE = "All customers"
SO_FAR = " (so far)"  # a month not over yet, as the dashboard says it
TO = "\u2013"  # an interval's en dash, as the dashboard writes it


def _current_kpis(snap: Snapshot, names_file: Path) -> dict[str, Any]:
    """The snapshot's KPIs, personas under their current names (renames since it was
    scored: the dashboard shows those too)."""
    data = snap.kpis()
    if data is None:
        raise ConfigError(f"snapshot {snap.id} has no KPIs: score again")
    old = NAMES_META not in snap.meta and "persona" in data["by"]  # names from its column
    persona = snap.customers(["persona"]).column("persona") if old else None
    names = scored_and_current(snap.meta, persona, names_file)
    return relabel_kpis(data, *names) if names else data


def _no_personas(snap: Snapshot, groupings: list[str]) -> str:
    """Why a snapshot has no KPIs by persona, and the runs that give it some."""
    why, unfitted = snap.why_no_personas(REGISTERED_NAME)
    fit = ("fit one with `journey personas` (it becomes the champion when there is none), "
           "then " if unfitted else "")
    return (f"--by persona: snapshot {snap.id} has no personas ({why}): {fit}score again with "
            f"`journey score`, which gives every customer a persona and the KPIs by persona "
            f"(this snapshot's are by {', '.join(groupings)})")


def _no_months(data: dict[str, Any], store: Path) -> str:
    """Why the KPIs by month have no row with customers: no event in any of their months (a
    snapshot scored as of now, long after the data ended; a month may still have a row for
    the retention of earlier buyers), and what would give some."""
    from models.kpis import month_windows

    as_of = datetime.fromisoformat(data["as_of"])
    n = int(data.get("params", {}).get("kpi_months", 12))
    months = month_windows(round(as_of.timestamp() * 1e6), n)
    last = _newest_event(store)
    said = ([f"{months[0][0]} to {months[-1][0]}"] if months else []) + (
        [] if last is None else [f"the store's newest event is {last:%Y-%m-%d}"])
    at = "" if last is None else f" --as-of {(last + timedelta(days=1)).date()}"
    return (f"no events in the last {n} months before as_of {as_of:%Y-%m-%d}"
            + (f" ({'; '.join(said)})" if said else "")
            + f": score as of the data's end (`journey score{at} --publish`) or raise "
            "kpi_months (in a copy of models/config/journey_map.yaml named by "
            "JOURNEY_JOURNEY_MAP_CONFIG)")


def _newest_event(store: Path) -> datetime | None:
    """The store's newest event time, or None when it cannot be read now (no store, or the
    running service holds it): the note then does without the date."""
    from features.errors import JourneyError
    from features.store import EventStore

    try:
        with EventStore(store, read_only=True) as es:
            return es.time_range()[1]
    except JourneyError:
        return None


def _kpi_row(r: dict[str, Any]) -> list[str]:
    def rate(x: dict[str, Any]) -> str:
        if x["value"] is None:
            return "-"
        lo, hi = x["ci95"]
        return f"{x['value']:.1%} [{lo:.1%}{TO}{hi:.1%}]"

    csat, nps = r.get("csat"), r.get("nps")
    csat_s = (f"{csat['mean']:.2f} [{csat['mean_ci95'][0]:.2f}{TO}{csat['mean_ci95'][1]:.2f}]"
              if csat and csat["mean_ci95"] else "-")
    nps_s = (f"{nps['score']:+.0f} [{nps['ci95'][0]:+.0f} to {nps['ci95'][1]:+.0f}]"
             if nps and nps["ci95"] else "-")
    clv = r["clv"]["value"]
    label = r["group"] + (SO_FAR if r.get("partial") else "")
    return [label, f"{r['customers']:,}", rate(r["conversion_rate"]), rate(r["retention_rate"]),
            rate(r["repeat_purchase_rate"]), "-" if clv is None else f"{clv:,.0f}", csat_s, nps_s]
