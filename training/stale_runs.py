"""MLflow runs a killed Journey command left RUNNING: ended (KILLED) by the next training.

A process killed outright (SIGKILL, the OOM killer, a lost machine) cannot end its runs, and
MLflow never ends them either: they would read RUNNING forever. So every run Journey starts
(training, uplift, promotion, backtest, retrain and persona runs) records which process runs it
(``process_tags``), and the next `journey train` or `uplift` marks KILLED those
whose process is certainly gone (``end_dead_runs``). A run is judged only on the machine and
in the PID namespace that ran it; anything not certain is left as it is.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

HOST_TAG = "journey.host"
PID_TAG = "journey.pid"
# The process's start time in clock ticks since boot (/proc/PID/stat field 22): with the PID
# it names one process, so a PID the system has since given to another is not taken for it.
PID_START_TAG = "journey.pid_start"
# Start ticks count from boot: after a restart a PID and its ticks may match an old run's.
BOOT_TAG = "journey.boot_id"
# Containers that share the host's name (host networking) have PIDs of their own.
PID_NAMESPACE_TAG = "journey.pid_namespace"


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None


def start_time(pid: int) -> str | None:
    """The process's start time (ticks since boot), None when no such process can be seen."""
    stat = _read(f"/proc/{pid}/stat")
    if stat is None:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else None


@dataclass(frozen=True)
class Machine:
    """Where runs are judged: the host, its current boot and this process's PID namespace."""

    host: str
    boot: str | None
    pid_namespace: str | None

    @classmethod
    def here(cls) -> Machine:
        try:
            namespace: str | None = os.readlink("/proc/self/ns/pid")
        except OSError:
            namespace = None
        return cls(socket.gethostname(), _read("/proc/sys/kernel/random/boot_id"), namespace)


def process_tags(machine: Machine | None = None) -> dict[str, str]:
    """The tags naming this process, for every run it starts (none it cannot name)."""
    machine = machine or Machine.here()
    pid = os.getpid()
    tags = {HOST_TAG: machine.host, PID_TAG: str(pid), PID_START_TAG: start_time(pid),
            BOOT_TAG: machine.boot, PID_NAMESPACE_TAG: machine.pid_namespace}
    return {k: v for k, v in tags.items() if v is not None}


def process_gone(tags: Mapping[str, str], machine: Machine) -> bool:
    """True only when the process the tags name has certainly ended."""
    if tags.get(HOST_TAG) != machine.host or PID_START_TAG not in tags:
        return False  # another machine's, or a run that named no process: not ours to judge
    if tags.get(BOOT_TAG) != machine.boot:
        # A restart, or another machine of the same name sharing this tracking store (with a
        # remote server, "ubuntu" or "localhost" is common): not certain, so not judged.
        return False
    if tags.get(PID_NAMESPACE_TAG) != machine.pid_namespace:
        return False
    try:
        pid = int(tags[PID_TAG])
    except (KeyError, ValueError):
        return False
    now = start_time(pid)
    if now is not None:
        return now != tags[PID_START_TAG]  # the PID now names a later process
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the PID exists
    except ProcessLookupError:
        return True
    except OSError:
        return False  # it exists, as another user's process /proc does not show
    return False  # alive, though /proc does not show it: not certain


def end_dead_runs(client: MlflowClient, log: Callable[[str], None],
                  machine: Machine | None = None) -> list[str]:
    """Mark KILLED, ending now, every RUNNING run whose process is certainly gone; say so in
    one line. The ids of the runs ended."""
    from mlflow.entities import ViewType

    machine = machine or Machine.here()
    experiments = [e.experiment_id for e in client.search_experiments(ViewType.ACTIVE_ONLY)]
    if not experiments:
        return []
    running = client.search_runs(experiments, "attributes.status = 'RUNNING'",
                                 run_view_type=ViewType.ACTIVE_ONLY, max_results=50_000)
    dead = [r.info.run_id for r in running if process_gone(r.data.tags, machine)]
    # When the process died is not recorded anywhere: the end time is when it was noticed.
    ended_at = int(time.time() * 1000)
    for run_id in dead:
        client.set_terminated(run_id, status="KILLED", end_time=ended_at)
    if dead:
        runs = "1 run" if len(dead) == 1 else f"{len(dead)} runs"
        ids = "run id" if len(dead) == 1 else "run ids"
        log(f"ended {runs} left RUNNING by a killed Journey command ({ids} "
            f"{', '.join(dead)}): marked KILLED")
    return dead
