"""Model tests share the two cores with other work: one thread for LightGBM and BLAS, since
OpenMP spin-waiting on a busy core makes fits many times slower."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from threadpoolctl import threadpool_limits


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    with threadpool_limits(1):
        yield
