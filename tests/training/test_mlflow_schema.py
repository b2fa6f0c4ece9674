"""The tests' new MLflow stores (tests/mlflow_schema.py: a copy of one migrated store) are what
MLflow's own migrations make in a process of its own: the same tables, indexes, triggers,
schema revision and rows, and a client tracks and registers in them."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

from models.registry import client_for

IN_LIST = re.compile(r"IN \(([^()]*)\)")
MIGRATE = "import sys; from mlflow.tracking import MlflowClient; MlflowClient(sys.argv[1])"


def _in_any_order(sql: str | None) -> str | None:
    """A table's definition, its lines and ``IN (...)`` lists sorted: MLflow writes its CHECK
    constraints from sets, in an order that varies from process to process."""
    if sql is None:
        return None
    lines = (IN_LIST.sub(lambda m: "IN (" + ", ".join(sorted(m.group(1).split(", "))) + ")",
                         line.strip().rstrip(",").strip()) for line in sql.splitlines())
    return "\n".join(sorted(lines))


def _picture(db: Path) -> tuple[list[tuple[str, str, str, str | None]], dict[str, int], str]:
    with closing(sqlite3.connect(db)) as con:
        schema = sorted((kind, name, table, _in_any_order(sql)) for kind, name, table, sql
                        in con.execute("SELECT type, name, tbl_name, sql FROM sqlite_master"))
        tables = [name for kind, name, _, _ in schema if kind == "table"]
        rows = {t: con.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in tables}
        [(revision,)] = con.execute("SELECT version_num FROM alembic_version").fetchall()
    return schema, rows, revision


def test_a_copied_store_is_a_migrated_one(tmp_path: Path) -> None:
    reference = tmp_path / "reference.db"
    subprocess.run([sys.executable, "-c", MIGRATE, f"sqlite:///{reference}"], check=True,
                   capture_output=True)
    copied = tmp_path / "home" / "mlflow.db"
    client_for(f"sqlite:///{copied}")
    (schema, rows, revision), (want_schema, want_rows, want_revision) = (
        _picture(copied), _picture(reference))
    assert set(schema) ^ set(want_schema) == set()
    assert rows == want_rows
    assert revision == want_revision and len(schema) > 50

    client = client_for(f"sqlite:///{copied}")
    run = client.create_run(client.create_experiment("x", (tmp_path / "a").as_uri()).strip())
    client.log_metric(run.info.run_id, "auc", 0.75)
    client.create_registered_model("journey-x")
    version = client.create_model_version("journey-x", f"runs:/{run.info.run_id}/model",
                                          run.info.run_id)
    client.set_registered_model_alias("journey-x", "champion", version.version)
    got = client.get_model_version_by_alias("journey-x", "champion")
    assert got.run_id == run.info.run_id
    assert client.get_run(run.info.run_id).data.metrics == {"auc": 0.75}
