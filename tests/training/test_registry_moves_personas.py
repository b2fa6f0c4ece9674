"""`journey personas` makes its fit the champion as a promotion does: under the registry's
lock, so it waits for a promotion (or a run moving its challengers) on the same registry, and
two first fits cannot each find no champion and both move it."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pyarrow as pa
import pytest

from models.persona_params import REGISTERED_NAME
from models.personas import PersonaModel
from tests.models.test_personas import STAGES, synthetic
from training import champions
from training.personas import PersonaRun, track_personas
from training.registry_lock import registry_lock
from training.tracking import Tracking
from training.train import CHAMPION

pytestmark = pytest.mark.slow  # a persona fit registered in an MLflow store of its own: ~8 s


def _wait_for(check: Callable[[], object], what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_the_first_fit_waits_for_a_promotion_to_become_the_champion(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A promotion holds the lock: the fit is tracked and registered meanwhile, but its
    champion alias waits for the lock (before: it moved at once, under the promotion)."""
    monkeypatch.chdir(tmp_path)  # MLflow's Default experiment folder lands here
    frame = synthetic()[0]
    model = PersonaModel(k_min=2, k_max=3, n_init=2, stages=STAGES, seed=3).fit(frame)
    tracking = Tracking.local(tmp_path / "home")
    notes: list[str] = []
    monkeypatch.setattr(champions, "_stderr", notes.append)  # where promotion() notes a wait
    got: list[PersonaRun] = []
    spec = cast(Any, SimpleNamespace(hash="definition"))
    fit = threading.Thread(target=lambda: got.append(track_personas(
        model, list(model.profiles_), pa.Table.from_pandas(frame), tracking, spec,
        datetime(2025, 10, 1, tzinfo=UTC), False, 0.1)))
    client = tracking.client()
    with registry_lock(tracking.tracking_uri, "promotion", pytest.fail):
        fit.start()
        _wait_for(lambda: notes or not fit.is_alive(), "the fit to reach the lock", 120)
        assert fit.is_alive() and notes == [
            f"waiting for another promotion on this registry (pid {os.getpid()}) …"]
        assert CHAMPION not in client.get_registered_model(REGISTERED_NAME).aliases
    fit.join(60)
    [run] = got
    assert run.champion  # the first fit: no champion before it
    assert str(client.get_registered_model(REGISTERED_NAME).aliases[CHAMPION]) == run.version
