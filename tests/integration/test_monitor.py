"""`chronorisk monitor` against the session champion's reference profile, through the real CLI.

A population drawn from the default profile and scored the day after its extract (the reference
is the training rows closest to deployment, `training/run_record.py` reference_profile) passes;
one drawn from `older_less_active.yaml`
(older, less active) is flagged on age, activity and the score, and the command exits non-zero.
The same scored rows read back from the audit log give the same verdict as the batch file.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from audit_test_keys import AUDIT_KEYS
from service_fixtures import PEPPER, REPO, service_env

from chronorisk.settings import Settings
from chronorisk.synthetic.cohort import load_profile, synthesize
from monitoring.drift import MonitorConfig
from monitoring.monitor import run_monitor
from serving.audit import AuditLog, AuditRecord

INDEX_DATE = "2025-01-01"  # the day after the extract: scored as the model is served, against its latest rows
MEMBERS = 2_000


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "chronorisk.cli", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def monitor_env(model_store, tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("monitor")
    return service_env(model_store.tracking_uri, f"sqlite:///{root / 'audit.db'}", root / "keys.json")


def _scored_batch(env: dict[str, str], root: Path, profile: str, seed: int) -> Path:
    cohort = root / "cohort"
    synthesize(members=MEMBERS, seed=seed, out_dir=cohort, profile=load_profile(REPO / profile), workers=2)
    out = root / "scored.parquet"
    done = _cli(env, "score", "--product", "diabetes", "--data", str(cohort), "--index-date", INDEX_DATE,
                "--out", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    return out


@pytest.fixture(scope="module")
def undrifted(monitor_env, tmp_path_factory) -> Path:
    return _scored_batch(monitor_env, tmp_path_factory.mktemp("undrifted"), "experiments/profiles/default.yaml", 21)


@pytest.fixture(scope="module")
def drifted(monitor_env, tmp_path_factory) -> Path:
    return _scored_batch(monitor_env, tmp_path_factory.mktemp("drifted"),
                         "experiments/profiles/older_less_active.yaml", 22)


def _monitor(env: dict[str, str], batch: Path, out: Path) -> tuple[int, dict]:
    done = _cli(env, "monitor", "--product", "diabetes", "--batch", str(batch), "--html", str(out / "report.html"),
                "--json", str(out / "summary.json"))
    assert done.returncode in (0, 1, 2), done.stdout + done.stderr
    return done.returncode, json.loads((out / "summary.json").read_text())


def test_a_batch_from_the_reference_population_passes(monitor_env, undrifted, tmp_path):
    code, summary = _monitor(monitor_env, undrifted, tmp_path)
    worst = max(summary["items"], key=lambda i: i["psi"])
    assert code == 0, f"undrifted batch flagged: {worst['name']} PSI {worst['psi']:.3f}"
    assert summary["level"] == "ok" and summary["flagged_watch"] == []
    assert summary["rows"] >= 500


def test_an_older_less_active_batch_is_flagged_on_the_right_features_and_exits_non_zero(monitor_env, drifted,
                                                                                        tmp_path):
    code, summary = _monitor(monitor_env, drifted, tmp_path)
    psi = {i["name"]: i["psi"] for i in summary["items"]}
    assert code == 2 and summary["level"] == "act"
    assert "age_years" in summary["flagged_act"]  # older
    assert {"q_active_30min", "score", "risk_class_mix"} <= set(summary["flagged_watch"])  # less active, riskier
    # what the profile did not shift stays quiet
    for unchanged in ("sex_male", "q_smoker"):
        assert psi[unchanged] < 0.05, (unchanged, psi[unchanged])
    page = (tmp_path / "report.html").read_text()
    assert page.startswith("<!doctype html>") and "age_years" in page
    assert "http://" not in page and "https://" not in page and "<script" not in page  # self-contained


def test_the_audit_log_and_the_batch_file_give_the_same_verdict(model_store, drifted, tmp_path):
    """The monitor's other source: the same scored rows, stored as the service stores them (decision 14)."""
    frame = pd.read_parquet(drifted)
    frame = frame[frame["eligible"]].reset_index(drop=True)
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    settings = Settings(mlflow_tracking_uri=model_store.tracking_uri, audit_url=url, id_pepper=PEPPER)
    from_batch = run_monitor(settings, "diabetes", MonitorConfig(), batch=drifted)
    feature_names = [d.name for d in from_batch.items if d.kind == "feature"]
    with AuditLog(url, AUDIT_KEYS) as log:
        for i, row in frame.iterrows():
            log.append(AuditRecord(
                request_id=f"r{i}", time=f"2026-01-02T00:00:{i % 60:02d}Z", endpoint="/score", status_code=200,
                caller_key_id="k", product="diabetes", model_name="diabetes-risk", model_version=model_store.version,
                input_sha256=None, member_ref=None,
                features={f: (None if pd.isna(row[f]) else float(row[f])) for f in feature_names},
                score=float(row["probability"]), risk_class=str(row["risk_class"]), decision="accept", reasons=[],
                error=None))
        log.append(AuditRecord(request_id="refused", time="2026-01-02T00:01:00Z", endpoint="/score",
                               status_code=422, caller_key_id="k", product="diabetes", model_name=None,
                               model_version=None, input_sha256=None, member_ref=None, features=None, score=None,
                               risk_class=None, decision=None, reasons=None, error={"status": 422}))
    from_audit = run_monitor(settings, "diabetes", MonitorConfig(), since=None, progress=False)
    assert from_audit.rows == from_batch.rows == len(frame)
    assert {d.name: round(d.psi, 10) for d in from_audit.items} == {d.name: round(d.psi, 10) for d in from_batch.items}
    assert any("refused_or_failed 1" in n for n in from_audit.notes)
