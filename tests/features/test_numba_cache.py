"""Where numba's cache goes (features/numba_cache.py): the user's NUMBA_CACHE_DIR, else Journey's
folder in the user's cache, else a private one in the temporary directory, never a folder
another user could write to. Not-writable folders are made with a regular file in the way:
permissions do not stop root, which the tests may run as."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from features import numba_cache
from features.numba_cache import ENV, choose_cache_dir

ROOT = Path(__file__).resolve().parents[2]
UID = os.geteuid()  # the real one: a test below pretends to be another user


@pytest.fixture
def tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The temporary directory, moved into the test's folder."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.fixture
def blocked(tmp_path: Path) -> Path:
    """A home nothing can be created in: a file."""
    path = tmp_path / "home-file"
    path.write_text("")
    return path


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_a_users_folder_is_taken_as_given(tmp: Path) -> None:
    environ = {ENV: "/somewhere/else", "HOME": str(tmp)}
    assert choose_cache_dir(environ) == "/somewhere/else"
    assert list(tmp.iterdir()) == []  # nothing created


def test_configure_leaves_a_users_folder_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "/users/choice")
    numba_cache.configure()
    assert os.environ[ENV] == "/users/choice"


def test_configure_points_numba_at_journeys_folder(tmp_path: Path) -> None:
    """numba is imported already here: its configuration reads the variable again."""
    from numba.core import config

    try:
        with pytest.MonkeyPatch.context() as mp:
            for name in (ENV, "XDG_CACHE_HOME"):
                mp.delenv(name, raising=False)
            mp.setenv("HOME", str(tmp_path))
            numba_cache.configure()
            assert os.environ[ENV] == vars(config)["CACHE_DIR"] == str(
                tmp_path / ".cache" / "journey" / "numba")
    finally:  # the suite's folder again, for what compiles next
        config.reload_config()  # type: ignore[no-untyped-call]


def test_xdg_cache_home_when_writable(tmp_path: Path, tmp: Path) -> None:
    got = choose_cache_dir({"XDG_CACHE_HOME": str(tmp_path / "xdg"), "HOME": "/nonexistent"})
    assert got == str(tmp_path / "xdg" / "journey" / "numba")
    assert _mode(Path(got)) == 0o700


def test_home_cache_without_xdg(tmp_path: Path, tmp: Path) -> None:
    got = choose_cache_dir({"XDG_CACHE_HOME": "relative/ignored", "HOME": str(tmp_path)})
    assert got == str(tmp_path / ".cache" / "journey" / "numba")


def test_temporary_folder_when_the_home_is_not_writable(blocked: Path, tmp: Path) -> None:
    got = choose_cache_dir({"HOME": str(blocked)})
    assert got == str(tmp / f"journey-numba-{os.geteuid()}")
    assert _mode(Path(got)) == 0o700
    assert choose_cache_dir({"HOME": str(blocked)}) == got  # the next process reuses it


def _fresh_private(got: str | None, tmp: Path, taken: Path) -> None:
    assert got is not None and Path(got) != taken
    assert Path(got).parent == tmp and Path(got).name.startswith("journey-numba-")
    assert os.lstat(got).st_uid == UID and _mode(Path(got)) == 0o700


def test_a_folder_another_user_owns_is_not_used(blocked: Path, tmp: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # The folder is ours; this process pretends to be another uid, for whom it is foreign.
    other = os.geteuid() + 4242
    taken = tmp / f"journey-numba-{other}"
    taken.mkdir(mode=0o700)
    monkeypatch.setattr(os, "geteuid", lambda: other)
    _fresh_private(choose_cache_dir({"HOME": str(blocked)}), tmp, taken)


@pytest.mark.parametrize("mode", [0o770, 0o703, 0o777])
def test_a_folder_others_may_write_to_is_not_used(blocked: Path, tmp: Path, mode: int) -> None:
    taken = tmp / f"journey-numba-{os.geteuid()}"
    taken.mkdir()
    taken.chmod(mode)
    got = choose_cache_dir({"HOME": str(blocked)})
    _fresh_private(got, tmp, taken)
    assert _mode(taken) == mode  # left as it was


def test_a_symlink_in_its_place_is_not_followed(blocked: Path, tmp: Path,
                                                tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir(mode=0o700)
    taken = tmp / f"journey-numba-{os.geteuid()}"
    taken.symlink_to(target)
    _fresh_private(choose_cache_dir({"HOME": str(blocked)}), tmp, taken)


def test_nothing_writable_gives_none(blocked: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_temporary_directory() -> str:
        raise FileNotFoundError("No usable temporary directory found")

    monkeypatch.setattr(tempfile, "gettempdir", no_temporary_directory)
    assert choose_cache_dir({"HOME": str(blocked)}) is None


# -- in a fresh interpreter: numba reads the variable once, when it is first imported -------
PROBE = """
{before}
import features.kernel_loop  # decorating its functions is where numba raised
from features.ordering import _after  # quick to compile
assert _after(2, 0, 0, 0.0, 0.0, 1, 0, 0, 0.0, 0.0)
s = _after.stats
print(s.cache_path, sum(s.cache_hits.values()), sum(s.cache_misses.values()))
"""

def _probe(env: dict[str, str], before: str = "") -> tuple[str, int, int]:
    done = subprocess.run([sys.executable, "-c", PROBE.format(before=before)], env=env,
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    path, hits, misses = done.stdout.split()
    return path, int(hits), int(misses)


def _env(home: Path, tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in (ENV, "XDG_CACHE_HOME") and not k.startswith("NUMBA_")}
    return {**env, "HOME": str(home), "TMPDIR": str(tmp)}


def test_a_read_only_home_caches_in_journeys_folder(blocked: Path, tmp: Path) -> None:
    """Without the module numba would write beside the source (or raise, the source's folder
    read-only too); the second process loads what the first compiled."""
    folder = tmp / f"journey-numba-{os.geteuid()}"
    path, hits, misses = _probe(_env(blocked, tmp))
    assert Path(path).parent == folder and (hits, misses) == (0, 1)
    assert list(Path(path).glob("ordering._after-*.nbi"))
    assert _probe(_env(blocked, tmp)) == (path, 1, 0)


def test_nowhere_to_write_compiles_without_a_cache(blocked: Path, tmp: Path) -> None:
    """No temporary directory, and numba's own locators all fail (the one left only serves
    IPython): the import works, the kernel is compiled uncached, with a warning."""
    env = {**_env(blocked, tmp), "NUMBA_CACHE_LOCATOR_CLASSES": "IPythonCacheLocator"}
    before = ("import tempfile\n"
              "def _none(): raise FileNotFoundError('no temporary directory')\n"
              "tempfile.gettempdir = _none")
    done = subprocess.run([sys.executable, "-c", PROBE.format(before=before)], env=env,
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["None", "0", "1"]  # numba's NullCache: no path, no hit
    assert done.stderr.count("numba has no writable cache folder") == 1
