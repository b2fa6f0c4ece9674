"""How `make test` shares the suite between its processes (``--dist loadfile``).

A process takes whole test files, so a file's module fixtures are built once. Some files share
a session fixture that costs ~30 s to start in each process that needs it; each group below
goes to one process as one unit of work, which then starts it once:

- ``spark``: the files with a test marked ``spark`` (one JVM, started and warmed up);
- ``dashboard``: the dashboard's browser tests (one app server, scored twice, one browser).

(xdist's own ``--dist loadgroup`` cannot do this here: under pytest 9 its renaming of a
grouped test's id has no effect, and it sends every ungrouped test on its own.)

The units go out longest first, by the seconds they took in a measured run
(``scope_seconds.json``; `make test-seconds` writes it anew): xdist's own order, most tests
first, left the suite's slowest single tests to the end, where one process ran them while the
other had finished (~60 s of one process idle). A unit not in the file counts half a second a
test; the file only orders the work, so an old one costs balance, never a test.
"""

from __future__ import annotations

import json
from collections import OrderedDict, defaultdict
from pathlib import Path
from typing import Any

import pytest

SECONDS_FILE = Path(__file__).with_name("scope_seconds.json")
UNKNOWN_SECONDS_PER_TEST = 0.5
ROOT = Path(__file__).resolve().parent.parent

GROUPS: dict[str, tuple[str, ...]] = {
    "spark": ("tests/features/test_spark.py", "tests/features/test_spark_input.py",
              "tests/features/test_spark_sql.py", "tests/features/test_blank_actions.py"),
    "dashboard": ("tests/serving/dashboard/",),
}


def scope_of(nodeid: str) -> str:
    """The unit of work a test belongs to: its group, else its file."""
    path = nodeid.split("::", 1)[0]
    for group, members in GROUPS.items():
        if any(path == m or (m.endswith("/") and path.startswith(m)) for m in members):
            return f"group:{group}"
    return path


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A Spark test outside the spark group would start a JVM of its own: say where it goes."""
    stray = sorted({i.nodeid.split("::", 1)[0] for i in items
                    if i.get_closest_marker("spark") and scope_of(i.nodeid) != "group:spark"})
    if stray:
        raise pytest.UsageError(f"{', '.join(stray)}: has a test marked spark; add the file "
                                "to GROUPS['spark'] in tests/scheduling.py")


def read_seconds(path: Path = SECONDS_FILE) -> dict[str, float]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): float(v) for k, v in data.items() if isinstance(v, int | float)}


def longest_first(units: dict[str, dict[str, bool]],
                  seconds: dict[str, float]) -> OrderedDict[str, dict[str, bool]]:
    """The units of work, those expected to take longest first."""
    def expected(scope: str) -> float:
        return seconds.get(scope, UNKNOWN_SECONDS_PER_TEST * len(units[scope]))

    return OrderedDict((s, units[s]) for s in sorted(units, key=expected, reverse=True))


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadfile``, with each of GROUPS as one unit of work, longest first."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class FilesAndGroups(LoadFileScheduling):  # type: ignore[misc]  # xdist is untyped
        ordered = False
        workqueue: OrderedDict[str, dict[str, bool]]  # xdist's: scope -> {test id: done}

        def _split_scope(self, nodeid: str) -> str:
            return scope_of(nodeid)

        def _assign_work_unit(self, node: Any) -> None:
            # The first call comes once schedule() has queued every unit.
            if not self.ordered:
                self.workqueue = longest_first(self.workqueue, read_seconds())
                self.ordered = True
            super()._assign_work_unit(node)

    return FilesAndGroups(config, log)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--write-scope-seconds", action="store_true",
                     help=f"write each unit of work's seconds to {SECONDS_FILE.name} "
                          "(the order make test hands them out)")


class SecondsRecorder:
    """Sums each unit's test seconds (setup, call, teardown) and writes them at the end."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.seconds[scope_of(report.nodeid)] += report.duration

    def pytest_sessionfinish(self) -> None:
        kept = {scope: s for scope, s in read_seconds().items() if _exists(scope)}
        kept.update({scope: round(s, 1) for scope, s in self.seconds.items()})
        SECONDS_FILE.write_text(json.dumps(dict(sorted(kept.items())), indent=1) + "\n",
                                encoding="utf-8")


def _exists(scope: str) -> bool:
    return scope.startswith("group:") or (ROOT / scope).is_file()


def pytest_configure(config: pytest.Config) -> None:
    # In the process that runs the session (under xdist, the controller, which sees every
    # worker's reports), not in each worker.
    if config.getoption("write_scope_seconds") and not hasattr(config, "workerinput"):
        config.pluginmanager.register(SecondsRecorder(), "journey-scope-seconds")
