"""Persona discovery's settings, its registered name and its errors: what the command line
needs before it fits anything, without scikit-learn (``models.personas`` fits)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from features.errors import JourneyError
from features.yaml_config import read_config, validated

REGISTERED_NAME = "journey-personas"


class PersonaError(JourneyError):
    """Persona discovery cannot run on this data (too few active customers, no features)."""


class TooFewActiveError(PersonaError):
    """Too few customers with ``min_events`` in the window: ``found`` says how many, then
    ``lead`` and ``options`` what would let more in. The model knows its settings, not the
    data's time range: a caller that knows a later cutoff exists adds it (``adding``)."""

    def __init__(self, found: str, lead: str, options: list[str]) -> None:
        self.found, self.lead, self.options = found, lead, options
        super().__init__(f"{found} ({lead}{', or '.join(options)})")

    def adding(self, option: str) -> TooFewActiveError:
        return TooFewActiveError(self.found, self.lead, [*self.options, option])


class _Schema(BaseModel):
    model_config = ConfigDict(extra="forbid")
    window_days: int = Field(90, gt=0)
    min_events: int = Field(20, ge=1)
    k_min: int = Field(3, ge=2)
    k_max: int = Field(8, ge=2)
    silhouette_sample: int = Field(5000, ge=100)
    n_init: int = Field(10, ge=1)
    winsor: float = Field(0.01, ge=0, lt=0.5)
    max_missing: float = Field(0.6, gt=0, le=1)
    max_correlation: float = Field(0.8, gt=0, le=1)
    max_fit_customers: int = Field(200_000, ge=100)
    top_features: int = Field(3, ge=1)
    seed: int = 0

    @model_validator(mode="after")
    def _range(self) -> _Schema:
        if self.k_max < self.k_min:
            raise ValueError(f"k_max ({self.k_max}) must be at least k_min ({self.k_min})")
        return self


@dataclass(frozen=True)
class PersonaParams:
    window_days: int = 90
    min_events: int = 20
    k_min: int = 3
    k_max: int = 8
    silhouette_sample: int = 5000
    n_init: int = 10
    winsor: float = 0.01
    max_missing: float = 0.6
    max_correlation: float = 0.8
    max_fit_customers: int = 200_000
    top_features: int = 3
    seed: int = 0


def load_persona_params(path: str | Path | None = None) -> PersonaParams:
    """Persona settings (None: the shipped ``models/config/personas.yaml``); an error names
    the file and the key."""
    config = read_config(path, "models.config", "personas.yaml", "persona settings",
                         empty_ok=True)
    parsed = validated(_Schema, *config)
    return PersonaParams(**parsed.model_dump())
