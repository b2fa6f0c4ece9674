"""How many threads a LightGBM fit or batch prediction may use."""

from __future__ import annotations

import os


def cpu_threads(requested: int = 0) -> int:
    """``requested`` when positive; else ``OMP_NUM_THREADS`` when it names a positive count
    (capped at the CPUs this process may use); else every CPU this process may use.

    LightGBM is handed an explicit count because numba's parallel kernels reset OpenMP's own
    default. The count still honours ``OMP_NUM_THREADS``: whoever shares the cores with other
    work sets it, and boosting threads that spin on a core someone else is using make a fit
    several times slower than one thread would.
    """
    if requested > 0:
        return requested
    cpus = len(os.sched_getaffinity(0))
    raw = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    if raw.isdigit() and int(raw) > 0:
        return min(int(raw), cpus)
    return cpus
