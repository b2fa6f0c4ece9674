"""The batch scoring and segment settings (``serving/config/segments.yaml``), validated: an
error names the file and the key."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from features.errors import ConfigError
from features.spec import FeatureSpec
from features.yaml_config import read_config, validated

# Dimensions every snapshot has (persona: null for all when no persona model is served); the
# rest must be customer attributes of the feature spec.
BUILT_IN = ("tier", "stage", "persona")


class _Schema(BaseModel):
    model_config = ConfigDict(extra="forbid")
    value_window_days: int = Field(gt=0)
    value_horizon_days: int = Field(gt=0)
    dimensions: list[str] = Field(min_length=1)
    chunk_customers: int = Field(ge=1000)
    keep_snapshots: int = Field(ge=2)


@dataclass(frozen=True)
class SegmentConfig:
    value_window_days: int
    value_horizon_days: int
    dimensions: tuple[str, ...]
    chunk_customers: int
    keep_snapshots: int
    source: str = "<segments>"

    @property
    def attributes(self) -> tuple[str, ...]:
        return tuple(d for d in self.dimensions if d not in BUILT_IN)


def load_segment_config(path: Path | None, spec: FeatureSpec) -> SegmentConfig:
    config = read_config(path, "serving.config", "segments.yaml", "segment settings")
    parsed, source = validated(_Schema, *config), config.source
    if parsed.value_window_days not in spec.windows_days:
        raise ConfigError(
            f"{source}: value_window_days: {parsed.value_window_days} is not one of the feature "
            f"spec's windows_days {list(spec.windows_days)}")
    for i, dim in enumerate(parsed.dimensions):
        if dim not in BUILT_IN and dim not in spec.attributes:
            raise ConfigError(
                f"{source}: dimensions[{i}]: {dim!r} is neither tier, stage, persona nor a "
                f"customer attribute of the feature spec ({', '.join(spec.attributes)})")
    if len(set(parsed.dimensions)) != len(parsed.dimensions):
        raise ConfigError(f"{source}: dimensions: a dimension is listed twice")
    return SegmentConfig(parsed.value_window_days, parsed.value_horizon_days,
                         tuple(parsed.dimensions), parsed.chunk_customers, parsed.keep_snapshots,
                         source)
