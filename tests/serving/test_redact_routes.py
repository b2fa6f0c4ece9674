"""/readyz's public reason cuts paths to their file's name but keeps the API's routes, which
the reason names to say what to do."""

from __future__ import annotations

from serving.redact import public_reason


def test_routes_survive_and_paths_are_cut() -> None:
    reason = ("event store not loaded: /srv/alice/home/events.duckdb: StoreError: cannot open "
              "event store /srv/alice/home/events.duckdb: process 7 (the Journey service, "
              "`journey serve`) has it open for writing: stop it first (`journey stop`), or go "
              "through it: POST /v1/events to ingest, POST /v1/admin/score to score (docs: "
              "'/v1/docs'); registry sqlite:////srv/alice/mlflow.db, key file ~/keys/k.yaml")
    assert public_reason(reason) == (
        "event store not loaded: events.duckdb: StoreError: cannot open event store "
        "events.duckdb: process 7 (the Journey service, `journey serve`) has it open for "
        "writing: stop it first (`journey stop`), or go through it: POST /v1/events to ingest, "
        "POST /v1/admin/score to score (docs: '/v1/docs'); registry mlflow.db, key file k.yaml")


def test_a_folder_merely_named_like_the_api_is_still_cut_past_it() -> None:
    # Only the route prefix is spared: what follows a path's other folders is cut as before.
    assert public_reason("no file /srv/v1/home/model.pkl") == "no file model.pkl"
