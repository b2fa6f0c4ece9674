"""A model swap updates the served-version gauges without a warning in serve.log: BentoML's
workers run with PROMETHEUS_MULTIPROC_DIR set, where prometheus_client warns on every
``remove`` although the service's own registry removes the series fine.

In a fresh interpreter, as the worker is: pytest restores the warning filters an import made
while it collected the tests, so only a new process has the module's filter as serve.log does.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SWAP = """
from typing import cast
from serving.champions import ModelHolder, ModelSet
from serving.metrics import Metrics

class Versions:
    def __init__(self, versions): self._versions = versions
    def versions(self): return self._versions

aliases = {"churn": "1"}  # what the registry names; a load gives it
holder = ModelHolder(lambda: cast(ModelSet, Versions(dict(aliases))), lambda: dict(aliases))
metrics = Metrics()
for version in ("1", "2"):
    aliases["churn"] = version
    holder.reload()
    metrics.sync_models(holder, True)
print(metrics.render().decode())
"""


def test_a_swap_in_a_bentoml_worker_warns_nothing(tmp_path: Path) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}  # as BentoML sets it
    done = subprocess.run([sys.executable, "-c", SWAP], env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "Warning" not in done.stderr, done.stderr
    assert 'journey_model_version{target="churn",version="2"} 1.0' in done.stdout
    assert 'version="1"' not in done.stdout  # the old version's series is gone
