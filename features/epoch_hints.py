"""A warning when epoch numbers were read in too small a unit.

``ts_format: [epoch_ms]`` over a column of epoch seconds reads 1766188800 (2025-12-20) as
1970-01-21: a valid time, so every row loads, weeks into 1970, and features and labels are
computed over a history that never happened. No real touchpoint log reaches back to 1970, so
events read from epoch numbers that land before 1971 are counted, and the load ends with one
warning naming how many, an example line, and the unit that reads it as a recent time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc

from features.mapping import EPOCH_UNITS
from features.read_base import LINE_COLUMN

EARLIEST_LIKELY = datetime(1971, 1, 1, tzinfo=UTC)
LATEST_LIKELY = datetime(2100, 1, 1, tzinfo=UTC)  # the store's bound (features.schema)


def _iso(micros: float) -> str:
    when = datetime.fromtimestamp(micros / 1e6, UTC)
    return when.isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass
class EpochHint:
    """Events of one load read from epoch numbers that fall before 1971."""

    unit: str = ""
    count: int = 0
    example: tuple[str, int, int] | None = None  # (source, line, the instant in microseconds)

    def observe(self, valid: pa.Table, unit: str, source: str) -> None:
        """Count the rows of ``valid`` (one batch's valid events, with their lines) before
        1971; ``unit``: the epoch unit the batch was read in. Vectorised: one comparison."""
        if valid.num_rows == 0:
            return
        ts = valid["ts"]
        early = pc.less(ts, pa.scalar(EARLIEST_LIKELY, ts.type))
        found = int(pc.sum(early).as_py() or 0)
        if not found:
            return
        self.unit = self.unit or unit
        self.count += found
        if self.example is None:
            i = int(pc.index(early, True).as_py())
            micros = int(ts[i].cast(pa.int64()).as_py())
            self.example = (source, int(valid[LINE_COLUMN][i].as_py()), micros)

    def lines(self) -> list[str]:
        """The warning (one line), or none."""
        if not self.count or self.example is None:
            return []
        source, line, micros = self.example
        number = micros // EPOCH_UNITS[self.unit]
        advice = "is the source in another unit?"
        for other, factor in EPOCH_UNITS.items():
            if factor > EPOCH_UNITS[self.unit] and (
                    EARLIEST_LIKELY.timestamp() <= number * factor / 1e6
                    < LATEST_LIKELY.timestamp()):
                advice = (f"are they {other}? (ts_format: [{other}] reads {number} as "
                          f"{_iso(number * factor)})")
                break
        return [f"warning: {self.count:,} events of this load, read as {self.unit}, fall "
                f"before 1971 (e.g. {source} line {line}: {number} read as {_iso(micros)}): "
                + advice]
