"""Settings files (drift, personas, segments, taxonomy, triggers, journey map) are read
strictly and every problem is named with its file, line and key, all at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from features.errors import ConfigError
from features.yaml_config import read_config
from models.drift import load_drift_settings


def write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "drift.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def test_every_problem_with_its_line(tmp_path: Path) -> None:
    """A typo and a bad value: both named, each at its line, in one error."""
    path = write(tmp_path, "bins: 10\nsample_siz: 500\n\nexclude:\n  - a\np_value: 2\n")
    with pytest.raises(ConfigError) as caught:
        load_drift_settings(path)
    assert str(caught.value) == (
        f"{path}: line 2: sample_siz: unknown key; did you mean sample_size?; "
        "line 6: p_value: Input should be less than 1")


def test_a_file_not_in_utf8_names_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, b"bins: 10\n# caf\xe9\n")
    with pytest.raises(ConfigError, match=r"drift\.yaml: line 2: not UTF-8 text \(byte 0xe9\); "
                       r"save the file as UTF-8"):
        load_drift_settings(path)


def test_yaml_1_2_booleans_and_floats(tmp_path: Path) -> None:
    """Under YAML 1.1 `on:` is true and `1e-3` is text: neither is what the writer meant."""
    path = write(tmp_path, "on: yes\nrate: 1e-3\nflag: true\n")
    config = read_config(path, "models.config", "drift.yaml", "drift settings")
    assert config.raw == {"on": "yes", "rate": 0.001, "flag": True}
    assert config.lines == {"": 1, "on": 1, "rate": 2, "flag": 3}


def test_syntax_errors_and_keys_written_twice_give_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "bins: 10\nexclude: [a\n")
    with pytest.raises(ConfigError, match=r"drift\.yaml: line 3, column 1: not valid YAML"):
        load_drift_settings(path)
    path = write(tmp_path, "bins: 10\nbins: 12\n")
    with pytest.raises(ConfigError, match=r"drift\.yaml: line 2: bins: written twice \(first at "
                       r"line 1\)"):
        load_drift_settings(path)
