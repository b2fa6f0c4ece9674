"""serve.log in one format (serving/logs.py): Journey's records and MLflow's in ISO 8601 UTC
like BentoML's lines, or one JSON object per line with JOURNEY_LOG_FORMAT=json; a reload that
fails on the registry writes its one warning, not the library's tracebacks."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from models.registry import alias_version, client_for
from serving import logs
from serving.champions import ModelHolder, ModelSet
from serving.request_ids import REQUEST_ID
from tests.serving.test_ops_requests import light_app

LINE = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})\+0000 \[(\w+)\] ([\w.]+): ")
Configure = Callable[[logs.LogFormat], io.StringIO]


@pytest.fixture
def configure() -> Iterator[Configure]:
    """``logs.configure`` into a string, the loggers it sets restored afterwards."""
    saved = {name: (list(lg.handlers), lg.level, lg.propagate)
             for name in logs.LOGGERS for lg in [logging.getLogger(name)]}
    env = os.environ.get("MLFLOW_CONFIGURE_LOGGING")

    def run(kind: logs.LogFormat) -> io.StringIO:
        out = io.StringIO()
        logs.configure(kind, out)
        return out

    try:
        yield run
    finally:
        for name, (handlers, level, propagate) in saved.items():
            logger = logging.getLogger(name)
            logger.handlers, logger.propagate = handlers, propagate
            logger.setLevel(level)
        if env is None:
            os.environ.pop("MLFLOW_CONFIGURE_LOGGING", None)
        else:
            os.environ["MLFLOW_CONFIGURE_LOGGING"] = env


def test_text_lines_are_iso_utc_like_bentomls(configure: Configure) -> None:
    out = configure("text")
    logging.getLogger("journey.serving").info("loaded %d customers", 3)
    logging.getLogger("mlflow.store").warning("a library's warning")
    token = REQUEST_ID.set("req-7")
    try:
        logging.getLogger("journey.serving").warning("two\nlines")
    finally:
        REQUEST_ID.reset(token)
    lines = out.getvalue().splitlines()
    assert len(lines) == 4
    for line, level, logger in zip(lines[:3], ("INFO", "WARNING", "WARNING"),
                                   ("journey.serving", "mlflow.store", "journey.serving"),
                                   strict=True):
        found = LINE.match(line)
        assert found is not None, line
        assert (found[2], found[3]) == (level, logger)
        stamp = datetime.fromisoformat(found[1]).replace(tzinfo=UTC)
        assert abs(datetime.now(UTC) - stamp) < timedelta(minutes=1)  # UTC, not local time
    assert lines[0].endswith(" journey.serving: loaded 3 customers")
    assert lines[2].endswith(" journey.serving: [req=req-7] two")
    assert lines[3] == "  [req=req-7] lines"  # a further line says whose it is


def test_json_lines_parse_one_by_one(configure: Configure) -> None:
    out = configure("json")
    log = logging.getLogger("journey.serving")
    log.info("plain")
    token = REQUEST_ID.set("req-8")
    try:
        try:
            raise ValueError("bad\nvalue")
        except ValueError:
            log.exception("failed\nbadly")
    finally:
        REQUEST_ID.reset(token)
    logging.getLogger("sqlalchemy.pool").error("a library's error")
    docs = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(docs) == 3
    assert all({"ts", "level", "logger", "message"} <= doc.keys() for doc in docs)
    assert datetime.fromisoformat(docs[0]["ts"]).utcoffset() == timedelta(0)
    assert "request_id" not in docs[0] and "exc" not in docs[0]
    assert docs[1]["request_id"] == "req-8" and docs[1]["message"] == "failed\nbadly"
    assert docs[1]["exc"].startswith("Traceback") and "ValueError: bad" in docs[1]["exc"]
    assert (docs[2]["logger"], docs[2]["level"]) == ("sqlalchemy.pool", "ERROR")


def test_a_failed_request_is_one_json_line(configure: Configure, tmp_path: Path) -> None:
    out = configure("json")
    app, _ = light_app(tmp_path / "home")
    r = TestClient(app).get("/boom", headers={"X-Request-ID": "req-9"})
    assert r.status_code == 500
    [line] = out.getvalue().splitlines()
    doc = json.loads(line)
    assert {k: doc[k] for k in ("logger", "level", "request_id", "method", "route", "status",
                                "code")} == {
        "logger": "journey.requests", "level": "ERROR", "request_id": "req-9", "method": "GET",
        "route": "/boom", "status": 500, "code": "internal"}
    assert doc["exc"].count("Traceback") == 1 and "JSONDecodeError" in doc["exc"]


def test_a_reload_the_registry_fails_writes_one_warning(configure: Configure,
                                                       tmp_path: Path) -> None:
    out = configure("text")
    db = tmp_path / "mlflow" / "mlflow.db"
    client = client_for(f"sqlite:///{db}")
    assert alias_version(client, "journey-churn", "champion") is None  # the schema is made
    # The registry's database fails under MLflow's store (as when another process holds it
    # locked, without waiting its 20 s busy timeout): SQLAlchemy's OperationalError.
    with sqlite3.connect(db) as con:
        con.execute("ALTER TABLE registered_models RENAME TO gone")

    def load() -> ModelSet:
        alias_version(client, "journey-churn", "champion")
        raise AssertionError("the registry answered")

    holder = ModelHolder(load, dict)
    assert holder.reload() is False
    assert holder.last_error is not None and "OperationalError" in holder.last_error
    lines = out.getvalue().splitlines()
    assert len(lines) == 1, out.getvalue()
    assert "[WARNING] journey.serving: models not reloaded (still serving none)" in lines[0]
    assert LINE.match(lines[0])
