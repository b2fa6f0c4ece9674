"""Random ids made a batch at a time: the same form as ``uuid.uuid4().hex``, all distinct, and
read from the OS in one call (what keeps a scoring run from starving the event loop)."""

from __future__ import annotations

import os
import uuid

import pytest

from serving.ids import random_ids


def test_ids_are_version_4_uuids_in_hex() -> None:
    out = random_ids(1000)
    assert len(out) == 1000 and len(set(out)) == 1000
    for h in out:
        u = uuid.UUID(hex=h)
        assert u.hex == h and len(h) == 32
        assert u.version == 4 and u.variant == uuid.RFC_4122


def test_no_ids() -> None:
    assert random_ids(0) == []


def test_one_read_of_the_random_source(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    read = os.urandom

    def urandom(n: int) -> bytes:
        calls.append(n)
        return read(n)

    monkeypatch.setattr(os, "urandom", urandom)
    random_ids(20_000)
    assert calls == [16 * 20_000]
