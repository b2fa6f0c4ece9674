"""Options checked before any work starts, each with a message that says what to do instead:
`oracle --out` with an extension it cannot write, `compare --out` on a file, the personas
command's modes mixed, and a personas cutoff after the data."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.journey.cli_helpers import fails, ok
from tests.journey.ingest_helpers import TOUCHPOINTS_MAP

pytestmark = pytest.mark.usefixtures("isolated")


@pytest.mark.parametrize("name", ["x.xlsx", "x.json", "x"])
def test_oracle_refuses_an_extension_it_does_not_write(tmp_path: Path, name: str) -> None:
    message = fails("oracle", "--sim", tmp_path / "no-sim", "--as-of", "2025-06-01",
                    "--horizon", "30", "--out", tmp_path / name)
    assert f"--out {tmp_path / name}: the file must end in .parquet or .csv" in message
    assert not (tmp_path / name).exists()


@pytest.mark.parametrize("where", ["file", "under-a-file"])
def test_compare_refuses_a_file_for_its_folder(tmp_path: Path, where: str) -> None:
    taken = tmp_path / "taken"
    taken.write_text("not a folder", encoding="utf-8")
    out = taken if where == "file" else taken / "reports"
    message = fails("compare", "--out", out)
    assert f"--out {out}: {taken} is a file; name a folder" in message
    assert taken.read_text(encoding="utf-8") == "not a folder"


def test_compare_names_the_store_it_read(isolated: Path) -> None:
    [line] = ok("compare")
    db = (isolated / "var").resolve() / "mlflow" / "mlflow.db"
    assert line.startswith(f"no MLflow tracking store at {db} (JOURNEY_HOME=var)")
    assert not (isolated / "var").exists()  # nothing created just to be read


@pytest.mark.parametrize(
    ("args", "says"),
    [(["--show", "--rename", "1", "foo"], "--show and --rename are two runs"),
     (["--rename", "1", "foo", "--promote"], "--rename fits nothing, so --promote would be "
                                             "ignored: leave it out"),
     (["--show", "--as-of", "2025-01-01", "--config", "p.yaml"],
      "--show fits nothing, so --as-of, --config would be ignored: leave them out")],
    ids=["show-and-rename", "rename-and-promote", "show-and-fit-options"],
)
def test_personas_does_one_thing_at_a_time(args: list[str], says: str) -> None:
    assert says in fails("personas", *args)


def test_personas_cutoff_after_the_data_asks_for_an_earlier_one(
        isolated: Path, touchpoints: Path) -> None:
    ok("ingest", touchpoints, "--map", TOUCHPOINTS_MAP)  # last event 2025-03-04 (UTC)
    message = fails("personas", "--as-of", "2030-01-01")
    assert ("--as-of 2030-01-01 is after the store's last event (2025-03-04): personas are "
            "fitted on the 90 days before the cutoff, so choose an earlier one, at most "
            "2025-03-05 (the default)") in message
    assert "later" not in message
