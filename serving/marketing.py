"""What the marketer's routes read: the newest score snapshot as a ``SegmentBook`` (reloaded
when ``journey score`` or ``/v1/admin/score`` writes a newer one), and scoring runs on the
service's own histories. No web framework here."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from features.batch import micros
from features.errors import JourneyError
from features.history import HistoryIndex
from features.spec import FeatureSpec
from models.actions import Catalog
from models.persona_params import REGISTERED_NAME as PERSONA_MODEL
from models.persona_words import names_path, summary_lines
from serving.champions import ModelSet
from serving.errors import BadRequestError, NoSnapshotError, NotFoundError, ScoringBusyError
from serving.recommender import Recommender
from serving.score_job import ScoreRun, population_from_history, population_parts
from serving.scoring import BatchScorer, Population
from serving.scoring_runs import IN_WORKER, ScoringRuns
from serving.segment_config import SegmentConfig, load_segment_config
from serving.segments import Segment, SegmentBook, SegmentQueryError
from serving.segments_personas import relabel_kpis
from serving.service_files import journey_map_params
from serving.settings import ServeSettings
from serving.snapshots import Snapshot, latest, latest_name, previous_of
from serving.utc import iso_z

log = logging.getLogger("journey.serving")
# Scores a population (in parts, gathered as they are read) as of a time into a snapshot
# somewhere else; None: it could not.
Elsewhere = Callable[[ModelSet, Iterable[Population], datetime], Snapshot | None]


class Marketing:
    def __init__(self, settings: ServeSettings, spec: FeatureSpec, catalog: Catalog,
                 runs: ScoringRuns | None = None) -> None:
        """``runs``: logs and metrics of scoring runs (default: metrics nobody reads)."""
        self.root = settings.scores_path
        self.runs = runs or ScoringRuns()
        self.spec = spec
        self.config: SegmentConfig = load_segment_config(settings.segments_config, spec)
        self.params = journey_map_params(settings)
        self.names_file = names_path(settings.home)
        self.scorer = BatchScorer(spec, self.config, settings.risk_bands,
                                  Recommender(spec, catalog, 1, 0.0), self.names_file)
        self._book: SegmentBook | None = None
        self._names: tuple[int, int] | None = None  # the names file the book was read with
        self._kpis: tuple[str, dict[str, Any]] | None = None  # (snapshot id, its KPIs)
        # Two locks: a scoring run takes seconds to minutes, and a route that waited for it
        # to read the book held up every request behind it (5-9 s at 20k customers).
        self._run_lock = threading.Lock()  # one scoring run at a time
        self._book_lock = threading.Lock()  # one load or swap of the book at a time
        self._run_started: datetime | None = None

    def book(self) -> SegmentBook:
        """The newest snapshot's book; loads it again when the LATEST pointer moved or a
        persona was renamed since (the names file changed: names show at once). While another
        request or a scoring run loads the newer one, the book in hand is answered."""
        book = self._book
        if book is not None and self._fresh(book, _stamp(self.names_file)):
            return book
        if not self._book_lock.acquire(blocking=book is None):
            assert book is not None
            return book
        try:
            stamp = _stamp(self.names_file)
            if self._book is None or not self._fresh(self._book, stamp):
                self._book, self._names = self._load(), stamp
            return self._book
        finally:
            self._book_lock.release()

    def _fresh(self, book: SegmentBook, names: tuple[int, int] | None) -> bool:
        """``book`` is the newest snapshot's, read with the names file as ``names`` stamps it."""
        return book.snapshot.id == latest_name(self.root) and self._names == names

    def filters(self, params: Sequence[tuple[str, str]], extra: Sequence[str]
                ) -> dict[str, list[str]]:
        """A route's filters from its query parameters, read against the newest snapshot,
        each value spelt as the snapshot has it (``tier=High`` is ``high``)."""
        book = self.book()
        known = {name: d.values for name, d in book.dims.items()}
        try:
            return book.canonical(parse_query(params, self.config.dimensions, extra, known))
        except SegmentQueryError as exc:
            raise BadRequestError(str(exc), exc.field) from exc

    def preload(self) -> None:
        """Load the newest snapshot now, if there is one (a missing or unreadable one is
        reported by the routes that need it)."""
        try:
            self.book()
        except JourneyError as exc:
            log.warning("score snapshot not loaded: %s", exc)

    def _load(self) -> SegmentBook:
        snap = latest(self.root)
        if snap is None:
            # Marketer keys see this message: it names no server path.
            raise NoSnapshotError("no score snapshot yet: an admin runs `journey score` "
                                  "(service stopped) or POST admin/score on this service")
        try:
            return self._book_of(snap)
        except (OSError, ValueError, pa.ArrowException) as exc:  # a damaged or foreign file
            log.error("score snapshot %s cannot be read: %s", snap.path, exc)
            raise NoSnapshotError(f"score snapshot {snap.id} cannot be read ({type(exc).__name__});"
                                  " score again") from exc

    def _book_of(self, snap: Snapshot) -> SegmentBook:
        """The snapshot's book, its default order sorted before any route reads it."""
        return SegmentBook(snap, self.config.dimensions, previous_of(self.root, snap),
                           self.names_file).warm()

    def score(self, models: ModelSet, history: HistoryIndex, as_of: datetime,
              elsewhere: Elsewhere | None = None, requested_by: str | None = None
              ) -> Snapshot:
        """Score every customer of the service's histories into a new snapshot: by
        ``elsewhere`` (the score worker's child process) unless it returns None. A second
        run asked for meanwhile is refused (409): it would score the same moment again and
        push a real previous snapshot out of the comparison. ``requested_by``: the key's
        name, for the log."""
        if not self._run_lock.acquire(blocking=False):
            started = self._run_started
            since = (f" (started {iso_z(started.replace(microsecond=0))})"
                     if started else "")
            raise ScoringBusyError(f"a scoring run is in progress{since}: its snapshot will "
                                   "be the newest when it ends; ask again after it")
        try:
            self._run_started = datetime.now(UTC)
            with self.runs.run(as_of, requested_by, self.root) as run:
                cutoff = micros(as_of)
                snap = None if elsewhere is None else elsewhere(
                    models, population_parts(history, self.config, cutoff), as_of)
                if snap is None:
                    if elsewhere is not None:
                        run.where = "the service, the score worker having failed (see above)"
                    population = population_from_history(history, self.config, cutoff)
                    snap = ScoreRun(self.spec, self.config, self.scorer, self.root,
                                    params=self.params).run(models, population, as_of,
                                                            "service histories")
                else:
                    run.where = IN_WORKER
                stamp = _stamp(self.names_file)
                # Built before the swap, so routes answer from the old book until it is ready.
                fresh = self._book_of(snap)
                with self._book_lock:
                    self._book, self._names = fresh, stamp
                run.snapshot = snap
            return snap
        finally:
            self._run_started = None
            self._run_lock.release()

    # -- queries (segment errors become 422s naming the parameter) -----------------------
    def segments(self, by: Sequence[str], filters: Mapping[str, Sequence[str]]
                 ) -> tuple[SegmentBook, list[Segment], Segment]:
        book = self.book()
        try:
            rows, total = book.segments(by, filters)
        except SegmentQueryError as exc:
            raise BadRequestError(str(exc), exc.field) from exc
        return book, rows, total

    def customers(self, filters: Mapping[str, Sequence[str]], sort: str, limit: int,
                  offset: int) -> tuple[SegmentBook, int, list[dict[str, Any]]]:
        book = self.book()
        try:
            total, rows = book.page(filters, sort, limit, offset)
        except SegmentQueryError as exc:
            raise BadRequestError(str(exc), exc.field) from exc
        return book, total, rows

    def kpis(self, by: str | None) -> tuple[SegmentBook, dict[str, Any], str]:
        """The newest snapshot's KPIs (read once per snapshot; personas under their current
        names) and what they are grouped by (``by``; None: persona, or stage when no persona
        model scored the snapshot)."""
        book = self.book()
        cached = self._kpis
        if cached is None or cached[0] != book.snapshot.id:
            data = book.snapshot.kpis()
            if data is None:
                raise NoSnapshotError(f"score snapshot {book.snapshot.id} has no KPIs (scored "
                                      "before they existed): score again")
            cached = self._kpis = (book.snapshot.id, data)
        p = book.personas
        data = relabel_kpis(cached[1], p.stored, p.names) if p else cached[1]
        by = by or ("persona" if "persona" in data["by"] else "stage")
        if by == "persona" and by not in data["by"]:
            why, unfitted = book.snapshot.why_no_personas(PERSONA_MODEL)
            fit = ("fit one with `journey personas`, then " if unfitted else "")
            raise BadRequestError(f"score snapshot {book.snapshot.id} has no personas ({why}): "
                                  f"{fit}score again (POST /v1/admin/score or `journey score`); "
                                  f"its KPIs are grouped by {', '.join(data['by'])}", "by")
        if by not in data["by"]:
            raise BadRequestError(f"KPIs are not grouped by {by!r} in this snapshot; group by "
                                  f"one of: {', '.join(data['by'])}", "by")
        return book, data, by

    def personas(self, models: ModelSet | None) -> dict[str, Any]:
        """The served persona model's personas, each under the name scoring runs give it (the
        marketer's, else the model's), described as at fitting time except for churn risk and
        expected value: those come from the newest score snapshot when that one was scored
        with this persona model (personas are fitted before scoring, so at fitting time they
        are usually unknown)."""
        if models is None or models.persona is None:
            raise NotFoundError("no persona model is served: fit one with `journey personas` "
                                "(the service loads it at the next reload)")
        model, names = models.persona.model, self.scorer.persona_names(models)
        as_of, scores = self._persona_scores(models.persona.version)
        out = []
        for prof in model.profiles_:
            name = names[prof["id"]]
            # The share from the counts: models fitted before it was kept unrounded hold a
            # 4-decimal one, which formats as 34.1% for 2,541 of 7,463 (34.05%).
            share = prof["customers"] / model.n_active_ if model.n_active_ else None
            p = {**prof, "name": name, "share": share, **scores.get(prof["id"], {})}
            lines = summary_lines(p, model.window_days)
            out.append({**p, "summary": [s.removeprefix("- ") for s in lines]})
        return {
            "version": models.persona.version, "k": model.k_, "criterion": model.criterion,
            "customers": model.n_customers_, "assigned": model.n_active_,
            "window_days": model.window_days, "min_events": model.min_events,
            "unassigned_name": names[-1], "scores_as_of": as_of, "personas": out}

    def _persona_scores(self, version: str
                        ) -> tuple[str | None, dict[int, dict[str, float | None]]]:
        """The newest snapshot's as-of time and each persona's mean churn probability and
        expected value in it, by persona id (a persona renamed since keeps them); nothing when
        there is no snapshot or it was scored with another persona model (or none)."""
        try:
            book = self.book()
        except NoSnapshotError:
            return None, {}
        p = book.personas
        if p is None or p.version != version:
            return None, {}
        return str(book.snapshot.meta["as_of"]), p.means(book.table["churn"],
                                                         book.table["expected_value"])

    def export(self, filters: Mapping[str, Sequence[str]], sort: str
               ) -> tuple[SegmentBook, Iterator[bytes]]:
        book = self.book()
        try:
            book.rows(filters, sort)  # validate before the response starts streaming
        except SegmentQueryError as exc:
            raise BadRequestError(str(exc), exc.field) from exc
        return book, book.csv(filters, sort)


def _stamp(path: Path) -> tuple[int, int] | None:
    """What tells a changed file: its modification time and size (None: no file)."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def parse_query(params: Sequence[tuple[str, str]], dimensions: Sequence[str],
                extra: Sequence[str], known: Mapping[str, Sequence[str]] | None = None
                ) -> dict[str, list[str]]:
    """Filters from query parameters: each dimension name may repeat or list values with
    commas (a value that itself holds a comma is taken whole when ``known`` has it); ``extra``
    names the route's own parameters; anything else is refused."""
    filters: dict[str, list[str]] = {}
    for name, value in params:
        if name in extra:
            continue
        if name not in dimensions:
            raise BadRequestError(f"unknown query parameter {name!r}; filter by a dimension "
                                  f"({', '.join(dimensions)})", name)
        whole = value.strip()
        if known is not None and whole in known.get(name, ()):
            values = [whole]
        else:
            values = [v.strip() for v in value.split(",") if v.strip()]
        if not values:
            raise BadRequestError(f"filter {name!r} has no value", name)
        filters.setdefault(name, []).extend(values)
    return filters
