"""Refuse to start the service from a folder whose own packages would replace Journey's.

`bentoml serve` puts its working folder first on Python's import path (to find a project's
service module there), so a folder holding a ``models/`` or ``features/`` package of its own,
common names in a data science project, has the service import that one instead of Journey's:
it then dies at import with an error naming neither folder."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from features.errors import ConfigError

# Journey's top-level packages the service imports.
PACKAGES = ("journey", "features", "training", "models", "serving")


def _ours(name: str) -> Path | None:
    """Where Journey's package ``name`` is installed (its folder)."""
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).resolve().parent


def shadowing(folder: Path) -> list[Path]:
    """The packages and modules in ``folder`` that would be imported instead of Journey's.

    A folder without ``__init__.py`` is left out: it would only be a namespace portion, which
    an installed regular package beats wherever it stands on the path."""
    found = []
    for name in PACKAGES:
        ours = _ours(name)
        package, module = folder / name, folder / f"{name}.py"
        if (package / "__init__.py").is_file() and package.resolve() != ours:
            found.append(package)
        if module.is_file():
            found.append(module)
    return found


def check_working_folder(folder: Path | None = None) -> None:
    """Refuse to start ``bentoml serve`` in ``folder`` (the current one) when it holds a
    package or module named like one of Journey's."""
    where = (folder or Path.cwd()).resolve()
    found = shadowing(where)
    if not found:
        return
    named = ", ".join(f"{p.name}{'/' if p.is_dir() else ''}" for p in found)
    raise ConfigError(
        f"the working folder {where} holds {named}: `bentoml serve` puts the working folder "
        "first on Python's import path, so the service would import "
        f"{'it' if len(found) == 1 else 'them'} instead of Journey's own package of the same "
        "name and fail; start `journey serve` from another folder (with JOURNEY_HOME and other "
        "paths absolute or relative to that folder)")
