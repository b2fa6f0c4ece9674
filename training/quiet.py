"""MLflow's notes on registering a model, left out of stderr.

Every registration prints "Successfully registered model ...", "Registered model ... already
exists. Creating a new version ..." and "Created version 'N' of model ..." to stderr, and
MLflow has no setting for them short of silencing all its logging (warnings included).
`journey train` already prints each model's version on its own line, so six models added 12
lines of noise to its output. Everything else written to stderr passes through.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

REGISTRATION_NOTE = re.compile(
    r"(Successfully registered model '|Registered model '.*' already exists\. Creating a new "
    r"version|Created version '\d+' of model ')")


class _WithoutNotes:
    """A stderr that drops whole lines matching REGISTRATION_NOTE (print writes a line's text
    and its newline separately, so lines are assembled before the choice)."""

    def __init__(self, target: TextIO) -> None:
        self.target, self.pending = target, ""

    def write(self, text: str) -> int:
        *lines, self.pending = (self.pending + text).split("\n")
        for line in lines:
            if not REGISTRATION_NOTE.match(line):
                self.target.write(line + "\n")
        return len(text)

    def flush(self) -> None:
        self.target.flush()

    def finish(self) -> None:
        if self.pending and not REGISTRATION_NOTE.match(self.pending):
            self.target.write(self.pending)
        self.pending = ""


@contextmanager
def without_registration_notes() -> Iterator[None]:
    original = sys.stderr
    quiet = _WithoutNotes(original)
    sys.stderr = quiet  # a write/flush stream is all print needs
    try:
        yield
    finally:
        quiet.finish()
        sys.stderr = original
