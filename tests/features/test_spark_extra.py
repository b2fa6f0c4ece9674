"""PySpark is an extra (`journey[spark]`): without it the Spark engine says how to get it, and
nothing else needs it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from features.errors import ConfigError
from features.spark_session import local_session


def test_without_pyspark_the_spark_engine_says_how_to_install_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m == "pyspark" or m.startswith("pyspark.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "pyspark", None)  # `import pyspark` raises ImportError
    with pytest.raises(ConfigError, match=r"pip install 'journey\[spark\]'"):
        local_session()


def test_the_service_and_the_default_engine_do_not_import_pyspark() -> None:
    code = ("import sys; import serving.service, features.batch, journey.cli; "
            "print(any(m.split('.')[0] == 'pyspark' for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, env={"BENTOML_DO_NOT_TRACK": "true",
                                           "MLFLOW_DISABLE_TELEMETRY": "true", "PATH": ""})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
