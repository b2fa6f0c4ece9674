"""Persona features: behavioural ratios from the columns of a customer's feature vector.

One function, ``persona_features``, turns any source of vector columns (a feature snapshot
frame or table when fitting, the online ``Vectors`` of a scoring chunk when assigning) into the
same matrix, so a customer gets the same persona whichever way the vector arrives.

Why ratios: raw counts mostly measure how active and how old a customer is, which every kind
of customer can be; what tells kinds apart is *how* they behave (views per visit, cart and
purchase rates, order size, logins, tickets, channel mix). The ratios come from one window's
counts (``n_<type>_<w>d``, ``ch_<channel>_<w>d``, ``sessions_<w>d``) so they describe recent
behaviour; order value and CSAT are the vector's own lifetime means. A ratio whose denominator
is zero is missing (NaN), not zero: "never saw a product" is not "never added one to a cart".
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa

from features.online import Vectors

F64 = npt.NDArray[np.float64]

# name -> (numerator, denominator) event counts of the window (``<count>_<w>d``)
RATIOS: dict[str, tuple[str, str]] = {
    "product_views_per_session": ("n_product_view", "sessions"),
    "cart_rate": ("n_add_to_cart", "n_product_view"),
    "checkout_rate": ("n_checkout", "n_add_to_cart"),
    "buy_rate": ("n_purchase", "n_checkout"),
    "logins_per_session": ("n_account_login", "sessions"),
    "tickets_per_session": ("n_support_ticket", "sessions"),
    "ad_click_rate": ("n_ad_click", "n_ad_impression"),
    "email_click_rate": ("n_email_click", "n_email_open"),
}
ORDER_VALUE = "log_order_value"  # log of avg_order_value: order sizes are skewed
CSAT = "csat_mean"
SHARE = "share_"  # share_<channel>: the channel's part of the window's touchpoints


class Columns(Protocol):
    """Numeric vector columns by name, one value per customer."""

    def __len__(self) -> int: ...

    def names(self) -> Sequence[str]: ...

    def get(self, name: str) -> F64 | None:
        """The column as float64 (NaN: missing), or None when the source has no such column."""
        ...


class FrameColumns:
    """A feature snapshot as a pandas frame or an Arrow table."""

    def __init__(self, frame: pd.DataFrame | pa.Table) -> None:
        self.frame = frame

    def __len__(self) -> int:
        return len(self.frame) if isinstance(self.frame, pd.DataFrame) else self.frame.num_rows

    def names(self) -> Sequence[str]:
        return [str(c) for c in (self.frame.columns if isinstance(self.frame, pd.DataFrame)
                                 else self.frame.column_names)]

    def get(self, name: str) -> F64 | None:
        if name not in self.names():
            return None
        col = self.frame[name]
        if isinstance(col, pd.Series):
            return np.asarray(pd.to_numeric(col, errors="coerce"), np.float64)
        return np.asarray(col.to_numpy(zero_copy_only=False), np.float64)


class VectorColumns:
    """The online vectors of a scoring chunk: columns of the kernel's matrix, no copies of
    the rest (a million customers are assigned from the matrix scoring already holds)."""

    def __init__(self, vectors: Vectors) -> None:
        self.vectors = vectors
        self.index = {name: j for j, name in enumerate(vectors.matrix.names)}

    def __len__(self) -> int:
        return len(self.vectors)

    def names(self) -> Sequence[str]:
        return list(self.index)

    def get(self, name: str) -> F64 | None:
        j = self.index.get(name)
        return None if j is None else np.asarray(self.vectors.matrix.values[:, j], np.float64)


def columns_of(x: pd.DataFrame | pa.Table | Vectors | Columns) -> Columns:
    if isinstance(x, Vectors):
        return VectorColumns(x)
    if isinstance(x, pd.DataFrame | pa.Table):
        return FrameColumns(x)
    return x


def channels_in(cols: Columns, window_days: int) -> list[str]:
    """The channels the source has window counts for (``ch_<channel>_<w>d``), in its order."""
    pattern = re.compile(rf"^ch_(.+)_{window_days}d$")
    return [m.group(1) for n in cols.names() if (m := pattern.match(n))]


def feature_names(channels: Sequence[str]) -> list[str]:
    return [*RATIOS, ORDER_VALUE, CSAT, *(f"{SHARE}{c}" for c in channels)]


def persona_features(cols: Columns, window_days: int, channels: Sequence[str]) -> F64:
    """(customers, features) in the order of ``feature_names(channels)``; NaN where a ratio is
    undefined or the source lacks a column."""
    n, w = len(cols), window_days
    out = np.full((n, len(RATIOS) + 2 + len(channels)), np.nan)

    def count(name: str) -> F64 | None:
        return cols.get(f"{name}_{w}d")

    for j, (num, den) in enumerate(RATIOS.values()):
        out[:, j] = _ratio(count(num), count(den), n)
    aov = cols.get("avg_order_value")
    if aov is not None:
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:, len(RATIOS)] = np.where(aov > 0, np.log(np.where(aov > 0, aov, 1.0)), np.nan)
    csat = cols.get(CSAT)
    if csat is not None:
        out[:, len(RATIOS) + 1] = csat
    shares = [count(f"ch_{c}") for c in channels]
    present = [s for s in shares if s is not None]
    if present:
        total = np.sum([np.nan_to_num(s) for s in present], axis=0)
        for j, s in enumerate(shares):
            out[:, len(RATIOS) + 2 + j] = _ratio(s, total, n)
    return out


def activity(cols: Columns, window_days: int) -> F64:
    """Customer events in the window (marketing contacts excluded): how much behaviour the
    ratios rest on."""
    events = cols.get(f"events_{window_days}d")
    return np.zeros(len(cols)) if events is None else np.nan_to_num(events)


def _ratio(num: F64 | None, den: F64 | None, n: int) -> F64:
    if num is None or den is None:
        return np.full(n, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, np.nan_to_num(num) / np.where(den > 0, den, 1.0), np.nan)
