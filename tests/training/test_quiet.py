"""MLflow's three registration notes leave stderr; everything else written there stays."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from training.quiet import without_registration_notes


def test_only_the_registration_notes_are_dropped(capsys: pytest.CaptureFixture[str]) -> None:
    with without_registration_notes():
        print("Successfully registered model 'journey-churn'.", file=sys.stderr)
        print("Registered model 'journey-churn' already exists. Creating a new version of this "
              "model...", file=sys.stderr)
        print("Created version '12' of model 'journey-churn'.", file=sys.stderr)
        print("a warning about something else", file=sys.stderr)
        sys.stderr.write("Created version is a phrase ")  # not a note: no quoted version
        sys.stderr.write("here\npartial line at the end")
    print(" and after", file=sys.stderr)
    assert capsys.readouterr().err == ("a warning about something else\n"
                                       "Created version is a phrase here\n"
                                       "partial line at the end and after\n")


def test_a_real_registration_prints_no_notes(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    import mlflow
    import mlflow.sklearn
    from sklearn.linear_model import LogisticRegression

    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        # Its own artifact folder: the default experiment's would be ./mlruns in the checkout.
        experiment = mlflow.create_experiment("quiet", artifact_location=(tmp_path / "a").as_uri())
        model = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
        for _ in range(2):  # the first creates the registered model, the second a new version
            with mlflow.start_run(experiment_id=experiment), without_registration_notes():
                mlflow.sklearn.log_model(model, name="model", registered_model_name="quiet-test",
                                         pip_requirements=["scikit-learn"])
    finally:
        mlflow.set_tracking_uri(previous)
    err = capsys.readouterr().err
    assert "registered model" not in err.lower() and "Created version" not in err
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert len(client.search_model_versions("name='quiet-test'")) == 2
