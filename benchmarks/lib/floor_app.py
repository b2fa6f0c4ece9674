"""The floor for the serving benchmark: a bare FastAPI app on uvicorn returning one LightGBM
model's prediction for a precomputed vector (no features, no reasons, no auth, no BentoML).

Run as ``python -m benchmarks.lib.floor_app MODEL_PICKLE PORT``; the pickle holds the booster's
model string, the best iteration and one encoded row.
"""

from __future__ import annotations

import pickle
import sys
from typing import Any

import lightgbm as lgb
import numpy as np
import uvicorn
from fastapi import FastAPI


def build(path: str) -> FastAPI:
    with open(path, "rb") as f:
        saved: dict[str, Any] = pickle.load(f)
    booster = lgb.Booster(model_str=saved["model"])
    row = np.asarray(saved["row"], np.float32)[None, :]
    iteration = int(saved["iteration"])
    app = FastAPI()

    @app.post("/predict")
    async def predict(body: dict[str, Any]) -> dict[str, Any]:
        p = booster.predict(row, num_iteration=iteration, num_threads=1)
        return {"customer_id": body.get("customer_id"), "probability": float(p[0])}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


if __name__ == "__main__":
    uvicorn.run(build(sys.argv[1]), host="127.0.0.1", port=int(sys.argv[2]), log_level="warning",
                access_log=False)
