"""A scoring run's freed heap goes back to the OS (glibc's malloc_trim), and a C library
without it is no error; what was loaded before a run is frozen out of the collector, unless
JOURNEY_FREEZE_HEAP says not to."""

from __future__ import annotations

import ctypes
import gc
import weakref
from pathlib import Path

import pytest

import serving.state as state_module
from serving import memory
from serving.settings import ServeSettings
from serving.state import ServiceState
from tests.serving.conftest import Served
from tests.training.world import clean_env, one_thread


def _rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(memory._trim() is None, reason="not glibc")
def test_freed_small_blocks_go_back_to_the_os() -> None:
    # Many small blocks (below glibc's mmap threshold) come from the heap, as a scoring run's
    # objects do; freed, they stay resident until trimmed.
    # A block kept above them (the service's long-lived objects) stops free() from giving the
    # heap's top back by itself, as in the service.
    blocks = [ctypes.create_string_buffer(4000) for _ in range(60_000)]
    pin = ctypes.create_string_buffer(4000)
    for b in blocks:
        ctypes.memset(b, 1, 4000)
    held = _rss_mb()
    del blocks, b
    before = _rss_mb()
    assert memory.give_back_memory()
    after = _rss_mb()
    assert before - after > 100, (held, before, after)
    assert pin.raw[:1] == b"\0"


def test_without_malloc_trim_nothing_happens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "_trim", lambda: None)
    assert memory.give_back_memory() is False


def test_a_run_freezes_what_is_loaded_and_collects_garbage_first() -> None:
    """What was alive before a run leaves the collector's generations (its full collections
    no longer walk it); cyclic garbage is collected first, not frozen with it."""
    class Node:
        def __init__(self) -> None:
            self.me = self

    dead = weakref.ref(Node())  # a cycle nothing refers to: garbage
    live = Node()
    try:
        memory.freeze_loaded()
        assert dead() is None
        assert gc.get_freeze_count() > 0
        assert not any(o is live for o in gc.get_objects())
    finally:
        gc.unfreeze()
    assert any(o is live for o in gc.get_objects())


def test_a_later_run_collects_what_an_earlier_one_froze_and_is_now_garbage() -> None:
    """The score worker's child freezes before each run: models it has since replaced (a
    promotion) must not stay frozen, and uncollectable, for good."""
    class Node:
        def __init__(self) -> None:
            self.me = self

    replaced = Node()
    gone = weakref.ref(replaced)
    try:
        memory.freeze_loaded()
        del replaced  # a cycle, frozen while it was alive, now garbage
        memory.freeze_loaded()
        assert gone() is None
    finally:
        gc.unfreeze()


@pytest.mark.parametrize("freeze", [True, False])
def test_the_service_freezes_its_heap_when_set(served: Served, tmp_path: Path, freeze: bool,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """JOURNEY_FREEZE_HEAP: the loaded service freezes once (the default), or never when it
    runs inside a larger process. Counted, not done: a real freeze here would walk the whole
    test session's heap."""
    calls: list[None] = []
    monkeypatch.setattr(state_module, "freeze_loaded", lambda: calls.append(None))
    settings = served.settings(served.store_copy(tmp_path), home=tmp_path / "home",
                               drift_eval_seconds=0, freeze_heap=freeze)
    state = ServiceState(settings)
    with clean_env(), one_thread():
        state.start(background=False)
        try:
            assert state.ready
        finally:
            state.close()
    assert len(calls) == (1 if freeze else 0)


def test_freezing_is_the_default() -> None:
    with clean_env():
        assert ServeSettings().freeze_heap is True
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("JOURNEY_FREEZE_HEAP", "false")
            assert ServeSettings().freeze_heap is False
