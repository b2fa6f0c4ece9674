"""API keys with roles, stored hashed.

Keys are 32 random bytes (URL-safe text); only their SHA-256 is written to the key file, so the
file (or a log that leaked it) cannot be turned back into a working key. Random keys of this
size need no salt or slow hash: there is nothing to guess from a dictionary.
"""

from __future__ import annotations

import difflib
import hashlib
import logging
import os
import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml

from features.errors import ConfigError
from features.yaml_config import reject_duplicate_keys
from serving.errors import ServiceError

PREFIX = "jk_"
SHA256 = re.compile(r"[0-9a-f]{64}")  # hexdigest()'s form: nothing else can match a key
log = logging.getLogger("journey.serving")


class Role(StrEnum):
    ingest = "ingest"  # POST /events
    predict = "predict"  # POST /predict, /predict/batch; GET /models
    marketer = "marketer"  # read-only: models, metrics, segments, exports, dashboard
    admin = "admin"  # everything, and /admin/*
    # GET /metrics only (with the open /healthz, /readyz, /version): a Prometheus scraper's
    # key, which must not also download customer exports as a marketer's would.
    monitor = "monitor"


@dataclass(frozen=True)
class Principal:
    name: str
    role: Role

    def may(self, allowed: frozenset[Role]) -> bool:
        return self.role is Role.admin or self.role in allowed


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _stamp(path: Path) -> tuple[int, int, int] | None:
    """What changes when the file is rewritten (create and revoke replace it)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino


class KeyFileError(ServiceError):
    """The key file changed into one that cannot be read: no key is known to be valid."""

    status, code = 503, "key_file_unreadable"


class KeyRing:
    """The key file: name, role and hash of each key. A running service sees `journey keys
    create` and `revoke` within ``reload_seconds`` (a leaked key must not live until the next
    restart): the file's stamp is checked at most that often, on a request.

    A file changed into one that cannot be read (edited by hand into invalid YAML) fails
    closed: the keys read before are dropped, revoked ones among them, and ``check`` raises
    ``KeyFileError`` until the file is readable again."""

    reload_seconds = 1.0

    def __init__(self, path: Path, entries: dict[str, Principal]) -> None:
        self.path = path
        self._by_hash = entries
        self._stamp = _stamp(path)
        self._checked = time.monotonic()
        self.unreadable: str | None = None  # why the file cannot be read, while it cannot

    @classmethod
    def load(cls, path: Path) -> KeyRing:
        entries = {str(item["sha256"]): Principal(str(item["name"]), Role(item["role"]))
                   for item in read_entries(path)}
        return cls(path, entries)

    def check(self) -> None:
        """Read the file again when it is due and changed; KeyFileError while it cannot be
        read (the reason goes to the log, not to a caller who may have no key)."""
        self._due()
        if self.unreadable is not None:
            raise KeyFileError(f"the service's API key file ({self.path.name}) was changed and "
                               "cannot be read: every key is refused until an admin fixes "
                               "the file (the service log says what is wrong)")

    def authenticate(self, key: str) -> Principal | None:
        """The key's holder; None for an unknown key, and for every key while the file
        cannot be read (``check`` says so)."""
        self._due()
        return self._by_hash.get(digest(key))

    def _due(self) -> None:
        now = time.monotonic()
        if now - self._checked >= self.reload_seconds:
            self._checked = now
            self._refresh()

    def _refresh(self) -> None:
        stamp = _stamp(self.path)
        if stamp == self._stamp:
            return
        self._stamp = stamp
        try:
            fresh = KeyRing.load(self.path)
        except (ConfigError, OSError) as exc:  # e.g. edited by hand into invalid YAML
            # Keeping the old keys would keep a key removed in this very edit valid.
            self._by_hash = {}
            self.unreadable = str(exc)
            log.critical("API key file %s cannot be read (%s): every keyed request is refused "
                         "(503 key_file_unreadable) until the file is fixed", self.path, exc)
            return
        if self.unreadable is not None:
            log.warning("API key file %s is readable again: keys accepted again", self.path)
        self.unreadable = None
        self._by_hash = fresh._by_hash
        log.info("API key file %s read again: %d keys", self.path, len(self._by_hash))

    def __len__(self) -> int:
        return len(self._by_hash)

    def names(self) -> list[tuple[str, Role]]:
        return sorted((p.name, p.role) for p in self._by_hash.values())


def read_entries(path: Path) -> list[dict[str, Any]]:
    """The key file's entries, checked: what the service loads and every `journey keys`
    command reads or rewrites (a file none of them can use is refused by all, naming it).
    No file: no keys."""
    raw = _read_yaml(path)
    if raw is None:
        return []
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: must be a mapping with a `keys:` list, not a "
                          f"{type(raw).__name__}")
    unknown = sorted(str(k) for k in raw if k != "keys")
    if unknown:  # a misspelt `keys:` would otherwise load as no keys at all
        raise ConfigError(f"{path}: unknown top-level key {unknown[0]!r}; the only one is "
                          "`keys:`")
    items = raw.get("keys") or []
    if not isinstance(items, list):
        raise ConfigError(f"{path}: keys must be a list of name/role/sha256 entries, not "
                          f"{items!r}")
    names: dict[str, int] = {}
    for i, item in enumerate(items):
        _check_entry(f"{path}: keys[{i}]", item)
        j = names.setdefault(str(item["name"]), i)
        if j != i:  # `journey keys revoke NAME` would revoke both, and logs could not tell them
            raise ConfigError(f"{path}: keys[{i}].name: {item['name']!r} is also keys[{j}]'s "
                              "name; each key needs a name of its own")
    _refuse_shared_hashes(path, items)
    return items


def _read_yaml(path: Path) -> Any:
    """The file's YAML (None: no file, or empty). A key written twice is refused: YAML keeps
    the last silently, and `journey keys create` would then rewrite the file without the
    first block's keys."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason}); the "
                          "key file is YAML in UTF-8, as `journey keys create` writes it"
                          ) from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror or exc}") from exc
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is not None:
            reject_duplicate_keys(node, str(path))
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc


ENTRY_KEYS = ("name", "role", "sha256", "created")


def _check_entry(where: str, item: object) -> None:
    if not isinstance(item, dict):
        raise ConfigError(f"{where}: needs name, role and sha256")
    unknown = sorted(str(k) for k in item if k not in ENTRY_KEYS)
    if unknown:  # a misspelt `rol:` beside a right `role:` would otherwise pass unseen
        close = difflib.get_close_matches(unknown[0], ENTRY_KEYS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}{hint}; an entry has "
                          f"{', '.join(ENTRY_KEYS)}")
    if not {"name", "role", "sha256"} <= item.keys():
        raise ConfigError(f"{where}: needs name, role and sha256")
    if not str(item["name"] or "").strip():
        raise ConfigError(f"{where}.name: must not be blank")
    if not isinstance(item["role"], str) or item["role"] not in {r.value for r in Role}:
        raise ConfigError(
            f"{where}.role: {item['role']!r} is not one of {[r.value for r in Role]}")
    sha = item["sha256"]
    if not isinstance(sha, str) or not SHA256.fullmatch(sha):
        # The value is not echoed: a key pasted here by mistake must not reach a log.
        raise ConfigError(f"{where}.sha256: must be the key's SHA-256, 64 lowercase hex "
                          f"digits as `journey keys create` writes it; {_what(sha)}, which "
                          "no key can match")


def _what(sha: object) -> str:
    """What a wrong sha256 value is, without showing it."""
    if not isinstance(sha, str):
        return "got a number" if isinstance(sha, int | float) else "got no text"
    if sha.startswith(PREFIX):
        return f"got a raw key ({PREFIX}…), not its hash"
    if SHA256.fullmatch(sha.lower()):
        return "got uppercase hex digits"
    return f"got {len(sha)} characters that are not that"


def _refuse_shared_hashes(path: Path, items: list[dict[str, Any]]) -> None:
    """One key with two roles: only one entry could apply, and which is an accident of the
    file's order (the later one, silently)."""
    first: dict[str, int] = {}
    for i, item in enumerate(items):
        j = first.setdefault(item["sha256"], i)
        if j != i and items[j]["role"] != item["role"]:
            raise ConfigError(
                f"{path}: keys[{j}] ({items[j]['name']!r}, {items[j]['role']}) and keys[{i}] "
                f"({item['name']!r}, {item['role']}) have the same sha256: one key cannot "
                "have two roles; revoke one of them")


def create_key(path: Path, name: str, role: Role) -> str:
    """Add a key to the file and return it: the only time it is ever shown."""
    if not name.strip():  # a blank name cannot be listed or revoked by name
        raise ConfigError(f"{path}: a key needs a name (who or what uses it); got {name!r}")
    entries = read_entries(path)
    if any(k["name"] == name for k in entries):
        raise ConfigError(f"{path}: a key named {name!r} exists; revoke it first")
    key = PREFIX + secrets.token_urlsafe(32)
    entries.append({"name": name, "role": role.value, "sha256": digest(key),
                    "created": datetime.now(UTC).isoformat(timespec="seconds")})
    _write(path, entries)
    return key


def revoke_key(path: Path, name: str) -> bool:
    entries = read_entries(path)
    kept = [k for k in entries if k["name"] != name]
    if len(kept) == len(entries):
        return False
    _write(path, kept)
    return True


def _write(path: Path, entries: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump({"keys": entries}, sort_keys=False))
    os.chmod(tmp, 0o600)
    tmp.replace(path)
