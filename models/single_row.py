"""One-row LightGBM predictions through the C API's fast single-row path.

``Booster.predict`` rebuilds its predictor, parses parameters and converts the input on every
call: ~0.1-0.3 ms, more than the trees themselves for one row. LightGBM's
``PredictForMatSingleRowFast`` keeps a prepared predictor ("FastConfig") instead; serving
scores one customer per request, so each model keeps two (probabilities and leaf indices).
A FastConfig is not safe to share between threads, hence the lock.
"""

from __future__ import annotations

import ctypes
import threading

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
from lightgbm.basic import _LIB, _safe_call  # type: ignore[attr-defined]

PREDICT_NORMAL = 0
PREDICT_LEAF_INDEX = 2
FLOAT32 = 0


class SingleRow:
    def __init__(self, booster: lgb.Booster, num_iteration: int) -> None:
        self._booster = booster  # keeps the handle alive as long as the configs
        self.n_features = booster.num_feature()
        k = booster.num_model_per_iteration()
        self.n_out = k
        self.n_trees = num_iteration * k
        self._lock = threading.Lock()
        self._normal = self._config(PREDICT_NORMAL, num_iteration)
        self._leaf = self._config(PREDICT_LEAF_INDEX, num_iteration)
        self._out = np.zeros(max(self.n_out, self.n_trees), np.float64)
        self._len = ctypes.c_int64(0)

    def _config(self, kind: int, num_iteration: int) -> ctypes.c_void_p:
        handle = ctypes.c_void_p()
        _safe_call(_LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
            self._booster._handle, ctypes.c_int(kind), ctypes.c_int(0),
            ctypes.c_int(num_iteration), ctypes.c_int(FLOAT32), ctypes.c_int32(self.n_features),
            ctypes.c_char_p(b"num_threads=1"), ctypes.byref(handle)))
        return handle

    def _run(self, config: ctypes.c_void_p, row: npt.NDArray[np.float32], n: int) -> np.ndarray:
        if row.shape != (self.n_features,) or row.dtype != np.float32:
            raise ValueError(f"one float32 row of {self.n_features} features expected, "
                             f"not {row.dtype} {row.shape}")
        row = np.ascontiguousarray(row)
        with self._lock:
            _safe_call(_LIB.LGBM_BoosterPredictForMatSingleRowFast(
                config, ctypes.c_void_p(row.ctypes.data), ctypes.byref(self._len),
                ctypes.c_void_p(self._out.ctypes.data)))
            return self._out[:n].copy()

    def predict(self, row: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
        """As ``booster.predict(row[None], num_iteration=...)[0]``: the positive class's
        probability (binary) or one per class."""
        return self._run(self._normal, row, self.n_out)

    def leaves(self, row: npt.NDArray[np.float32]) -> npt.NDArray[np.int64]:
        return self._run(self._leaf, row, self.n_trees).astype(np.int64)

    def __del__(self) -> None:
        for name in ("_normal", "_leaf"):
            handle = getattr(self, name, None)
            if handle is not None and handle.value:
                _LIB.LGBM_FastConfigFree(handle)
