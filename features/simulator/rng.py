"""Counter-based random numbers: every draw is a pure function of (seed, customer, day, replica,
stream). A customer's path therefore does not depend on how customers are chunked or spread
over processes, and the oracle can replay any customer up to a cutoff exactly and then fork
independent futures (replicas) that share draws across treatment arms (common random numbers).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

U64 = npt.NDArray[np.uint64]
F64 = npt.NDArray[np.float64]

_G1 = np.uint64(0x9E3779B97F4A7C15)
_G2 = np.uint64(0xD1B54A32D192ED03)
_G3 = np.uint64(0xAEF17502108EF2D9)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_TO_UNIT = 2.0**-53


def mix(z: U64) -> U64:
    """SplitMix64's finaliser: a bijective avalanche of 64-bit integers (wraps on purpose)."""
    with np.errstate(over="ignore"):
        z = (z ^ (z >> _S30)) * _M1
        z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


def customer_keys(seed: int, customers: npt.NDArray[np.int64]) -> U64:
    base = mix(np.array([seed & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64))[0]
    with np.errstate(over="ignore"):
        return mix(customers.astype(np.uint64) * _G1 + base)


def day_keys(ckeys: U64, day: int, replica: int = 0) -> U64:
    with np.errstate(over="ignore"):
        salt = np.uint64(day + 1) * _G2 + np.uint64(replica) * _G3
    return mix(ckeys ^ salt)


def uniform(keys: U64, stream: int) -> F64:
    """U(0,1) per key for a numbered stream; never exactly 0."""
    with np.errstate(over="ignore"):
        z = mix(keys + np.uint64(stream + 1) * _G1)
    return ((z >> _S11).astype(np.float64) + 0.5) * _TO_UNIT


def normal(keys: U64, stream: int) -> F64:
    """Standard normal by Box-Muller from two streams."""
    u1, u2 = uniform(keys, stream), uniform(keys, stream + 1)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


def categorical(u: F64, probs: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    """Index drawn by inverse CDF; ``probs`` is (k,) shared or (n, k) per row."""
    cum = np.cumsum(probs, axis=-1)
    cum = cum / cum[..., -1:]
    if cum.ndim == 1:
        index = np.searchsorted(cum, u, side="right")
    else:
        index = (u[:, None] >= cum).sum(axis=1)
    drawn: npt.NDArray[np.int64] = np.minimum(index, cum.shape[-1] - 1).astype(np.int64)
    return drawn


def geometric(u: F64, mean: F64 | float) -> npt.NDArray[np.int64]:
    """Count >= 0 with the given mean (geometric on {0, 1, ...})."""
    p = 1.0 / (1.0 + np.asarray(mean, dtype=np.float64))
    counts: npt.NDArray[np.int64] = np.floor(np.log(u) / np.log1p(-p)).astype(np.int64)
    return counts
