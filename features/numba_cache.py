"""Where numba keeps Journey's compiled kernels: a cache folder of Journey's own, chosen before
numba is imported.

The kernels are ``@njit(cache=True)``. Left to itself, numba writes beside the source
(site-packages, where ``pip uninstall`` leaves the files behind) or in ``~/.cache/numba``; when
neither is writable (a read-only root filesystem, a service user without a writable home, an
installed bento) the decorators raise at import and not even ``journey --help`` runs. numba
reads ``NUMBA_CACHE_DIR`` when it is first imported, so ``features/__init__.py`` and
``models/__init__.py`` (every kernel lives under them) import this module first.

The cache files are pickles that numba loads: a folder another user can write to would let
them run code as this user. A folder is used only when this user owns it and nobody else may
write to it (``/tmp`` is shared: anyone could have created the per-user folder's name first).
"""

from __future__ import annotations

import logging
import os
import stat
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

ENV = "NUMBA_CACHE_DIR"
log = logging.getLogger("journey.numba")


def is_private(folder: Path) -> bool:
    """Whether ``folder`` is (or could be made) a directory of this user's that nobody else
    may write to and this process can write in. Created with mode 0o700 when missing."""
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = os.lstat(folder)  # lstat: a symlink planted in /tmp must not lead elsewhere
        if (not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid()
                or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)):
            return False
        # What numba itself checks before it writes: a read-only mount passes the mode test.
        tempfile.TemporaryFile(dir=folder).close()
    except OSError:
        return False
    return True


def user_cache_root(environ: Mapping[str, str]) -> Path | None:
    """``$XDG_CACHE_HOME``, else ``~/.cache``; None when there is no home to speak of."""
    xdg = environ.get("XDG_CACHE_HOME", "")
    if os.path.isabs(xdg):  # the XDG spec: a relative path is invalid and ignored
        return Path(xdg)
    home = environ.get("HOME") or os.path.expanduser("~")
    return Path(home) / ".cache" if os.path.isabs(home) else None


def choose_cache_dir(environ: Mapping[str, str]) -> str | None:
    """The folder for numba's cache: the user's ``NUMBA_CACHE_DIR`` as given, else Journey's
    folder in the user's cache, else a per-user folder in the temporary directory, else a
    fresh private temporary folder; None when nothing at all is writable."""
    given = environ.get(ENV)
    if given:
        return given
    root = user_cache_root(environ)
    if root is not None and is_private(root / "journey" / "numba"):
        return str(root / "journey" / "numba")
    try:
        tmp = tempfile.gettempdir()  # raises when no temporary directory is usable
        shared = Path(tmp) / f"journey-numba-{os.geteuid()}"
        if is_private(shared):
            return str(shared)
        # Someone else's (or a loosely permitted) folder holds the name: one of our own,
        # unguessable, for this process and its children (they inherit the variable).
        return tempfile.mkdtemp(prefix="journey-numba-")
    except OSError:
        return None


def compile_uncached_when_unlocatable() -> None:
    """With no writable folder anywhere, numba's ``cache=True`` raises at import. Let such a
    function be compiled in each process instead (what ``cache=False`` does): numba has no
    switch for this (numba/numba#4549), so its dispatcher's ``enable_caching`` is wrapped."""
    from numba.core.dispatcher import Dispatcher

    enable: Callable[[Any], None] = Dispatcher.enable_caching
    if getattr(enable, "journey_guard", False):
        return
    warned: list[bool] = []

    def enable_caching(self: Any) -> None:
        try:
            enable(self)
        except RuntimeError as exc:
            if "no locator available" not in str(exc):
                raise
            if not warned:
                warned.append(True)
                log.warning("numba has no writable cache folder (%s): the kernels are "
                            "compiled again in every process (seconds); set %s to a writable "
                            "folder", exc, ENV)

    enable_caching.journey_guard = True  # type: ignore[attr-defined]
    Dispatcher.enable_caching = enable_caching  # type: ignore[method-assign]


def configure() -> None:
    """Point numba at the chosen folder unless the user did; nothing is logged when it works."""
    if os.environ.get(ENV):
        return
    folder = choose_cache_dir(os.environ)
    if folder is None:
        compile_uncached_when_unlocatable()
        return
    os.environ[ENV] = folder
    if "numba" in sys.modules:  # imported before Journey: its config has read the old value
        from numba.core import config

        config.reload_config()  # type: ignore[no-untyped-call]


configure()
