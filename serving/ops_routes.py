"""What an operator asks the service itself: which build runs, since when, on which clock."""

from __future__ import annotations

from datetime import datetime

from fastapi import Request
from pydantic import BaseModel, Field

from serving.build import BuildInfo
from serving.deps import StateDep
from serving.route_table import RouteTable

api = RouteTable()


class VersionOut(BaseModel):
    version: str = Field(description="Journey's package version.")
    commit: str = Field(description="The source commit (12 hex digits), or \"unknown\".")
    python: str
    started_at: datetime = Field(description="When this service process started (UTC).")
    as_of: datetime | None = Field(description="The scoring clock pinned by JOURNEY_AS_OF; "
                                   "null: requests are answered as of now.")


@api.get("/version", tags=["health"])
async def version(request: Request, state: StateDep) -> VersionOut:
    """What runs (no key needed, as /healthz and /readyz, which tell the served model
    versions to anyone already): version, commit, start time and a pinned clock."""
    info: BuildInfo = request.app.state.build
    return VersionOut(version=info.version, commit=info.commit, python=info.python,
                      started_at=info.started_at, as_of=state.settings.as_of)
