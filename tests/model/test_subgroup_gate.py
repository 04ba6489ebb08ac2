"""Every training run checks its subgroups and writes a model card; a gap beyond the product's bound is
flagged in the run and refuses promotion."""

from __future__ import annotations

import pandas as pd

from chronorisk.model.card import CARD_TAG_PREFIX, fetch_model_card
from chronorisk.model.product import load_product
from chronorisk.model.registry import CHAMPION, alias_version, model_name, resolve
from training.gate import promote
from training.train import train_product

PEPPER = b"model-test-pepper"


def test_a_subgroup_gap_beyond_its_bound_is_flagged_in_the_run_and_refuses_promotion(diabetes_snapshot,
                                                                                     mlflow_store, tmp_path):
    client, root = mlflow_store
    spec = load_product("diabetes")
    # An AUC gap bound no real model meets between F and M: the check must fire.
    strict = spec.model_copy(update={"gate": spec.gate.model_copy(update={"subgroups": spec.gate.subgroups.model_copy(
        update={"max_auc_gap": 1e-6, "min_events": 20})})})
    result = train_product(strict, diabetes_snapshot, artifact_root=root, pepper=PEPPER, seed=7)
    assert any(f.startswith("sex: AUC gap") for f in result.subgroup_flags)
    run = client.get_run(result.run_id)
    assert run.data.tags["subgroup_flags"].startswith(result.subgroup_flags[0])
    for key in ("subgroup_sex_F_roc_auc", "subgroup_sex_M_roc_auc", "subgroup_age_band_45_64_calibration_gap"):
        assert key in run.data.metrics, key
    table = pd.read_csv(client.download_artifacts(result.run_id, "evaluation/subgroups.csv", str(tmp_path)))
    assert {"class_preferred", "class_uninsurable", "calibration_gap"} <= set(table.columns)

    verdict = promote(client, "diabetes", strict.gate, tmp_path / "promotions.jsonl")
    assert not verdict.promote
    assert any(r.startswith("subgroup gap: sex: AUC gap") for r in verdict.reasons)
    assert alias_version(client, "diabetes", CHAMPION) is None
    card = fetch_model_card(client, "diabetes", str(result.version), "md")
    assert "gate verdict: refused (subgroup gap: " in card and "subgroup gap: sex: AUC gap" in card

    # The same model under the product's own bounds passes the subgroup check and is promoted.
    assert promote(client, "diabetes", spec.gate, tmp_path / "promotions.jsonl").promote
    assert "gate verdict: promoted" in fetch_model_card(client, "diabetes", str(result.version), "md")


def test_every_registered_version_has_a_hash_checked_model_card_from_its_run(diabetes_snapshot, mlflow_store):
    client, root = mlflow_store
    spec = load_product("diabetes")
    version = train_product(spec, diabetes_snapshot, artifact_root=root, pepper=PEPPER, seed=7).version
    mv = resolve(client, "diabetes", str(version))
    assert "gate verdict: not yet judged" in fetch_model_card(client, "diabetes", str(version), "md")
    assert {CARD_TAG_PREFIX + "md", CARD_TAG_PREFIX + "html"} <= set(mv.tags)
    card = fetch_model_card(client, "diabetes", str(version), "md")
    run = client.get_run(str(mv.run_id))
    assert f"| roc_auc | {run.data.metrics['test_roc_auc']:.4f} |" in card
    assert f"Registered from MLflow run `{mv.run_id}`" in card
    assert "## Features and monotone constraints" in card and "| age_years | years |" in card
    html = fetch_model_card(client, "diabetes", str(version), "html")
    assert html.startswith("<!doctype html>") and "<script" not in html
    # A card edited after logging is refused.
    client.set_model_version_tag(model_name("diabetes"), str(version), CARD_TAG_PREFIX + "md", "0" * 64)
    try:
        fetch_model_card(client, "diabetes", str(version), "md")
    except LookupError as err:
        assert "differs from the logged SHA-256" in str(err)
    else:
        raise AssertionError("a card whose hash does not match was served")
