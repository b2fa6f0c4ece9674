"""The JOURNEY_* names a command is run with, checked before any setting is read.

The settings classes ignore names they do not know (the environment holds plenty that are not
theirs), so a misspelt ``JOURNEY_RISK_BAND`` or ``JOURNEY_MAX_BATHC`` would silently leave the
default in force. Every JOURNEY_-prefixed name in the environment or .env must therefore be a
setting of one of the project's settings classes, or one of the few names read elsewhere.
A .env line python-dotenv cannot parse is an error too: it only logs a warning naming no file,
and the setting on that line is dropped.
"""

from __future__ import annotations

import difflib
import io
import json
import re
from collections.abc import Iterator, Mapping
from importlib import resources
from pathlib import Path

from dotenv.parser import parse_stream  # the parser pydantic-settings reads .env with
from pydantic_settings import BaseSettings

from features.errors import ConfigError
from journey.settings import Settings
from serving.settings import ServeSettings

PREFIX = "JOURNEY_"
DOTENV = Path(".env")  # both settings classes' env_file, relative to the working folder
# Every settings class of the project that reads JOURNEY_* names (a test checks the list).
SETTINGS_CLASSES: tuple[type[BaseSettings], ...] = (Settings, ServeSettings)
# Read by something other than a settings class.
OTHER_NAMES = {
    "JOURNEY_WEBHOOK_SECRET": "the packaged trigger rules' webhook secret (their secret_env)",
    "JOURNEY_API_KEY": "the API key the benchmarks' and examples' clients send",
    "JOURNEY_PIP_AUDIT": "the pip-audit executable of tests/test_dependency_audit.py",
    "JOURNEY_COMMIT": "the commit the service reports (build info, /v1/version) when it runs "
                      "outside a git checkout (serving/build.py)",
}
# A trigger endpoint's `secret_env:` may name any variable, JOURNEY_-prefixed ones included.
SECRET_ENV = re.compile(r"""\bsecret_env\s*:\s*["']?([A-Za-z_][A-Za-z0-9_]*)""")


def setting_names() -> frozenset[str]:
    """The environment names of every setting (case-insensitive, as the classes read them)."""
    return frozenset(f"{PREFIX}{field.upper()}" for cls in SETTINGS_CLASSES
                     for field in cls.model_fields)


def dotenv_names(path: Path = DOTENV) -> dict[str, int]:
    """The names .env sets, with their line; ConfigError for a line that cannot be parsed
    or a file that is not UTF-8 (either would otherwise drop settings with a bare warning)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path.resolve()}: not UTF-8 text (byte {exc.start}: "
                          f"{exc.reason})") from exc
    except OSError as exc:
        raise ConfigError(f"{path.resolve()}: cannot be read: {exc.strerror or exc}") from exc
    names: dict[str, int] = {}
    for binding in parse_stream(io.StringIO(text)):
        line = binding.original.line
        if binding.error:
            shown = binding.original.string.strip().splitlines()[0][:80]
            raise ConfigError(f"{path.resolve()}, line {line}: cannot be parsed ({shown!r}); "
                              "write NAME=value, quoting a value with spaces")
        if binding.key is not None:
            names.setdefault(binding.key, line)
    return names


def unknown_settings(environ: Mapping[str, str], path: Path = DOTENV) -> list[str]:
    """One line per JOURNEY_* name of the environment or .env that nothing reads, with the
    closest setting's name."""
    from_file = dotenv_names(path)
    known = setting_names() | OTHER_NAMES.keys()
    odd = [(name, where) for name, where in _given(environ, from_file, path)
           if name.upper().startswith(PREFIX) and name.upper() not in known]
    if not odd:  # the usual case: no need to read the trigger rules for their secret names
        return []
    secrets = _secret_names(environ, from_file, path)
    lines = []
    for name, where in odd:
        if name.upper() in secrets:
            continue
        close = difflib.get_close_matches(name.upper(), sorted(setting_names()), n=1,
                                          cutoff=0.6)
        hint = f"; did you mean {close[0]}?" if close else ""
        lines.append(f"setting {name} ({where}): no Journey setting has this name{hint}")
    return lines


def _given(environ: Mapping[str, str], from_file: dict[str, int],
           path: Path) -> Iterator[tuple[str, str]]:
    for name in sorted(environ):
        yield name, "environment"
    for name, line in from_file.items():
        yield name, f"{path.resolve()}, line {line}"


def _secret_names(environ: Mapping[str, str], from_file: dict[str, int],
                  path: Path) -> set[str]:
    """The variables the trigger rules in force name as `secret_env` (JOURNEY_TRIGGERS from
    the environment, else .env, else the packaged file). Read loosely: the rules' own loader
    reports a file that is wrong."""
    given = {k.upper(): v for k, v in environ.items()}.get("JOURNEY_TRIGGERS", "").strip()
    if not given and any(k.upper() == "JOURNEY_TRIGGERS" for k in from_file):
        given = (_dotenv_value(path, "JOURNEY_TRIGGERS") or "").strip()
    try:
        if given:  # blank is unset, as the settings classes read it
            text = Path(given).read_text(encoding="utf-8", errors="replace")
        else:
            text = resources.files("serving.config").joinpath("triggers.yaml").read_text()
    except OSError:
        return set()
    return {m.upper() for m in SECRET_ENV.findall(text)}


def _dotenv_value(path: Path, wanted: str) -> str | None:
    for binding in parse_stream(io.StringIO(path.read_text(encoding="utf-8"))):
        if binding.key is not None and binding.key.upper() == wanted:
            return binding.value
    return None


SOURCE = re.compile(r'field "(\w+)" from source "(\w+)"')


def unparsable(message: str, cause: BaseException | None, environ: Mapping[str, str],
               path: Path = DOTENV) -> str:
    """pydantic-settings' SettingsError (a list setting whose value is not JSON) as one line
    naming the variable, where it is set, its value and what to write instead."""
    found = SOURCE.search(message)
    if found is None:
        return f"a JOURNEY_* setting cannot be read: {message}"
    field, source = found.groups()
    name = f"{PREFIX}{field.upper()}"
    if source.startswith("DotEnv"):
        line = {k.upper(): n for k, n in dotenv_names(path).items()}.get(name, "?")
        where, value = f"{path.resolve()}, line {line}", _dotenv_value(path, name)
    else:
        where, value = "environment", {k.upper(): v for k, v in environ.items()}.get(name)
    shown = f"={value!r}" if value is not None else ""
    defaults = [cls.model_fields[field].default for cls in SETTINGS_CLASSES
                if field in cls.model_fields]
    wanted = "JSON"
    if defaults and isinstance(defaults[0], tuple | list):
        wanted = f"a JSON list, e.g. {name}='{json.dumps(list(defaults[0]))}' (the default)"
    why = f" ({cause})" if cause is not None else ""
    return f"setting {name}{shown} ({where}): must be {wanted}; it is not JSON{why}"
