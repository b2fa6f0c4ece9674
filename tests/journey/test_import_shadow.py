"""`journey serve` refuses a working folder holding a package or module named like one of
Journey's (`bentoml serve` would import it instead), and only such a folder."""

from __future__ import annotations

from pathlib import Path

import pytest

import models
from journey.import_shadow import check_working_folder, shadowing
from tests.journey.cli_helpers import fails


def test_a_models_package_in_the_folder_is_named(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "__init__.py").write_text("")
    assert shadowing(tmp_path) == [tmp_path / "models"]


def test_modules_and_packages_of_every_name_are_found(tmp_path: Path) -> None:
    (tmp_path / "features").mkdir()
    (tmp_path / "features" / "__init__.py").write_text("")
    (tmp_path / "serving.py").write_text("")
    (tmp_path / "training.py").write_text("")
    assert sorted(p.name for p in shadowing(tmp_path)) == ["features", "serving.py",
                                                          "training.py"]


def test_a_folder_without_init_or_of_other_names_is_no_shadow(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()  # a namespace portion: the installed package wins
    (tmp_path / "models" / "churn.pkl").write_bytes(b"")
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "__init__.py").write_text("")
    (tmp_path / "notebook.py").write_text("")
    assert shadowing(tmp_path) == []
    check_working_folder(tmp_path)


def test_journeys_own_source_folder_is_no_shadow() -> None:
    """A checkout of Journey is its own import: serving from the repository works."""
    source = Path(models.__file__).resolve().parent.parent
    assert (source / "models" / "__init__.py").is_file()
    assert shadowing(source) == []


def test_serve_refuses_such_a_folder_before_anything_else(isolated: Path,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    monkeypatch.setenv("JOURNEY_HOME", str(isolated / "home"))  # not there: checked later
    (isolated / "models").mkdir()
    (isolated / "models" / "__init__.py").write_text("")
    (isolated / "features.py").write_text("")
    err = fails("serve", "--detach")
    assert err.startswith(f"error: the working folder {isolated.resolve()} holds features.py, "
                          "models/: `bentoml serve` puts the working folder first")
    assert "start `journey serve` from another folder" in err
    assert not (isolated / "home").exists()
