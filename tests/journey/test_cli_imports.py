"""The command line starts without the modelling libraries: `journey --help`, `journey stop`
and `journey keys` answered in ~2.4 s when every command module imported scikit-learn,
LightGBM, pandas and numba at load, and answer in ~0.7 s now. A command that needs them
imports them when it runs."""

from __future__ import annotations

import os
import subprocess
import sys

# What a command imports when it runs, not when the command line loads.
HEAVY = ("sklearn", "scipy", "pandas", "lightgbm", "mlflow", "numba", "httpx", "fastapi",
         "bentoml")


def _loaded_after(code: str) -> list[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    env = {**os.environ, "BENTOML_DO_NOT_TRACK": "true"}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, env=env, timeout=120)
    return out.stdout.split()


def test_loading_the_command_line_imports_no_modelling_library() -> None:
    assert _loaded_after("import journey.cli") == []


def test_help_lists_every_command_without_them() -> None:
    code = ("import contextlib, io\nfrom journey.cli import app\nout = io.StringIO()\n"
            "with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):\n"
            "    app(['--help'], prog_name='journey')\n"
            "assert 'score' in out.getvalue() and 'personas' in out.getvalue(), out.getvalue()")
    assert _loaded_after(code) == []



def _complete(words: str) -> list[str]:
    env = {**os.environ, "_JOURNEY_COMPLETE": "complete_bash", "COMP_WORDS": words,
           "COMP_CWORD": str(len(words.split()) - 1)}
    out = subprocess.run([sys.executable, "-m", "journey"], capture_output=True, text=True,
                         env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_the_shell_completes_commands_and_options() -> None:
    """`journey --install-completion` sets it up; each TAB runs the command line, which is
    why it must load without the modelling libraries."""
    assert _complete("journey se") == ["segments", "serve"]
    assert {"--as-of", "--no-actions", "--publish"} <= set(_complete("journey score --"))
    assert "revoke" in _complete("journey keys r")
