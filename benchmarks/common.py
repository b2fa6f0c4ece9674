"""Shared plumbing for benchmark scripts: argument parsing and writing results/NAME.json."""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def run_as_module(name: str, package: str | None, module: str) -> None:
    """Re-run a script given as ``python benchmarks/NAME.py`` as ``python -m benchmarks.NAME``.

    Run as a file, this folder comes first on the import path, where ``features.py`` would
    shadow the ``features`` package; as a module, imports resolve as everywhere else.
    """
    if name == "__main__" and not package:
        os.execv(sys.executable, [sys.executable, "-m", module, *sys.argv[1:]])


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="small run that finishes in under 90 s")
    p.add_argument("--work", type=Path, default=Path("var/bench"), help="scratch directory")
    return p


def finish_on_signals() -> None:
    """Turn SIGTERM and SIGHUP into ``SystemExit`` so ``finally`` blocks stop started services.

    Python's default for SIGTERM ends the process at once: a benchmark killed by a test's
    timeout left its detached ``journey serve`` running, holding a port and ~700 MB."""
    def _exit(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _exit)


def peak_rss_mb() -> dict[str, float]:
    """Peak resident memory of this process and of its largest finished child (Linux: KiB).

    A child's figure includes what it inherited (see ``own_peak_rss_mb``): start children
    before this process grows when their own peak is wanted."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"self": round(own, 1), "children": round(children, 1)}


def own_peak_rss_mb() -> float:
    """Peak resident memory of this process's own address space, in MB.

    Not ``ru_maxrss``: Linux carries a parent's peak into a child across fork and exec, so a
    child spawned after its parent built a large store reported the parent's peak (10.9 GB
    where the child itself peaked at 2.6 GB). VmHWM belongs to the address space, which exec
    replaces."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def write_result(name: str, figures: dict[str, Any], quick: bool,
                 results: Path | None = None) -> Path:
    """``results``/NAME.json (default benchmarks/results; tests write elsewhere)."""
    results = results or RESULTS
    results.mkdir(parents=True, exist_ok=True)
    payload = {
        **figures,
        "quick": quick,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": _cpus()},
    }
    path = results / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    for key, value in figures.items():
        print(f"{key:>28}: {value}")
    print(f"-> {path}")
    return path


def _cpus() -> int:
    import os

    return os.cpu_count() or 1
