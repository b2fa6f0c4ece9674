"""A key file no `journey keys` command can use is refused by every one of them alike, naming
the file; the service's KeyRing reads it through the same check."""

from __future__ import annotations

from pathlib import Path

import pytest

from features.errors import ConfigError
from serving.keys import KeyRing, Role, create_key, revoke_key
from tests.journey.cli_helpers import fails

BAD = [
    ("keys: [oops", "not valid YAML"),
    ("- name: a\n  role: admin\n  sha256: x\n",
     "must be a mapping with a `keys:` list, not a list"),
    ("keys: nope\n", "keys must be a list"),
    ("kyes:\n- {name: a, role: admin, sha256: x}\n", "unknown top-level key 'kyes'"),
    ("keys: [{name: '', role: admin, sha256: x}]\n", r"keys\[0\]\.name: must not be blank"),
    ("keys: [{name: a, role: [admin], sha256: x}]\n", r"keys\[0\]\.role: \['admin'\]"),
]


@pytest.mark.parametrize(("text", "why"), BAD)
def test_every_reader_refuses_a_bad_file(tmp_path: Path, text: str, why: str) -> None:
    path = tmp_path / "keys.yaml"
    path.write_text(text)
    for read in (lambda: KeyRing.load(path), lambda: create_key(path, "b", Role.admin),
                 lambda: revoke_key(path, "a")):
        with pytest.raises(ConfigError, match=why) as err:
            read()
        assert str(err.value).startswith(f"{path}: ")
    assert path.read_text() == text  # not rewritten


@pytest.mark.parametrize(("text", "why"), BAD)
@pytest.mark.parametrize("command", [("list",), ("create", "b", "--role", "admin"),
                                     ("revoke", "a")])
def test_keys_commands_say_which_file(tmp_path: Path, text: str, why: str,
                                      command: tuple[str, ...]) -> None:
    path = tmp_path / "keys.yaml"
    path.write_text(text)
    err = fails("keys", *command, "--file", path)
    assert err.startswith(f"error: {path}: ")


@pytest.mark.parametrize("name", ["", "  "])
def test_a_key_needs_a_name(tmp_path: Path, name: str) -> None:
    path = tmp_path / "keys.yaml"
    with pytest.raises(ConfigError, match="a key needs a name"):
        create_key(path, name, Role.admin)
    assert not path.exists()


def test_an_empty_file_is_no_keys_and_takes_one(tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    path.write_text("")
    key = create_key(path, "a", Role.admin)
    assert KeyRing.load(path).authenticate(key) is not None
