"""The drift alarm in the log: a line when the overall alarm turns on (which columns, by how
much) and one when it clears, none while it stays as it was. The gauges showed a 0 to 1 turn
with ten features alarming while serve.log said nothing; a line per evaluation (a minute)
would bury the turn instead."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from models.drift import DriftReport, DriftRow

if TYPE_CHECKING:
    from serving.drift import DriftStatus

log = logging.getLogger("journey.serving")
NAMED = 5  # columns a line names, the worst first; GET /v1/drift has every one


def _row(r: DriftRow) -> str:
    return f"{r.name} ({r.kind}) PSI {r.psi:.2f}, {r.test} p={r.p_value:.2g}"


def _window(report: DriftReport) -> str:
    span = (f" from {report.start.isoformat(timespec='seconds')} to "
            f"{report.end.isoformat(timespec='seconds')}" if report.start and report.end else "")
    return f"{report.window_size:,} live rows{span}"


class AlarmLog:
    """``update(status)`` after each evaluation; logs only when the overall alarm turns."""

    def __init__(self) -> None:
        self.on = False

    def update(self, status: DriftStatus) -> None:
        report = status.report
        on = report is not None and report.alarm
        if on == self.on:
            return
        self.on = on
        if report is not None and on:
            worst = sorted(report.alarms(), key=lambda r: -r.psi)
            more = f"; {len(worst) - NAMED} more" if len(worst) > NAMED else ""
            s = report.settings
            log.warning("drift alarm on: %d of %d monitored columns alarm (PSI >= %g and "
                        "p < %g) over %s against the training profiles of %s: %s%s "
                        "(GET /v1/drift has every column)", len(worst), len(report.rows),
                        s.psi_alarm, s.p_value, _window(report), status.versions,
                        "; ".join(_row(r) for r in worst[:NAMED]), more)
        elif report is not None:
            log.info("drift alarm cleared: no monitored column alarms over %s",
                     _window(report))
        else:
            log.info("drift alarm cleared: drift is no longer evaluated (%s)", status.reason)
