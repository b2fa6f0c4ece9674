"""Shared plumbing for benchmark scripts: argument parsing and writing results/NAME.json."""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
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


def peak_rss_mb() -> dict[str, float]:
    """Peak resident memory of this process and of its largest finished child (Linux: KiB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"self": round(own, 1), "children": round(children, 1)}


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
