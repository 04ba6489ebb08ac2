"""MLflow: experiments, runs, the model registry and its aliases, and fetching a version's files.

Registration logs the bundle as a models-from-code pyfunc and records each file's SHA-256 on
the version. Fetching a version downloads its files and loads them with `load_bundle`, which
checks those hashes first; MLflow's model loaders are never called.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature

from chronorisk.model.bundle import LoadedModel, ModelLoadError, hash_tags, hashes_from_tags, load_bundle

MODEL_CODE = Path(__file__).with_name("mlflow_model.py")
MODEL_CODE_PATHS = [str(Path(__file__).with_name(name)) for name in ("linear.py", "blend.py", "calibration.py")]
CHALLENGER, CHAMPION = "challenger", "champion"


def model_name(product: str) -> str:
    return f"{product}-risk"


def connect(tracking_uri: str) -> MlflowClient:
    """Point MLflow at the store (SQLite under the project by default) and return a client."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one bar per file drowns the output
    mlflow.set_tracking_uri(tracking_uri)
    return MlflowClient(tracking_uri=tracking_uri)


def experiment(name: str, artifact_root: Path) -> str:
    """The experiment's id, creating it with artifacts under `artifact_root` (not ./mlruns)."""
    found = mlflow.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    artifact_root.mkdir(parents=True, exist_ok=True)
    return str(mlflow.create_experiment(name, artifact_location=artifact_root.resolve().as_uri()))


def register(bundle_dir: Path, hashes: dict[str, str], input_example: pd.DataFrame, output_example: Any,
             product: str, tags: dict[str, str]) -> ModelVersion:
    """Log the bundle as this run's model, register a version, tag hashes, alias it challenger."""
    info = mlflow.pyfunc.log_model(
        name="model", python_model=str(MODEL_CODE),
        artifacts={name: str(bundle_dir / name) for name in hashes}, code_paths=MODEL_CODE_PATHS,
        input_example=input_example, signature=infer_signature(input_example, output_example),
        pip_requirements=["lightgbm==4.7.0", "numpy", "pandas", "scipy", "scikit-learn"],
        registered_model_name=model_name(product),
    )
    client = MlflowClient()
    version = str(info.registered_model_version)
    for key, value in {**hash_tags(hashes), **tags}.items():
        client.set_model_version_tag(model_name(product), version, key, value)
    client.set_registered_model_alias(model_name(product), CHALLENGER, version)
    return client.get_model_version(model_name(product), version)


def resolve(client: MlflowClient, product: str, alias_or_version: str) -> ModelVersion:
    """A version by alias ("champion", "challenger") or number; a clear error when there is none."""
    name = model_name(product)
    try:
        if alias_or_version.isdigit():
            return client.get_model_version(name, alias_or_version)
        return client.get_model_version_by_alias(name, alias_or_version)
    except MlflowException as err:
        raise LookupError(f"model {name}: no version {alias_or_version!r} in the registry ({err.error_code})") from err


def alias_version(client: MlflowClient, product: str, alias: str) -> ModelVersion | None:
    try:
        return resolve(client, product, alias)
    except LookupError:
        return None


def fetch(client: MlflowClient, version: ModelVersion, cache_dir: Path | None = None) -> LoadedModel:
    """Download a version's bundle files and load them after checking the registered hashes."""
    hashes = hashes_from_tags(dict(version.tags))
    # load_bundle reads every file into memory, so the download can go once it has loaded.
    with tempfile.TemporaryDirectory(prefix="chronorisk-model-", dir=cache_dir) as dst:
        model_dir = Path(mlflow.artifacts.download_artifacts(artifact_uri=version.source, dst_path=dst))
        local = model_dir / "artifacts"
        if not local.is_dir():
            raise ModelLoadError(f"model version {version.name}/{version.version}: no artifacts folder")
        return load_bundle(local, hashes)
