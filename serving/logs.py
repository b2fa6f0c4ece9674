"""The service's log lines: one format for Journey's records and the libraries it drives
(MLflow, SQLAlchemy, Alembic), in serve.log beside BentoML's.

``text`` (default) matches BentoML's lines, ISO 8601 in UTC with the zone
(``2026-12-06T09:05:21.229+0000 [INFO] journey.serving: ...``), so serve.log sorts and reads
as one; a record of a request names it (``[req=...]``), and each further line of a record (a
traceback) repeats that prefix, so ``grep req=<id>`` finds every line of it. ``json``
(``JOURNEY_LOG_FORMAT=json``) writes one object per line for log shippers: ts, level, logger,
message, request_id when any, exc when any, and a request line's own fields.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, TextIO

from serving.request_ids import current

LogFormat = Literal["text", "json"]
# The loggers whose records reach serve.log: Journey's, and those of the libraries the
# service drives, which would otherwise print in their own formats (MLflow's
# ``2026/12/06 09:07:54 ERROR mlflow...``, local time without a zone).
LOGGERS = ("journey", "mlflow", "sqlalchemy", "alembic")
# What a request's log line adds (``serving.observe``): written as fields in JSON.
REQUEST_FIELDS = ("method", "route", "status", "code", "duration_ms", "key", "client")
# A request's exception passes ~40 frames of ASGI plumbing on its way up (the server's,
# BentoML's and FastAPI's middleware, and the service's own pass-through layers) before the
# route's code: a traceback leaves those leading frames out, all but the last few.
_PLUMBING = tuple(f"{os.sep}{name}{os.sep}" for name in (
    "starlette", "fastapi", "opentelemetry", "_bentoml_impl", "bentoml", "uvicorn", "anyio"))
_OWN_PLUMBING = frozenset(str(Path(__file__).with_name(name)) for name in (
    "observe.py", "hardening.py", "http.py", "front.py", "timeout.py", "fast_predict.py"))
KEEP_LAST_FRAMES = 5


def _request_id(record: logging.LogRecord) -> str | None:
    rid = getattr(record, "request_id", None)
    return rid if isinstance(rid, str) else current()


def brief_traceback(exc: BaseException) -> str:
    """``exc``'s traceback from the first frame that is not ASGI plumbing (at least its last
    few frames), its causes whole; a line says how many frames were left out."""
    summary = traceback.TracebackException.from_exception(exc)
    frames = list(summary.stack)
    first = next((i for i, f in enumerate(frames) if not _is_plumbing(f.filename)),
                 len(frames))
    first = min(first, max(0, len(frames) - KEEP_LAST_FRAMES))
    summary.stack = traceback.StackSummary.from_list(frames[first:])
    lines = list(summary.format())
    if first:
        at = next((i for i, line in enumerate(lines) if line.startswith("Traceback")), -1)
        lines.insert(at + 1, f"  ({first} frames of the server's middleware left out)\n")
    return "".join(lines).rstrip("\n")


def _is_plumbing(filename: str) -> bool:
    return filename in _OWN_PLUMBING or any(part in filename for part in _PLUMBING)


def _exception(formatter: logging.Formatter, record: logging.LogRecord) -> str | None:
    """The record's traceback: the brief one a request's line carries, else the whole."""
    brief = getattr(record, "exc_brief", None)
    if isinstance(brief, str):
        return brief
    return formatter.formatException(record.exc_info) if record.exc_info else None


def _utc(record: logging.LogRecord) -> datetime:
    return datetime.fromtimestamp(record.created, UTC)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        rid = _request_id(record)
        tag = f"[req={rid}] " if rid else ""
        stamp = _utc(record).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(record.msecs):03d}+0000"
        lines = record.getMessage().splitlines() or [""]
        exc = _exception(self, record)
        if exc:
            lines += exc.splitlines()
        if record.stack_info:
            lines += self.formatStack(record.stack_info).splitlines()
        # ``logger: message`` as before: greps for ``journey.serving: loaded`` still match.
        head = f"{stamp} [{record.levelname}] {record.name}: {tag}{lines[0]}"
        # Each further line says whose it is: a traceback interleaved with other requests'
        # lines, or cut apart by a log shipper, still reads as this record's.
        more = f"\n  {tag or '| '}"
        return head + "".join(more + line for line in lines[1:])


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, object] = {
            "ts": _utc(record).isoformat(timespec="milliseconds"),
            "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        rid = _request_id(record)
        if rid:
            doc["request_id"] = rid
        for name in REQUEST_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                doc[name] = value
        exc = _exception(self, record)
        if exc:
            doc["exc"] = exc
        if record.stack_info:
            doc["stack"] = self.formatStack(record.stack_info)
        return json.dumps(doc, ensure_ascii=False, default=str)


def formatter(kind: LogFormat) -> logging.Formatter:
    return JsonFormatter() if kind == "json" else TextFormatter()


def configure(kind: LogFormat, stream: TextIO | None = None) -> logging.Handler:
    """Journey's and the libraries' records to ``stream`` (stderr, which `journey serve`
    writes to serve.log) in ``kind``'s format. BentoML's logging set-up keeps only its own
    loggers' records, so without a handler of their own these never reached serve.log."""
    # MLflow replaces its logger's handler with its own (its format, local time) when it is
    # first imported, after this runs: asked not to, it keeps this one.
    os.environ.setdefault("MLFLOW_CONFIGURE_LOGGING", "false")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter(kind))
    for name in LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.propagate = False
    logging.getLogger("journey").setLevel(logging.INFO)
    # The libraries say what went wrong to their caller, which logs it in its own words
    # (``models not reloaded (still serving ...)``): only their warnings and errors here.
    for name in LOGGERS[1:]:
        logging.getLogger(name).setLevel(logging.WARNING)
    return handler
