"""Settings of the prediction service (env vars prefixed JOURNEY_, or a .env file)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from features.memory import MemorySize
from features.settings_sources import BlankIsUnset


class ServeSettings(BlankIsUnset):
    model_config = SettingsConfigDict(env_prefix="JOURNEY_", env_file=".env", extra="ignore")

    home: Path = Path("var")
    store: Path | None = None  # the DuckDB event store; default: <home>/events.duckdb
    # What DuckDB may hold in memory for the service's store (as `journey ingest`'s
    # JOURNEY_STORE_MEMORY); the histories loaded at start are numpy arrays outside it.
    store_memory: MemorySize = "4GB"
    taxonomy: Path | None = None
    feature_spec: Path | None = None
    mlflow_tracking_uri: str | None = None  # default: SQLite file <home>/mlflow/mlflow.db
    api_keys: Path | None = None  # hashed API keys; default: <home>/api_keys.yaml
    model_alias: str = "champion"  # the registry alias served
    # Pin the scoring clock (replays and simulations whose events are in the past); default:
    # the wall clock at each request.
    as_of: datetime | None = None
    max_body_bytes: Annotated[int, Field(ge=1024)] = 2_000_000
    max_batch: Annotated[int, Field(ge=1)] = 1000  # customers per /predict/batch
    max_events: Annotated[int, Field(ge=1)] = 5000  # events per /events request, or inline history
    reasons: Annotated[int, Field(ge=0, le=20)] = 3  # reason codes per model
    risk_bands: tuple[float, float] = (0.3, 0.6)  # churn probability: low < a <= medium < b
    # Days at which /predict reports the survival probability (those within the served
    # time-to-churn model's horizon).
    survival_days: tuple[Annotated[int, Field(ge=1)], ...] = (7, 30, 90)
    reload_poll_seconds: Annotated[float, Field(ge=0)] = 0.0  # 0: reload only through /admin/reload
    future_tolerance_seconds: Annotated[float, Field(ge=0)] = 300.0  # later events are refused
    # DuckDB checkpoints the store when its write-ahead log reaches this size (~360 bytes per
    # single-event ingest: 2 MB is ~5,800 events); see EventStore.serve_appends. The log is
    # durable either way.
    store_checkpoint_mb: Annotated[int, Field(ge=1, le=65_536)] = 2
    # How long a thread may hold the interpreter lock while another waits for it (Python's
    # default is 5 ms). An ingest's store statements each give the lock up and wait to take
    # it back from the event loop: at 5 ms a one-event ingest took 11-14 ms (p50) in
    # benchmarks/load.py's mix, at 0.5 ms 9-11 ms; single predicts were no slower there or in
    # benchmarks/serving.py (p99 3.67 ms).
    switch_interval_ms: Annotated[float, Field(gt=0, le=100)] = 0.5
    # POST /predict's well-formed requests answered without FastAPI's per-request machinery
    # (serving/fast_predict.py: the same model, key check, answer and errors); false: by
    # FastAPI, as every other route.
    fast_predict: bool = True
    # Next-best-action: the action catalog (default: the packaged one) and overrides of its
    # policy's top_k and exploration share; a seed makes exploration reproducible (tests).
    action_catalog: Path | None = None
    nba_top_k: Annotated[int | None, Field(ge=1, le=20)] = None
    nba_exploration: Annotated[float | None, Field(ge=0, lt=1)] = None
    nba_seed: int | None = None
    # Batch scoring and segments: score snapshots (default <home>/scores) and their settings
    # (default: the packaged serving/config/segments.yaml).
    scores: Path | None = None
    segments_config: Path | None = None
    # The journey map's and KPIs' parameters each score computes them with: drop-off and
    # retention windows, kpi_months, clv_years, CSAT/NPS scores (default: the packaged
    # models/config/journey_map.yaml).
    journey_map_config: Path | None = None
    # Behavioural trigger rules, endpoints and delivery (default: the packaged
    # serving/config/triggers.yaml); firings are kept in <home>/triggers.sqlite.
    triggers: Path | None = None
    # Drift monitoring: a window of the newest scored rows (at most drift_window_rows, none
    # older than drift_window_seconds, 0: no age limit), compared with the champions'
    # training profiles every drift_eval_seconds (0: only when /v1/drift asks); thresholds
    # and binning from drift_config (default: the packaged models/config/drift.yaml), in a
    # child process when drift_worker (its ~0.1 s of numpy and pandas a comparison would
    # otherwise hold the interpreter beside the requests; see models/drift_worker.py).
    drift_window_rows: Annotated[int, Field(ge=10, le=1_000_000)] = 5000
    drift_window_seconds: Annotated[float, Field(ge=0)] = 7 * 86_400.0
    drift_eval_seconds: Annotated[float, Field(ge=0)] = 60.0
    drift_config: Path | None = None
    drift_worker: bool = True
    # Scoring runs (POST /v1/admin/score) in a child process (serving/score_worker.py): a
    # run is seconds of Python per customer that would otherwise hold the interpreter beside
    # the requests. The child keeps its own copy of the champions (memory) between runs.
    score_worker: bool = True
    # Once loaded, the service collects and then freezes its heap (gc.freeze) so the full
    # collections a request's allocations trigger skip the models and histories (p99 spikes),
    # and `journey score` does so before its run (serving/memory.py). Off when either runs
    # inside a larger Python process (create_app in a host app, the CLI called from Python, a
    # test): the collection would walk, and the freeze pin, the host's objects too; seconds
    # each time in a test process holding a session's fixtures.
    freeze_heap: bool = True
    # Operations: the log's format (text: lines like BentoML's, ISO 8601 UTC; json: one object
    # per line, for log shippers; serving/logs.py), and the time over which a request is
    # logged as slow with its id, route and status (0: none is). The request timeout is 60 s.
    log_format: Literal["text", "json"] = "text"
    slow_request_seconds: Annotated[float, Field(ge=0)] = 5.0
    # At a stop (SIGTERM: `journey stop`, a deploy), new connections are refused and the
    # requests already received have this long to be answered before they are cut (a 503,
    # logged; 0: at once); then the store closes (serving/draining.py). Predictions take
    # milliseconds and a 1,000-customer batch well under a second, so 15 s leaves room for
    # slow exports under load while the whole stop stays within an orchestrator's usual 30 s
    # before its SIGKILL (Kubernetes' default terminationGracePeriodSeconds); `journey stop`
    # waits this long and 10 s more before killing. Above the 60 s request timeout it could
    # never help.
    stop_grace_seconds: Annotated[float, Field(ge=0, le=60)] = 15.0

    @field_validator("as_of")
    @classmethod
    def _utc(cls, v: datetime | None) -> datetime | None:
        # A date or time without a zone is UTC, as the CLI's --as-of reads it: a naive clock
        # passed the start-up check, then failed every request against aware event times.
        return v.replace(tzinfo=UTC) if v is not None and v.tzinfo is None else v

    @field_validator("risk_bands")
    @classmethod
    def _ordered(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not 0 < v[0] < v[1] < 1:
            raise ValueError("risk_bands must be two probabilities 0 < low < high < 1")
        return v

    @property
    def store_path(self) -> Path:
        return self.store or self.home / "events.duckdb"

    @property
    def scores_path(self) -> Path:
        return self.scores or self.home / "scores"

    @property
    def backtests_path(self) -> Path:
        """Where `journey backtest` stores its results (read by GET /v1/backtest)."""
        return self.home / "backtests"

    @property
    def firings_path(self) -> Path:
        return self.home / "triggers.sqlite"

    @property
    def keys_path(self) -> Path:
        return self.api_keys or self.home / "api_keys.yaml"

    @property
    def tracking_uri(self) -> str:
        local = self.home.resolve() / "mlflow" / "mlflow.db"
        return self.mlflow_tracking_uri or f"sqlite:///{local}"
