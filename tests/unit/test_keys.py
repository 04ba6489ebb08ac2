"""API keys: shown once, stored as hashes, checked per product, revocable while the service runs."""

from __future__ import annotations

import json
import stat

import pytest
from typer.testing import CliRunner

from chronorisk.cli import app
from serving.keys import KeyStore


@pytest.fixture
def store(tmp_path):
    return KeyStore(tmp_path / "keys.json")


@pytest.fixture
def diabetes_key(store):
    plaintext, key = store.create("insurer-a underwriting", ["diabetes"])
    return plaintext, key


def test_a_new_key_reads_crk_id_secret(diabetes_key):
    plaintext, key = diabetes_key
    prefix, key_id, secret = plaintext.split("_", 2)
    assert (prefix, key_id, len(key_id), len(secret) >= 43) == ("crk", key.key_id, 8, True)


def test_a_key_is_accepted_for_its_product(store, diabetes_key):
    plaintext, key = diabetes_key
    result = store.authenticate(plaintext, "diabetes")
    assert (result.ok, result.status, result.key_id) == (True, 200, key.key_id)


def test_a_key_is_refused_with_403_naming_another_product(store, diabetes_key):
    result = store.authenticate(diabetes_key[0], "hypertension")
    assert (result.ok, result.status, "hypertension" in result.reason) == (False, 403, True)


def test_no_key_is_401_missing(store, diabetes_key):
    result = store.authenticate(None, "diabetes")
    assert (result.status, result.reason, result.key_id) == (401, "missing API key", None)


def test_an_empty_key_is_401_missing(store, diabetes_key):
    assert store.authenticate("", "diabetes").reason == "missing API key"


def test_a_wrong_secret_is_401_invalid_yet_names_the_real_id_for_the_audit(store, diabetes_key):
    plaintext, key = diabetes_key
    result = store.authenticate(plaintext[:-4] + "AAAA", "diabetes")
    assert (result.status, result.reason, result.key_id) == (401, "invalid API key", key.key_id)


def test_an_unknown_id_is_401_invalid_without_an_id(store, diabetes_key):
    forged = "crk_00000000_" + diabetes_key[0].split("_", 2)[2]
    result = store.authenticate(forged, "diabetes")
    assert (result.status, result.reason, result.key_id) == (401, "invalid API key", None)


@pytest.mark.parametrize("presented", ["hello", "crk_", "crk_ZZZZZZZZ_secret", "crk_0a1b2c3d_", "x" * 10_000])
def test_a_malformed_key_is_401_with_the_same_message(store, diabetes_key, presented):
    result = store.authenticate(presented, "diabetes")
    assert (result.status, result.reason) == (401, "invalid API key")


def test_a_revoked_key_is_401_with_the_same_message(store, diabetes_key):
    plaintext, key = diabetes_key
    store.revoke(key.key_id)
    result = store.authenticate(plaintext, "diabetes")
    assert (result.status, result.reason, result.key_id) == (401, "invalid API key", key.key_id)


def test_a_revocation_by_another_process_reaches_a_running_store(tmp_path, diabetes_key):
    plaintext, key = diabetes_key
    running = KeyStore(tmp_path / "keys.json")
    assert running.authenticate(plaintext, "diabetes").ok
    KeyStore(tmp_path / "keys.json").revoke(key.key_id)  # as `chronorisk keys revoke` would
    assert running.authenticate(plaintext, "diabetes").status == 401


def test_revoking_an_unknown_id_raises_naming_it(store):
    with pytest.raises(KeyError, match="deadbeef"):
        store.revoke("deadbeef")


def test_the_key_file_holds_no_plaintext_key_or_secret(tmp_path, diabetes_key):
    plaintext = diabetes_key[0]
    raw = (tmp_path / "keys.json").read_bytes()
    assert plaintext.split("_", 2)[2].encode() not in raw


def test_the_key_file_is_readable_by_its_owner_only(tmp_path, diabetes_key):
    assert stat.S_IMODE((tmp_path / "keys.json").stat().st_mode) == 0o600


def test_listing_shows_no_secret_and_no_hash(store, diabetes_key):
    plaintext, _ = diabetes_key
    stored_hash = json.loads(store.path.read_text())["keys"][0]["sha256"]
    listed = repr(store.list())
    assert (plaintext in listed, stored_hash in listed) == (False, False)


def test_a_key_without_products_is_refused(store):
    with pytest.raises(ValueError, match="product"):
        store.create("nobody", [" ", ""])


# The CLI, as an operator runs it ------------------------------------------------------------------


@pytest.fixture
def runner(monkeypatch, tmp_path):
    monkeypatch.setenv("CHRONORISK_ENVIRONMENT", "test")
    monkeypatch.setenv("CHRONORISK_KEYS_FILE", str(tmp_path / "cli-keys.json"))
    return CliRunner()


def _created_key(output: str) -> str:
    return next(line for line in output.splitlines() if line.startswith("crk_"))


def test_cli_create_prints_a_working_key_exactly_once(runner, tmp_path):
    result = runner.invoke(app, ["keys", "create", "--name", "insurer-b", "--products", "diabetes,hypertension"])
    assert result.exit_code == 0, result.output
    plaintext = _created_key(result.output)
    assert (result.output.count(plaintext),
            KeyStore(tmp_path / "cli-keys.json").authenticate(plaintext, "hypertension").ok) == (1, True)


def test_cli_list_shows_ids_names_and_products_but_never_the_key(runner):
    created = runner.invoke(app, ["keys", "create", "--name", "insurer-b", "--products", "diabetes"])
    plaintext = _created_key(created.output)
    listed = runner.invoke(app, ["keys", "list"])
    key_id = plaintext.split("_")[1]
    assert (listed.exit_code, key_id in listed.output, "insurer-b" in listed.output, plaintext in listed.output) \
        == (0, True, True, False)


def test_cli_revoke_makes_the_key_invalid(runner, tmp_path):
    plaintext = _created_key(runner.invoke(app, ["keys", "create", "--name", "n", "--products", "diabetes"]).output)
    result = runner.invoke(app, ["keys", "revoke", plaintext.split("_")[1]])
    assert (result.exit_code, KeyStore(tmp_path / "cli-keys.json").authenticate(plaintext, "diabetes").status) \
        == (0, 401)


def test_cli_revoke_of_an_unknown_id_exits_1(runner):
    result = runner.invoke(app, ["keys", "revoke", "deadbeef"])
    assert (result.exit_code, "deadbeef" in result.output) == (1, True)


@pytest.mark.parametrize("presented", ["crk_00000000_" + "A" * 43, "not-a-key", "crk_0a1b2c3d_wrong"])
def test_the_constant_time_comparison_runs_whether_or_not_the_id_exists(store, diabetes_key, monkeypatch,
                                                                         presented):
    import hmac

    calls = []
    real = hmac.compare_digest

    def counting(a, b):
        calls.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr("serving.keys.hmac.compare_digest", counting)
    store.authenticate(presented, "diabetes")
    assert calls == [(64, 64)]
