"""Online features: one customer's vector from that customer's events, with the batch kernels."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pyarrow as pa

from features.batch import micros
from features.events import Encoder
from features.kernels import Kernel
from features.spec import FeatureSpec

Vector = dict[str, float | str | None]


class OnlineFeatures:
    """Computes the same vector as the batch engine for one customer as of a cutoff."""

    def __init__(self, spec: FeatureSpec) -> None:
        self.spec = spec
        self.enc = Encoder(spec)
        self.kernel = Kernel(spec, self.enc)

    def vector(
        self,
        customer_id: str,
        events: pa.Table | list[dict[str, Any]],
        cutoff: datetime,
        attributes: dict[str, str | None] | None = None,
    ) -> Vector:
        """Features from ``events`` strictly before ``cutoff`` (later ones are ignored)."""
        t = micros(cutoff)
        arrays = self.enc.one_customer(customer_id, events, t)
        matrix = self.kernel(arrays, t)
        out: Vector = dict(zip(matrix.names, matrix.values[0].tolist(), strict=True))
        for name, (codes, vocab) in matrix.categorical.items():
            out[name] = vocab[codes[0]] if codes[0] >= 0 else None
        for name in self.spec.attributes:
            out[f"attr_{name}"] = (attributes or {}).get(name)
        return out
