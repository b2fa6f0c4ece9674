"""Where a training run came from: the code (Journey's version, the git commit of its
checkout) and the data (the event store's events up to the holdout's end, a hash of the
frames), as tags; `journey compare` groups runs by the data, and a run can be traced back."""

from __future__ import annotations

import hashlib
import os
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd

from features.errors import JourneyError
from features.snapshot import data_fingerprint
from features.store import EventStore
from journey import __version__
from models.targets import SURVIVAL
from training.dataset import Dataset, midnight
from training.experiment import Experiment

# The checkout this code runs from: its commit is the code's, whatever the working directory.
CODE_ROOT = Path(__file__).resolve().parents[1]
GIT_TIMEOUT_SECONDS = 3.0


def code_version(root: Path) -> dict[str, str]:
    """Journey's version, and the commit (and whether the tree differs from it) when ``root``
    is the top of a git checkout. Silent without git, outside a checkout, or on a git that
    hangs: provenance must never stop a training run."""
    tags = {"journey.code.version": __version__}
    top_and_head = _git(root, "rev-parse", "--show-toplevel", "HEAD")
    if top_and_head is None or len(top_and_head.splitlines()) != 2:
        return tags
    top, head = top_and_head.splitlines()
    if Path(top).resolve() != root.resolve():  # installed inside some other repository
        return tags
    tags["journey.code.git_commit"] = head
    status = _git(root, "status", "--porcelain", "--untracked-files=no")
    if status is not None:
        tags["journey.code.git_dirty"] = str(bool(status)).lower()
    return tags


def _git(root: Path, *args: str) -> str | None:
    # GIT_DIR and friends from a calling hook or tool would point git at another repository.
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                              timeout=GIT_TIMEOUT_SECONDS, env=env, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def holdout_end(exp: Experiment, target_name: str) -> datetime:
    """Where the test window of ``target_name`` ends (survival: on its own cutoffs)."""
    if target_name == SURVIVAL and exp.survival is not None:
        return (midnight(exp.survival.cutoffs.test)
                + timedelta(days=exp.survival.horizon_days))
    return midnight(exp.cutoffs.test) + timedelta(days=exp.horizon_days)


def data_end(exp: Experiment) -> datetime:
    """The newest time any label window of ``exp`` reads (survival's included)."""
    return max(holdout_end(exp, name) for name in exp.targets)


def store_tags(store: Path | None, until: datetime) -> dict[str, str]:
    return {} if store is None else store_fingerprint(store, until)


def store_fingerprint(path: Path, until: datetime) -> dict[str, str]:
    """The store and its events before ``until``, counted as snapshots record theirs: another
    count or newest event means other data. ``journey.data`` sums it up for `journey compare`
    (no path: a copy of a store is the same data). A store that cannot be opened, e.g. held
    by the service, is named with the reason instead: provenance never stops training."""
    tags = {"journey.data.store": str(path.resolve()), "journey.data.until": until.isoformat()}
    try:
        with EventStore(path, read_only=True) as es:
            made = data_fingerprint(es, until)
    except (JourneyError, OSError, duckdb.Error) as exc:
        return {**tags, "journey.data.store_error": str(exc)[:500]}
    newest = made["newest"] or ""
    # The content hash tells a store loaded again with other rows (same count, same newest
    # time) apart, so `journey compare` does not rank runs on different data side by side.
    return {**tags, "journey.data.events": str(made["events"]),
            "journey.data.newest_event": newest,
            "journey.data.content": made["content"],
            "journey.data": f"{made['events']} events to {newest or 'none'} "
                            f"(content {made['content'][:8]})"}


def frames_fingerprint(ds: Dataset) -> dict[str, str]:
    """A hash of the frames trained and judged on, whatever store or snapshots they came from."""
    digest = hashlib.sha256()
    splits = [("train", ds.train), ("valid", ds.valid), ("test", ds.test)]
    if ds.survival is not None and ds.survival is not ds:
        splits += [(f"survival_{n}", f) for n, f in (("train", ds.survival.train),
                   ("valid", ds.survival.valid), ("test", ds.survival.test))]
    for name, frame in splits:
        digest.update(name.encode())
        digest.update(",".join(map(str, frame.columns)).encode())
        digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return {"journey.data.rows": ",".join(f"{n}={len(f)}" for n, f in splits),
            "journey.data.fingerprint": digest.hexdigest()[:16]}
