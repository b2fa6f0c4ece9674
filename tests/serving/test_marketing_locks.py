"""A scoring run does not hold up the routes that read the book (they answer from the book in
hand), and a second run asked for meanwhile is refused with 409 rather than queued."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime

import pytest

from models.persona_words import names_path
from serving.champions import ModelSet
from serving.errors import ScoringBusyError
from serving.scoring import Population
from serving.snapshots import Snapshot
from serving.state import ServiceState
from tests.serving.conftest import AS_OF, Served


@pytest.fixture(scope="module")
def state(served: Served, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceState]:
    folder = tmp_path_factory.mktemp("marketing-locks")
    settings = served.settings(served.store_copy(folder), scores=folder / "scores",
                               drift_worker=False)
    st = ServiceState(settings)
    st.start(background=False)
    yield st
    st.close()


def _rename(state: ServiceState, text: str) -> None:
    """Touch the persona names file as `journey personas --rename` does: the book in hand is
    then stale and is read again."""
    path = names_path(state.settings.home)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_routes_answer_during_a_scoring_run_and_a_second_run_is_refused(
        state: ServiceState) -> None:
    models, history = state._models()
    first = state.marketing.score(models, history, AS_OF)
    entered, release = threading.Event(), threading.Event()

    def held(_m: ModelSet, _p: Population, _t: datetime) -> Snapshot | None:
        entered.set()
        release.wait(60)
        return None  # then scored here, as when the worker cannot

    run = threading.Thread(target=state.marketing.score, args=(models, history, AS_OF, held))
    run.start()
    try:
        assert entered.wait(60)
        _rename(state, "{}\n")
        started = time.monotonic()
        book = state.marketing.book()
        assert time.monotonic() - started < 5  # it waited for the run before: 60 s here
        assert book.snapshot.id == first.id
        with pytest.raises(ScoringBusyError, match=r"a scoring run is in progress \(started "
                           r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\)"):
            state.marketing.score(models, history, AS_OF)
    finally:
        release.set()
        run.join(120)
    newest = state.marketing.book()
    assert newest.snapshot.id != first.id
    assert newest.snapshot.meta["previous"] == first.id


def test_while_a_newer_book_loads_the_one_in_hand_is_answered(state: ServiceState) -> None:
    book = state.marketing.book()
    _rename(state, "{} \n")  # another size: a new stamp
    with state.marketing._book_lock:  # as while another request loads the newer book
        started = time.monotonic()
        assert state.marketing.book() is book
        assert time.monotonic() - started < 1
    assert state.marketing.book() is not book
