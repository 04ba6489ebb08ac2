"""A trained-model environment: a 6,000-member cohort, its diabetes snapshot and a real MLflow store."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from chronorisk.model.product import load_product
from chronorisk.model.registry import connect
from chronorisk.synthetic.cohort import load_profile, synthesize
from training.run_record import TrainResult
from training.snapshot import build_snapshot
from training.train import train_product

EXTRACT = date(2024, 12, 31)
PEPPER = b"model-test-pepper"


@pytest.fixture(scope="session")
def model_cohort(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cohort6k")
    synthesize(members=6_000, seed=11, out_dir=out, profile=load_profile(Path("experiments/profiles/default.yaml")),
               workers=2)
    return out


@pytest.fixture(scope="session")
def diabetes_snapshot(model_cohort, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("snapshots") / "diabetes.parquet"
    build_snapshot(model_cohort, load_product("diabetes"), out, extract_date=EXTRACT, pepper=PEPPER,
                   chunk_members=3_000, progress=False)
    return out


@pytest.fixture
def mlflow_store(tmp_path):
    """A fresh SQLite-backed tracking store and artifact root per test."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = connect(uri)
    return client, tmp_path / "mlartifacts"


@pytest.fixture(scope="session")
def _trained_store(diabetes_snapshot, tmp_path_factory):
    """One diabetes model trained and registered once per session, for every test that only reads it."""
    folder = tmp_path_factory.mktemp("trained")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    connect(uri)
    result = train_product(load_product("diabetes"), diabetes_snapshot, artifact_root=folder / "mlartifacts",
                           pepper=PEPPER, seed=7)
    return uri, folder, result


@pytest.fixture
def trained(_trained_store) -> tuple[object, Path, TrainResult]:
    """(client, store folder, result) of the shared model, with the tracking URI pointed back at its store."""
    uri, folder, result = _trained_store
    return connect(uri), folder, result
