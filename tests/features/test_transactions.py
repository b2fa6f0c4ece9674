"""A rollback after a failure undoes the open transaction, and says nothing when there is
none (COMMIT itself failed and ended it), so the error that matters is the one raised."""

from __future__ import annotations

import duckdb
import pytest

from features.transactions import rollback


def test_rollback_undoes_the_open_transaction() -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE t (a INTEGER)")
    con.execute("BEGIN")
    con.execute("INSERT INTO t VALUES (1)")
    rollback(con)
    assert con.execute("SELECT count(*) FROM t").fetchone() == (0,)


def test_rollback_without_a_transaction_is_quiet() -> None:
    con = duckdb.connect()
    with pytest.raises(duckdb.TransactionException, match="no transaction is active"):
        con.execute("ROLLBACK")  # what hid the real error
    rollback(con)
