"""Safe defaults: production unless development is chosen, and no placeholder secret outside it."""

from __future__ import annotations

import pytest

from chronorisk.settings import SettingsError, load_settings
from serving.audit_seal import AuditKeyError, keys_for


@pytest.fixture
def bare_env(monkeypatch):
    for name in ("CHRONORISK_ENVIRONMENT", "CHRONORISK_ID_PEPPER", "CHRONORISK_AUDIT_KEY"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_with_nothing_set_the_environment_is_production_and_the_placeholder_pepper_is_refused(bare_env):
    with pytest.raises(SettingsError, match=r"CHRONORISK_ID_PEPPER is unset or a placeholder.*production"):
        load_settings()


@pytest.mark.parametrize("environment", ["test", "production"])
def test_the_public_placeholder_pepper_is_refused_outside_development(bare_env, environment):
    bare_env.setenv("CHRONORISK_ENVIRONMENT", environment)
    bare_env.setenv("CHRONORISK_ID_PEPPER", "dev-pepper")
    with pytest.raises(SettingsError, match="placeholder"):
        load_settings()


def test_development_chosen_explicitly_accepts_the_placeholder_pepper(bare_env):
    bare_env.setenv("CHRONORISK_ENVIRONMENT", "development")
    assert load_settings().id_pepper.get_secret_value() == "dev-pepper"


def test_a_settings_error_never_prints_the_secrets_it_was_given(bare_env):
    bare_env.setenv("CHRONORISK_ENVIRONMENT", "staging")  # not an environment: refused
    bare_env.setenv("CHRONORISK_ID_PEPPER", "a-real-secret-9f8e7d")
    with pytest.raises(SettingsError) as refused:
        load_settings()
    assert ("environment" in str(refused.value), "a-real-secret-9f8e7d" in str(refused.value)) == (True, False)


def test_outside_development_missing_audit_keys_are_refused_not_generated(bare_env, tmp_path):
    bare_env.setenv("CHRONORISK_ID_PEPPER", "a-real-secret-9f8e7d")
    bare_env.setenv("CHRONORISK_SECRETS_DIR", str(tmp_path / "secrets"))
    with pytest.raises(AuditKeyError, match="audit init-keys"):
        keys_for(load_settings())
    assert not (tmp_path / "secrets").exists()


def test_in_development_audit_keys_are_generated_once_owner_only_and_reused(bare_env, tmp_path):
    bare_env.setenv("CHRONORISK_ENVIRONMENT", "development")
    bare_env.setenv("CHRONORISK_SECRETS_DIR", str(tmp_path / "secrets"))
    first, again = keys_for(load_settings()), keys_for(load_settings())
    modes = sorted(oct(p.stat().st_mode & 0o777) for p in (tmp_path / "secrets").iterdir())
    assert (first.hmac_key == again.hmac_key, oct((tmp_path / "secrets").stat().st_mode & 0o777), modes) == (
        True, "0o700", ["0o600"] * 3)


def test_pinned_serving_versions_read_as_product_version_pairs(bare_env):
    bare_env.setenv("CHRONORISK_ENVIRONMENT", "development")
    bare_env.setenv("CHRONORISK_SERVE_VERSIONS", " diabetes=3, hypertension = none ")
    assert load_settings().serve_versions == {"diabetes": "3", "hypertension": "none"}


@pytest.mark.parametrize("pinned", ["diabetes=3,hypertension", "diabetes=champion", "=3"])
def test_a_malformed_pinned_version_is_refused_by_rule(bare_env, pinned):
    bare_env.setenv("CHRONORISK_ENVIRONMENT", "development")
    bare_env.setenv("CHRONORISK_SERVE_VERSIONS", pinned)
    with pytest.raises(SettingsError, match=r"serve_versions: 1 entries are not product=version"):
        load_settings()
