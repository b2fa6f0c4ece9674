"""A benchmark stopped by SIGTERM or SIGHUP still runs its ``finally`` blocks, where the
service benchmarks stop the service they started."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHILD = """
import sys, time
from pathlib import Path
from benchmarks.common import finish_on_signals
finish_on_signals()
marker = Path(sys.argv[1])
try:
    print("ready", flush=True)
    time.sleep(60)
finally:
    marker.write_text("stopped")
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_runs_finally_blocks(tmp_path: Path, sig: signal.Signals) -> None:
    marker = tmp_path / "marker"
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(marker)], cwd=REPO,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    started = time.monotonic()
    proc.send_signal(sig)
    assert proc.wait(timeout=30) == 128 + sig
    assert time.monotonic() - started < 10  # not after the 60 s sleep
    assert marker.read_text() == "stopped"
