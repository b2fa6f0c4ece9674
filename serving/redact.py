"""Load errors as the open /readyz tells them: without the server's paths.

/readyz answers anyone, and an error's text may say where the home lies and whose files
they are (``/home/alice/journey/events.duckdb``). The log and the keyed ``GET /v1/models``
keep the whole text.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit, urlunsplit

# A file system path (absolute, ~/, or a file: or sqlite: URI) up to its last component;
# a quoted one may hold spaces. Not a registry URI: ``models:/journey-churn/3`` names the
# model, not a place on disk; nor one of the API's routes (``POST /v1/events``), which a
# reason names to say what to do.
_FOLDERS = re.compile(r"(?<=[\"'])~?/(?!v1/)[^\"'\n]*/|(?:\b(?:file|sqlite):/+|"
                      r"(?<![\w.:/~-])~?/(?!v1/))(?:[^\s'\"/]*/)*")
PUBLIC_REASON_CHARS = 800
_SECRET_PARAM = re.compile(r"pass|secret|token|key|sig|credential", re.IGNORECASE)


def public_reason(text: str | None) -> str | None:
    """A load error as /readyz shows it to anyone: its first line, each path cut to the
    file's name (where the home lies, whose files they are). The prefixes and wordings
    `journey serve --detach` recognises (journey/service_process.py) stay as they were."""
    if text is None:
        return None
    first = text.strip().splitlines()[0] if text.strip() else text
    short = _FOLDERS.sub("", first)
    return short if len(short) <= PUBLIC_REASON_CHARS else short[:PUBLIC_REASON_CHARS - 1] + "…"


def uri_without_secrets(uri: str) -> str:
    """A tracking or database URI as the log may show it: its password (``user:pw@``) and
    any query parameter that looks like a credential replaced by ``***``."""
    parts = urlsplit(uri)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:***@{host}" if ":" in userinfo else f"***@{host}"
    query = "&".join(
        f"{name}=***" if _SECRET_PARAM.search(name) else f"{name}={value}" if value else name
        for name, value in parse_qsl(parts.query, keep_blank_values=True))
    if netloc == parts.netloc and not _SECRET_PARAM.search(parts.query):
        return uri  # as given: rebuilding may change it (sqlite://// loses a slash)
    return urlunsplit(parts._replace(netloc=netloc, query=query))
