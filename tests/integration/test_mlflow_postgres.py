"""MLflow on a PostgreSQL-backed store, for real: a run is logged, a version registered and fetched."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from chronorisk.model.product import load_product
from chronorisk.model.registry import CHALLENGER, connect, fetch, resolve
from chronorisk.synthetic.cohort import load_profile, synthesize
from training.snapshot import build_snapshot
from training.train import train_product


def test_a_postgres_backed_store_holds_the_run_and_the_registered_version(postgres_url, tmp_path):
    data = tmp_path / "cohort"
    synthesize(members=2_500, seed=21, out_dir=data, profile=load_profile(Path("experiments/profiles/default.yaml")))
    snapshot = tmp_path / "diabetes.parquet"
    spec = load_product("diabetes")
    build_snapshot(data, spec, snapshot, extract_date=date(2024, 12, 31), pepper=b"pg", progress=False)
    client = connect(postgres_url)
    try:
        result = train_product(spec, snapshot, artifact_root=tmp_path / "mlartifacts", pepper=b"pg", seed=5)
        assert client.get_run(result.run_id).data.metrics["test_roc_auc"] == result.test_metrics["roc_auc"]
        model = fetch(client, resolve(client, "diabetes", CHALLENGER))
        assert model.spec.name == "diabetes"
        assert str(resolve(client, "diabetes", CHALLENGER).version) == result.version
    finally:
        connect("sqlite:///:memory:")
