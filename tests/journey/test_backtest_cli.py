"""`journey backtest --scores`: a scores folder named on the command line that is not there is
an error naming it (exit 2), not "0 new" read as "nothing closed yet"."""

from __future__ import annotations

from pathlib import Path

from tests.journey.cli_helpers import fails


def test_a_missing_scores_folder_is_an_error_naming_it(isolated: Path) -> None:
    missing = isolated / "nonexistent"
    message = " ".join(fails("backtest", "--scores", missing, "--store",
                             isolated / "none.duckdb").split())
    assert f"error: --scores {missing}: not found" in message
    assert not (isolated / "var" / "backtests").exists()  # nothing written


def test_a_scores_file_is_not_a_folder(isolated: Path) -> None:
    afile = isolated / "scores.json"
    afile.write_text("{}", encoding="utf-8")
    message = " ".join(fails("backtest", "--scores", afile).split())
    assert f"error: --scores {afile}: is not a folder" in message
