"""`chronorisk data validate` over a real folder, as the data scientist runs it."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from chronorisk.cli import app


@pytest.fixture
def runner(monkeypatch):
    monkeypatch.setenv("CHRONORISK_ENVIRONMENT", "test")
    return CliRunner()


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_validate_reports_counts_and_writes_the_quarantine(runner, cohort, tmp_path, write_folder):
    cohort["wearable_daily"].loc[0, "steps"] = 250_000
    folder = write_folder(cohort, tmp_path / "raw")
    result = runner.invoke(app, ["data", "validate", str(folder), "--json", str(tmp_path / "report.json")])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["tables"]["wearable_daily"]["by_rule"] == {"out_of_range:steps": 1}
    assert (folder / "_rejected" / "wearable_daily.parquet").exists()


def test_validate_strict_exits_1_naming_table_column_rule_and_count(runner, cohort, tmp_path, write_folder):
    cohort["lab_results"].loc[2, "value"] = 48.0
    folder = write_folder(cohort, tmp_path / "raw")
    result = runner.invoke(app, ["data", "validate", "--strict", str(folder)])
    assert (result.exit_code, "lab_results.value: 1 row breaks out_of_range (hba1c 3-20 %)" in _flat(result.output)) \
        == (1, True)
