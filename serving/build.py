"""What is running: Journey's version and commit, Python's, when the service started, and the
effective configuration it started with (``startup_lines``; secrets never in it).

The commit is ``JOURNEY_COMMIT`` when set (a bento or image built without the repository
sets it), else read from the source tree's ``.git`` (no git process), else "unknown".
"""

from __future__ import annotations

import os
import platform
import tomllib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from serving.redact import uri_without_secrets
from serving.settings import ServeSettings
from serving.utc import iso_z

SOURCE_ROOT = Path(__file__).resolve().parents[1]
COMMIT_CHARS = 12


@dataclass(frozen=True)
class BuildInfo:
    version: str
    commit: str
    python: str
    started_at: datetime

    @classmethod
    def now(cls) -> BuildInfo:
        return cls(_version(), os.environ.get("JOURNEY_COMMIT", "").strip() or _commit(),
                   platform.python_version(), datetime.now(UTC))


def _version(root: Path = SOURCE_ROOT) -> str:
    """The installed distribution's version, else the one in the pyproject.toml beside the
    source (a bento: it copies the source and pyproject.toml, not the distribution)."""
    try:
        return metadata.version("journey")
    except metadata.PackageNotFoundError:
        pass
    try:
        project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
        return str(project["project"]["version"])
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, KeyError, TypeError):
        return "unknown"


def _commit(root: Path = SOURCE_ROOT) -> str:
    """The checked-out commit from ``.git``'s files: HEAD, the branch it names, or
    packed-refs (a fresh clone keeps its branches there)."""
    git = root / ".git"
    try:
        head = (git / "HEAD").read_text(encoding="ascii").strip()
        if not head.startswith("ref: "):
            return head[:COMMIT_CHARS] or "unknown"
        ref = head.removeprefix("ref: ")
        loose = git / ref
        if loose.is_file():
            return loose.read_text(encoding="ascii").strip()[:COMMIT_CHARS]
        for line in (git / "packed-refs").read_text(encoding="ascii").splitlines():
            sha, _, name = line.partition(" ")
            if name == ref:
                return sha[:COMMIT_CHARS]
    except (OSError, UnicodeDecodeError):  # no repository (a bento), or not readable
        pass
    return "unknown"


def startup_lines(info: BuildInfo, settings: ServeSettings, keys: Sequence[tuple[str, str]],
                  trigger_rules: int) -> list[str]:
    """The start-up log lines: what runs, and with which settings. A pinned clock gets a
    line of its own: every prediction is then as of that time, which nothing else shows."""
    roles = Counter(role for _, role in keys)
    by_role = ", ".join(f"{n} {role}" for role, n in sorted(roles.items())) or "none"
    clock = (f"{iso_z(settings.as_of)} (pinned by JOURNEY_AS_OF)" if settings.as_of
             else "now")
    lines = [
        f"journey {info.version} (commit {info.commit}, python {info.python}) starting: "
        f"store {settings.store_path}, registry {uri_without_secrets(settings.tracking_uri)}, "
        f"alias {settings.model_alias!r}, clock {clock}, "
        f"reload poll {_seconds(settings.reload_poll_seconds)}, drift evaluation "
        f"{_seconds(settings.drift_eval_seconds)}, keys {by_role} ({settings.keys_path}), "
        f"enabled trigger rules {trigger_rules}, log format {settings.log_format}, slow requests "
        f"{_over(settings.slow_request_seconds)}"]
    if settings.as_of is not None:
        lines.append(f"the scoring clock is PINNED at {iso_z(settings.as_of)} "
                     "(JOURNEY_AS_OF): every request without its own as_of is answered as of "
                     "that time, not now; unset JOURNEY_AS_OF to follow the wall clock")
    return lines


def _seconds(value: float) -> str:
    return f"every {value:g} s" if value > 0 else "off"


def _over(value: float) -> str:
    return f"over {value:g} s logged" if value > 0 else "not logged"
