"""The feature kernel: one compiled pass over each customer's events, shared by the batch and
online engines (so the two cannot drift).

Input arrays are sorted by customer, then by the tie order every engine uses: ts, event type,
channel, action, value, scores (by the spec's codes). Every event is strictly before the cutoff
T; a window of W days is [T - W, T). Definitions are in docs/features.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from features.events import Encoder, EventArrays
from features.kernel_loop import run_parallel, run_serial
from features.layout import Layout, layout
from features.spec import DAY_US, FeatureSpec

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class KernelParams:
    """Everything about the spec the compiled kernel needs, as arrays and numbers."""

    windows_us: npt.NDArray[np.int64]
    stage_of: npt.NDArray[np.int8]
    conv_of: npt.NDArray[np.bool_]
    repeat_stage: int  # the stage a repeat conversion signals, -1: no such rule
    n_types: int
    n_stages: int
    n_chans: int
    n_actions: int
    session_gap_us: int
    response_us: int
    score_of: npt.NDArray[np.int64]
    score_low: F64
    score_has_low: npt.NDArray[np.bool_]
    score_offsets: npt.NDArray[np.int64]

    @classmethod
    def of(cls, spec: FeatureSpec, enc: Encoder, lay: Layout) -> KernelParams:
        widths = np.array(lay.score_columns, np.int64)
        return cls(
            windows_us=np.array([w * DAY_US for w in spec.windows_days], np.int64),
            stage_of=enc.stage_of_type.astype(np.int8),
            conv_of=enc.conversion_of_type.astype(np.bool_),
            repeat_stage=spec.taxonomy.repeat_stage_index,
            n_types=len(spec.event_types),
            n_stages=len(spec.stages),
            n_chans=len(spec.channel_vocab),
            n_actions=len(spec.action_vocab),
            session_gap_us=int(spec.session_gap_minutes * 60_000_000),
            response_us=int(spec.response_window_hours * 3_600_000_000),
            score_of=enc.score_of_type,
            score_low=np.array([np.nan if s.low is None else s.low for s in spec.scores]),
            score_has_low=np.array([s.low is not None for s in spec.scores], np.bool_),
            score_offsets=(
                np.concatenate(([0], np.cumsum(widths)[:-1])).astype(np.int64)
                if len(widths)
                else np.zeros(0, np.int64)
            ),
        )


PARALLEL_MIN_CUSTOMERS = 5_000  # below this, thread start-up costs more than it saves


@dataclass
class FeatureMatrix:
    """Numeric features (customers x columns) plus categorical columns as codes + vocabulary
    (code -1: missing)."""

    customer_ids: list[str]
    names: tuple[str, ...]
    values: F64
    categorical: dict[str, tuple[npt.NDArray[np.int64], tuple[str, ...]]]


class Kernel:
    def __init__(self, spec: FeatureSpec, enc: Encoder | None = None) -> None:
        self.spec = spec
        self.enc = enc or Encoder(spec)
        self.layout = layout(spec)
        self.params = KernelParams.of(spec, self.enc, self.layout)

    def __call__(self, ev: EventArrays, cutoff_us: int) -> FeatureMatrix:
        if len(ev) and int(ev.ts.max()) >= cutoff_us:
            raise ValueError("events at or after the cutoff reached the feature kernel")
        g = ev.n_customers
        if ev.segments is not None:
            starts, ends = ev.segments
        else:
            starts = np.searchsorted(ev.cust, np.arange(g), side="left").astype(np.int64)
            ends = np.searchsorted(ev.cust, np.arange(g), side="right").astype(np.int64)
        # Column-major: consecutive customers fill each column sequentially, and every column is
        # contiguous for a zero-copy Arrow conversion.
        out = np.zeros((g, self.layout.width), order="F")
        last_type = np.full(g, -1, np.int64)
        last_chan = np.full(g, -1, np.int64)
        p = self.params
        run = run_parallel if g >= PARALLEL_MIN_CUSTOMERS else run_serial
        run(
            starts,
            ends,
            ev.ts,
            ev.etype,
            ev.channel,
            ev.action,
            ev.value,
            ev.score,
            np.int64(cutoff_us),
            p.windows_us,
            p.stage_of,
            p.conv_of,
            p.repeat_stage,
            p.n_types,
            p.n_stages,
            p.n_chans,
            p.n_actions,
            p.session_gap_us,
            p.response_us,
            p.score_of,
            p.score_low,
            p.score_has_low,
            p.score_offsets,
            self.layout.offsets,
            out,
            last_type,
            last_chan,
        )
        return FeatureMatrix(
            ev.customer_ids,
            self.layout.names,
            out,
            {
                "last_event_type": (last_type, self.spec.event_types),
                "last_channel": (last_chan, self.spec.channel_vocab),
            },
        )
