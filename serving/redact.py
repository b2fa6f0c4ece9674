"""Load errors as the open /readyz tells them: without the server's paths.

/readyz answers anyone, and an error's text may say where the home lies and whose files
they are (``/home/alice/journey/events.duckdb``). The log and the keyed ``GET /v1/models``
keep the whole text.
"""

from __future__ import annotations

import re

# A file system path (absolute, ~/, or a file: or sqlite: URI) up to its last component;
# a quoted one may hold spaces. Not a registry URI: ``models:/journey-churn/3`` names the
# model, not a place on disk; nor one of the API's routes (``POST /v1/events``), which a
# reason names to say what to do.
_FOLDERS = re.compile(r"(?<=[\"'])~?/(?!v1/)[^\"'\n]*/|(?:\b(?:file|sqlite):/+|"
                      r"(?<![\w.:/~-])~?/(?!v1/))(?:[^\s'\"/]*/)*")
PUBLIC_REASON_CHARS = 800


def public_reason(text: str | None) -> str | None:
    """A load error as /readyz shows it to anyone: its first line, each path cut to the
    file's name (where the home lies, whose files they are). The prefixes and wordings
    `journey serve --detach` recognises (journey/service_process.py) stay as they were."""
    if text is None:
        return None
    first = text.strip().splitlines()[0] if text.strip() else text
    short = _FOLDERS.sub("", first)
    return short if len(short) <= PUBLIC_REASON_CHARS else short[:PUBLIC_REASON_CHARS - 1] + "…"
