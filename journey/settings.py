"""Settings of the `journey` command line (env vars prefixed JOURNEY_, or a .env file)."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="JOURNEY_", env_file=".env", extra="ignore")

    home: Path = Path("var")
    store: Path | None = None  # the DuckDB event store; default: <home>/events.duckdb
    taxonomy: Path | None = None  # stage taxonomy YAML; default: the one shipped with Journey
    feature_spec: Path | None = None  # feature definitions YAML; default: the shipped one
    snapshots: Path | None = None  # feature/label snapshots; default: <home>/snapshots

    @property
    def store_path(self) -> Path:
        return self.store or self.home / "events.duckdb"

    @property
    def snapshots_path(self) -> Path:
        return self.snapshots or self.home / "snapshots"
