"""BentoML's usage statistics stay off unless the setting turns them on (issue 18)."""

from __future__ import annotations

import pytest

from chronorisk.settings import load_settings
from serving.process import TELEMETRY_SETTING, launch_env


def test_a_server_is_started_with_bentomls_usage_statistics_off_by_default():
    assert launch_env({"PATH": "/usr/bin"})["BENTOML_DO_NOT_TRACK"] == "True"


def test_the_setting_turns_them_on_and_is_the_one_settings_reads(monkeypatch):
    assert "BENTOML_DO_NOT_TRACK" not in launch_env({TELEMETRY_SETTING: "true"})
    monkeypatch.setenv("CHRONORISK_ENVIRONMENT", "development")
    monkeypatch.setenv(TELEMETRY_SETTING, "true")
    assert load_settings().bentoml_telemetry is True


def test_an_unreadable_setting_is_refused_without_echoing_it():
    with pytest.raises(ValueError, match=rf"^{TELEMETRY_SETTING}: not true or false$"):
        launch_env({TELEMETRY_SETTING: "perhaps-7f3a"})
