"""The SHAP portfolio report end to end: the real champion from a real MLflow store, the real
cohort's raw records, the HTML opened in headless Chromium (Debian's, driven by Playwright)."""

from __future__ import annotations

import shutil
import subprocess
from datetime import date

import numpy as np
import pandas as pd
import pytest
from service_fixtures import EXTRACT, PEPPER, copy_store
from typer.testing import CliRunner

from chronorisk.data.pseudonym import member_refs
from chronorisk.insights.report import REPORT_FILE, SHAP_FILE, ReportResult, run_report
from chronorisk.model.registry import connect, fetch, resolve
from features.build import compute_features
from training.labels import recorded_events

INDEX_DATE = date(2025, 1, 1)  # the day after the cohort's extract date: the report's default


@pytest.fixture(scope="module")
def report_store(model_store, tmp_path_factory) -> str:
    uri, _ = copy_store(model_store, tmp_path_factory.mktemp("report-store"))
    return uri


@pytest.fixture(scope="module")
def report(model_store, report_store, tmp_path_factory) -> ReportResult:
    out = tmp_path_factory.mktemp("report")
    return run_report(report_store, "diabetes", out, pepper=PEPPER.encode(), data_dir=model_store.cohort,
                      progress=False)


@pytest.fixture(scope="module")
def champion(report_store):
    client = connect(report_store)
    return client, resolve(client, "diabetes", "champion")


def _portfolio_pairs(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Members enrolled on the index date without diabetes on record, worked out here on their own."""
    from chronorisk.model.product import load_product

    m = tables["members"]
    t = pd.Timestamp(INDEX_DATE)
    enrolled = m[(m["enrollment_start"] <= t) & (m["enrollment_end"].isna() | (m["enrollment_end"] >= t))]
    first = recorded_events(tables, load_product("diabetes"))
    prevalent = set(first.index[first < t])
    ids = [i for i in enrolled["member_id"].astype("str") if i not in prevalent]
    return pd.DataFrame({"member_id": ids, "index_date": t})


def test_shap_values_add_up_to_the_models_raw_output_for_every_row(report, champion):
    client, mv = champion
    model = fetch(client, mv)
    frame = pd.read_parquet(report.shap_parquet)
    x = frame[model.features].to_numpy(dtype=float)
    raw = np.asarray(model.scorer.predict(x, raw_score=True))
    shap_sum = frame[[f"shap__{f}" for f in model.features]].sum(axis=1) + frame["shap__base_value"]
    np.testing.assert_allclose(shap_sum.to_numpy(), raw, rtol=0, atol=1e-9)
    np.testing.assert_allclose(frame["raw_score"].to_numpy(), raw, rtol=0, atol=0)
    assert len(frame) == report.members > 1_000


def test_the_portfolio_is_every_enrolled_member_without_the_disease_and_ids_are_pseudonymous(report, model_store):
    frame = pd.read_parquet(report.shap_parquet)
    pairs = _portfolio_pairs(model_store.tables)
    assert set(frame["member_ref"]) == set(member_refs(pairs["member_id"], PEPPER.encode()))
    assert "member_id" not in frame
    raw_ids = set(model_store.tables["members"]["member_id"].astype("str"))
    html = report.html.read_text()
    assert not any(i in html for i in list(raw_ids)[:200])


def test_what_if_is_computed_by_re_scoring_edited_records(report, model_store, champion):
    client, mv = champion
    model = fetch(client, mv)
    tables = model_store.tables
    pairs = _portfolio_pairs(tables)
    # The BMI scenario done here by hand: every recorded weight minus 2 x (height in metres) squared,
    # with the member's median recorded height for consultations and the application's own height.
    cons = tables["consultations"].copy()
    median_h = cons.groupby("member_id")["height_cm"].transform("median")
    cons["weight_kg"] = cons["weight_kg"] - 2 * (median_h / 100) ** 2
    apps = tables["applications"].copy()
    apps["weight_kg"] = apps["weight_kg"] - 2 * (apps["height_cm"] / 100) ** 2
    edited = {**tables, "consultations": cons, "applications": apps}

    def probability(t: dict[str, pd.DataFrame]) -> np.ndarray:
        x = compute_features(t, pairs)[model.features].to_numpy(dtype=float)
        return model.calibration.probability(np.asarray(model.scorer.predict(x, raw_score=True)))

    before, after = probability(tables), probability(edited)
    result = {s.name: s for s in report.scenarios}["bmi_minus_2"]
    assert result.members == len(pairs)
    assert result.expected_claims_before == pytest.approx(before.sum(), rel=1e-12)
    assert result.expected_claims_after == pytest.approx(after.sum(), rel=1e-12)
    assert result.expected_claims_after < result.expected_claims_before  # lower BMI, lower risk (monotone)
    spec = model.spec
    assert result.changed_class == int((spec.class_index(before) != spec.class_index(after)).sum()) > 0


def test_each_what_if_stands_beside_the_generators_counterfactual_truth(report):
    """The steps scenario moves the model's expected claims and the true onsets both, the same way."""
    import json

    summary = json.loads((report.html.parent / "report.json").read_text())
    steps = {s["name"]: s for s in summary["scenarios"]}["steps_8000"]
    assert steps["true_members"] > 0 and steps["true_onsets_before"] > 0
    assert steps["true_relative_change"] < 0  # more steps: fewer true onsets (the generator's hazard)
    # The model may only lower risk with more steps (monotone); how much depends on the wearable
    # features' gain, which this small test model barely has (the quality bench's model moves).
    assert steps["model_relative_change"] <= 0 and steps["with_source_data"] > 0
    page = report.html.read_text()
    assert "truth: relative change" in page and "counterfactual truth" in page


def test_the_report_is_logged_to_the_models_run(report, champion):
    client, mv = champion
    logged = [a.path for a in client.list_artifacts(mv.run_id, "reports")]
    assert logged == [f"reports/{REPORT_FILE}"]
    assert report.logged_to_run == mv.run_id


def test_report_renders_in_headless_chromium_with_every_image_loaded(report, tmp_path):
    from playwright.sync_api import sync_playwright

    exe = shutil.which("chromium")
    if exe is None:  # make test installs it first; a bare pytest run installs it here, never skips
        subprocess.run(["bash", "scripts/ensure_chromium.sh"], check=False)
        exe = shutil.which("chromium")
    assert exe, "Debian's chromium is missing and scripts/ensure_chromium.sh could not install it"
    errors: list[str] = []
    requested: list[str] = []
    shot = tmp_path / "report.png"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, args=["--headless", "--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("request", lambda r: requested.append(r.url))
            page.goto(report.html.resolve().as_uri(), wait_until="load")
            images = page.eval_on_selector_all(
                "img", "els => els.map(e => ({alt: e.alt, complete: e.complete, width: e.naturalWidth}))")
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert errors == []
    assert len(images) >= 10, f"expected the report's figures, found {len(images)} images"
    broken = [i["alt"] for i in images if not (i["complete"] and i["width"] > 0)]
    assert broken == []
    assert all(u.startswith(("file://", "data:")) for u in requested), "the report must open offline"
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000


def test_cli_reports_on_a_features_file_with_its_raw_folder(model_store, report_store, tmp_path, monkeypatch):
    from chronorisk.cli import app
    from features.runners import build_features_at

    features = tmp_path / "features.parquet"
    build_features_at(model_store.cohort, INDEX_DATE, features, extract_date=EXTRACT, pepper=PEPPER.encode(),
                      progress=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", report_store)
    monkeypatch.setenv("CHRONORISK_ID_PEPPER", PEPPER)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["report", "--product", "diabetes", "--portfolio", str(features), "--data",
                                      str(model_store.cohort), "--out", str(out), "--no-log-to-mlflow"])
    assert result.exit_code == 0, result.output
    assert "what-if bmi_minus_2" in result.output
    assert len(pd.read_parquet(out / SHAP_FILE)) == len(pd.read_parquet(features))
    assert (out / REPORT_FILE).stat().st_size > 100_000


def test_cli_refuses_without_a_portfolio(tmp_path):
    from chronorisk.cli import app

    result = CliRunner().invoke(app, ["report", "--product", "diabetes", "--out", str(tmp_path)])
    assert result.exit_code != 0
    assert "--data DIR or --portfolio FILE" in result.output

