"""`chronorisk audit verify` and `audit list`, as an auditor runs them against a real SQLite log."""

from __future__ import annotations

import sqlite3

import pytest
from audit_test_keys import AUDIT_KEYS, audit_secrets_dir
from typer.testing import CliRunner

from chronorisk.cli import app
from serving.audit import AuditLog, AuditRecord


def _record(i: int) -> AuditRecord:
    return AuditRecord(
        request_id=f"req-{i:03d}", time=f"2025-03-01T09:00:{i:02d}.000+00:00", endpoint="/score",
        status_code=200 if i % 2 else 422, caller_key_id="0a1b2c3d", product="diabetes", model_name="m",
        model_version="1", input_sha256=None, member_ref=None, features={"steps_mean_90d": 4321.5},
        score=i / 10, risk_class="B", decision="rated" if i % 2 else None, reasons=None, error=None)


@pytest.fixture
def db(tmp_path, monkeypatch):
    path = tmp_path / "audit.db"
    with AuditLog(f"sqlite:///{path}", AUDIT_KEYS) as log:
        for i in range(1, 6):
            log.append(_record(i))
    monkeypatch.setenv("CHRONORISK_ENVIRONMENT", "test")
    monkeypatch.setenv("CHRONORISK_SECRETS_DIR", str(audit_secrets_dir()))
    monkeypatch.setenv("CHRONORISK_AUDIT_URL", f"sqlite:///{path}")
    return path


@pytest.fixture
def runner():
    return CliRunner()


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_verify_exits_0_and_says_ok_on_an_intact_log(runner, db):
    result = runner.invoke(app, ["audit", "verify"])
    assert (result.exit_code, result.output.startswith("ok: 5 records")) == (0, True), result.output


def test_verify_exits_1_naming_the_first_bad_record_of_a_tampered_log(runner, db):
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE audit_records SET decision = 'declined' WHERE seq = 3")
    result = runner.invoke(app, ["audit", "verify"])
    assert (result.exit_code, "first bad record is seq 3" in _flat(result.output)) == (1, True), result.output


def test_verify_of_an_unreachable_log_exits_2_and_never_says_ok(runner, tmp_path):
    result = runner.invoke(app, ["audit", "verify", "--url", f"sqlite:///{tmp_path}/missing/dir/audit.db"])
    assert (result.exit_code, result.output.startswith("unavailable")) == (2, True), result.output


def test_list_with_a_limit_shows_only_the_newest_records(runner, db):
    result = runner.invoke(app, ["audit", "list", "--limit", "2"])
    out = _flat(result.output)
    assert (result.exit_code, "req-005" in out, "req-004" in out, "req-003" in out) == (0, True, True, False), out


def test_list_shows_time_product_status_and_decision_of_each_record(runner, db):
    out = _flat(runner.invoke(app, ["audit", "list", "--limit", "2"]).output)
    assert [part in out for part in ("2025-03-01T09:00:05.000+00:00", "diabetes", "200", "422", "rated")] \
        == [True] * 5, out


def test_list_never_prints_feature_values(runner, db):
    result = runner.invoke(app, ["audit", "list"])
    assert (result.exit_code, "4321.5" in result.output, "steps_mean_90d" in result.output) == (0, False, False)


def test_verify_exits_1_and_says_truncated_when_records_are_cut_off_the_end(runner, db):
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM audit_records WHERE seq > 3")
    result = runner.invoke(app, ["audit", "verify"])
    assert (result.exit_code, "truncated" in _flat(result.output)) == (1, True), result.output


def test_init_keys_writes_owner_only_key_files_and_refuses_to_overwrite_them(runner, tmp_path):
    folder = tmp_path / "secrets"
    first = runner.invoke(app, ["audit", "init-keys", "--folder", str(folder)])
    again = runner.invoke(app, ["audit", "init-keys", "--folder", str(folder)])
    modes = sorted(oct(p.stat().st_mode & 0o777) for p in folder.iterdir())
    assert (first.exit_code, again.exit_code, oct(folder.stat().st_mode & 0o777), modes) == (
        0, 1, "0o700", ["0o600"] * 3), first.output
