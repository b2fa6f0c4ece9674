"""A key file no `journey keys` command can use is refused by every one of them alike, naming
the file; the service's KeyRing reads it through the same check."""

from __future__ import annotations

from pathlib import Path

import pytest

from features.errors import ConfigError
from serving.keys import KeyRing, Role, create_key, revoke_key
from tests.journey.cli_helpers import fails

H1, H2 = "c3" * 32, "7a" * 32  # two well-formed SHA-256 hex digests
BAD = [
    ("keys: [oops", "not valid YAML"),
    ("- name: a\n  role: admin\n  sha256: x\n",
     "must be a mapping with a `keys:` list, not a list"),
    ("keys: nope\n", "keys must be a list"),
    ("kyes:\n- {name: a, role: admin, sha256: x}\n", "unknown top-level key 'kyes'"),
    ("keys: [{name: '', role: admin, sha256: x}]\n", r"keys\[0\]\.name: must not be blank"),
    ("keys: [{name: a, role: [admin], sha256: x}]\n", r"keys\[0\]\.role: \['admin'\]"),
    # YAML keeps the last `keys:`; `keys create` then rewrote the file without key a.
    (f"keys:\n- {{name: a, role: admin, sha256: {H1}}}\nkeys:\n- {{name: b, role: predict, "
     f"sha256: {H2}}}\n", r"keys: written twice \(line 3\)"),
    (f"keys: [{{name: a, role: admin, sha256: {H1}}}, {{name: b, role: predict, sha256: {H2}}},"
     f" {{name: c, role: marketer, sha256: {H1}}}]\n",
     r"keys\[0\] \('a', admin\) and keys\[2\] \('c', marketer\) have the same sha256"),
    ("keys: [{name: a, role: admin, sha256: jk_s3cr3t}]\n",
     r"keys\[0\]\.sha256: must be the key's SHA-256, 64 lowercase hex digits .* got a raw key"),
    (f"keys: [{{name: a, role: admin, sha256: {H1.upper()}}}]\n",
     r"keys\[0\]\.sha256: .* got uppercase hex digits"),
    ("keys: [{name: a, role: admin, sha256: 12345}]\n", r"keys\[0\]\.sha256: .* got a number"),
    # A misspelt key beside the right one passed unseen; so did two keys of one name, which
    # `keys revoke` then removed together.
    (f"keys: [{{name: a, role: admin, rol: predict, sha256: {H1}}}]\n",
     r"keys\[0\]: unknown key 'rol' \(did you mean 'role'\?\); an entry has name, role"),
    (f"keys: [{{name: a, role: admin, sha256: {H1}}}, {{name: a, role: predict, sha256: {H2}}}]"
     "\n", r"keys\[1\]\.name: 'a' is also keys\[0\]'s name"),
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


def test_a_raw_key_in_the_file_is_not_repeated_in_the_error(tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    path.write_text("keys: [{name: a, role: admin, sha256: jk_s3cr3t}]\n")
    with pytest.raises(ConfigError) as err:
        KeyRing.load(path)
    assert "s3cr3t" not in str(err.value)


def test_one_key_listed_twice_with_one_role_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    path.write_text(f"keys: [{{name: a, role: admin, sha256: {H1}}}, "
                    f"{{name: b, role: admin, sha256: {H1}}}]\n")
    assert len(KeyRing.load(path)) == 1


def test_a_file_that_is_not_utf8_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    text = f"keys:\n- name: caf\xe9\n  role: admin\n  sha256: {H1}\n".encode("latin-1")
    path.write_bytes(text)
    for read in (lambda: KeyRing.load(path), lambda: create_key(path, "b", Role.admin),
                 lambda: revoke_key(path, "a")):
        with pytest.raises(ConfigError, match="not UTF-8 text") as err:
            read()
        assert str(err.value).startswith(f"{path}: ")
    assert fails("keys", "list", "--file", path).startswith(f"error: {path}: not UTF-8 text")
    assert path.read_bytes() == text
