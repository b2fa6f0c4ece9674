"""A promotion as one step on the registry: decided under its lock, its champions moved last
and together.

A service polling the registry (JOURNEY_RELOAD_POLL_SECONDS) loads whatever `champion`
aliases it reads, so moving each target's alias as soon as that target is decided let it
serve, for as long as the next targets took to score, a set of models never promoted
together. Inside ``promotion`` the gate only records each decision and queues its move; the
moves are made in one quick sequence once every target is decided and recorded. A promotion
that fails half-way moves nothing, so no alias ever moves without its decision on record.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from models.registry import client_for
from training.registry_lock import Note, registry_lock, settled
from training.tracking import same_store
from training.train import CHAMPION

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient


@dataclass(frozen=True)
class _Open:
    tracking_uri: str
    moves: list[tuple[str, str]] = field(default_factory=list)  # (registered name, version)


# The promotion open in this thread (threads start with none of their own).
_OPEN: ContextVar[_Open | None] = ContextVar("journey_open_promotion", default=None)


def _stderr(line: str) -> None:
    print(line, file=sys.stderr)


@contextmanager
def promotion(tracking_uri: str, note: Note | None = None) -> Iterator[None]:
    """Hold the registry's lock for the block and move the champions it promotes when it
    ends without error (``note``: where to say it waits or failed; default stderr). One
    opened inside another on the same store is part of it: its moves wait for that one's."""
    note = note or _stderr
    outer = _OPEN.get()
    if outer is not None and same_store(outer.tracking_uri, tracking_uri):
        yield
        return
    with registry_lock(tracking_uri, "promotion", note):
        this = _Open(tracking_uri)
        token = _OPEN.set(this)
        try:
            yield
        except BaseException:
            if this.moves:
                note(f"no champion moved: the promotion stopped before every target was decided "
                     f"and recorded (held back: {_listed(this.moves)}); run it again")
            raise
        finally:
            _OPEN.reset(token)
        client = client_for(tracking_uri)
        for registered, version in this.moves:
            settled(functools.partial(client.set_registered_model_alias, registered,
                                      CHAMPION, version))


def move_champion(client: MlflowClient, registered: str, version: str) -> None:
    """Point ``registered``'s champion at ``version``: when the open promotion ends, or now
    outside one."""
    current = _OPEN.get()
    if current is not None and same_store(current.tracking_uri, client.tracking_uri):
        current.moves.append((registered, version))
        return
    settled(functools.partial(client.set_registered_model_alias, registered, CHAMPION,
                              version))


def _listed(moves: list[tuple[str, str]]) -> str:
    return ", ".join(f"{registered} v{version}" for registered, version in moves)
