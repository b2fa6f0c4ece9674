"""API keys: shown once, stored only as a hash, roles checked, the file validated."""

from __future__ import annotations

from pathlib import Path

import pytest

from features.errors import ConfigError
from serving.keys import (
    KeyFileError,
    KeyRing,
    Principal,
    Role,
    create_key,
    digest,
    revoke_key,
)


def test_keys_are_stored_hashed(tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    key = create_key(path, "crm", Role.ingest)
    text = path.read_text()
    assert key.startswith("jk_") and len(key) > 40
    assert key not in text and digest(key) in text
    assert path.stat().st_mode & 0o777 == 0o600
    ring = KeyRing.load(path)
    assert ring.authenticate(key) == Principal("crm", Role.ingest)
    assert ring.authenticate(key + "x") is None and ring.authenticate("") is None
    assert ring.names() == [("crm", Role.ingest)]


def test_names_are_unique_and_revocable(tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    key = create_key(path, "web", Role.predict)
    with pytest.raises(ConfigError, match="exists"):
        create_key(path, "web", Role.admin)
    assert revoke_key(path, "web") and not revoke_key(path, "web")
    assert KeyRing.load(path).authenticate(key) is None


def test_admin_may_everything_others_their_own() -> None:
    predict = frozenset({Role.predict})
    assert Principal("a", Role.admin).may(predict)
    assert Principal("p", Role.predict).may(predict)
    assert not Principal("m", Role.marketer).may(predict)
    assert not Principal("i", Role.ingest).may(frozenset())


@pytest.mark.parametrize(("text", "match"), [
    ("keys: [{name: a, role: wizard, sha256: x}]", r"keys\[0\]\.role: 'wizard'"),
    ("keys: [{name: a}]", r"keys\[0\]: needs name, role and sha256"),
    ("keys: [oops", "not valid YAML"),
])
def test_bad_key_files_say_where(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "keys.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match):
        KeyRing.load(path)


def test_missing_file_means_no_keys(tmp_path: Path) -> None:
    assert len(KeyRing.load(tmp_path / "none.yaml")) == 0


def test_a_running_ring_sees_new_and_revoked_keys(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    """A leaked key must stop working without a restart, and a new one start."""
    path = tmp_path / "keys.yaml"
    old = create_key(path, "old", Role.predict)
    ring = KeyRing.load(path)
    monkeypatch.setattr(KeyRing, "reload_seconds", 0.0)
    new = create_key(path, "new", Role.ingest)
    assert ring.authenticate(new) == Principal("new", Role.ingest)
    revoke_key(path, "old")
    assert ring.authenticate(old) is None
    path.write_text("keys: [")  # a hand edit gone wrong: no key is valid until it is fixed
    assert ring.authenticate(new) is None
    with pytest.raises(KeyFileError, match="cannot be read"):
        ring.check()
    assert "cannot be read" in caplog.text
    path.unlink()  # no file: no keys, as at start
    assert ring.authenticate(new) is None


def test_the_file_is_checked_at_most_once_a_reload_interval(tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    ring = KeyRing.load(path)
    key = create_key(path, "late", Role.predict)
    assert ring.authenticate(key) is None  # within the interval: not looked at yet
    ring._checked -= KeyRing.reload_seconds
    assert ring.authenticate(key) == Principal("late", Role.predict)
