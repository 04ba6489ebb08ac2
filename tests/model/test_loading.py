"""Loading a model never unpickles anything and never trusts a file it has not hash-checked."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap

import pytest

from chronorisk.model.bundle import MODEL_FILE, REFERENCE_FILE, ModelLoadError, load_bundle, sha256_file, write_bundle
from chronorisk.model.calibration import PlattCalibrator
from chronorisk.model.product import load_product
from chronorisk.model.profile import build_reference
from chronorisk.model.registry import CHALLENGER, fetch, resolve
from training.train import train_product

PEPPER = b"model-test-pepper"


@pytest.fixture
def bundle(tmp_path):
    """A small real bundle: a 3-feature booster on random data, with its hashes."""
    import lightgbm as lgb
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 3))
    y = (x[:, 0] + rng.normal(size=500) > 0).astype(int)
    booster = lgb.train({"objective": "binary", "verbosity": -1, "num_leaves": 4}, lgb.Dataset(x, y), 10)
    cal = PlattCalibrator().fit(booster.predict(x, raw_score=True), y)
    folder = tmp_path / "bundle"
    booster_named = lgb.Booster(model_str=booster.model_to_string())
    reference = build_reference({f"Column_{i}": x[:, i] for i in range(3)}, cal.predict_proba(
        booster.predict(x, raw_score=True))[:, 1], ["low"] * 500, ["low"], "random rows")
    hashes = write_bundle(folder, booster_named, cal, booster_named.feature_name(), [0, 0, 0], load_product("diabetes"),
                          reference)
    return folder, hashes


def test_a_good_bundle_loads(bundle):
    folder, hashes = bundle
    assert load_bundle(folder, hashes).features == ["Column_0", "Column_1", "Column_2"]


def test_a_bundle_trained_with_other_feature_definitions_refuses_to_load(bundle):
    """A rollback must never score an old model with new features silently (registry version 1 here)."""
    import json

    folder, hashes = bundle
    listing = json.loads((folder / "features.json").read_text())
    listing["feature_definitions_version"] = 1
    (folder / "features.json").write_text(json.dumps(listing))
    registered = {**hashes, "features.json": sha256_file(folder / "features.json")}  # as if registered so
    with pytest.raises(ModelLoadError, match="trained with feature definitions version 1, but this code computes"):
        load_bundle(folder, registered)


def test_an_edited_reference_profile_is_refused(bundle):
    """The monitor judges drift against this file, so a doctored reference must not load either."""
    folder, hashes = bundle
    text = (folder / REFERENCE_FILE).read_text()
    (folder / REFERENCE_FILE).write_text(text.replace('"rows": 500', '"rows": 501', 1))
    with pytest.raises(ModelLoadError, match=r"reference_profile.json has SHA-256 .* changed after registration"):
        load_bundle(folder, hashes)


def test_a_one_digit_edit_of_a_threshold_is_refused(bundle):
    folder, hashes = bundle
    text = (folder / MODEL_FILE).read_text()
    i = text.index("threshold=") + len("threshold=")
    digit = text[i] if text[i].isdigit() else text[i + 1]
    (folder / MODEL_FILE).write_text(text.replace("threshold=" + text[i:i + 8], "threshold=" + text[i:i + 8].replace(
        digit, str((int(digit) + 1) % 10), 1), 1))
    with pytest.raises(ModelLoadError, match=r"model.txt has SHA-256 .* the file was changed after registration"):
        load_bundle(folder, hashes)


def test_a_truncated_model_with_a_matching_hash_fails_in_the_child_not_here(bundle):
    """The registered hash can only protect what was registered: a model corrupt from the start
    must still not crash this process."""
    folder, hashes = bundle
    text = (folder / MODEL_FILE).read_text()
    (folder / MODEL_FILE).write_text(text[: len(text) // 3])
    hashes = {**hashes, MODEL_FILE: sha256_file(folder / MODEL_FILE)}
    with pytest.raises(ModelLoadError, match="could not parse the model"):
        load_bundle(folder, hashes)


def test_a_missing_file_and_a_pickle_beside_the_model_are_refused(bundle):
    folder, hashes = bundle
    (folder / "extra.pkl").write_bytes(b"\x80\x04K\x01.")
    with pytest.raises(ModelLoadError, match="pickle files"):
        load_bundle(folder, hashes)
    (folder / "extra.pkl").unlink()
    (folder / "calibration.json").unlink()
    with pytest.raises(ModelLoadError, match=r"calibration\.json is missing"):
        load_bundle(folder, hashes)


def test_a_bundle_without_registered_hashes_is_refused(bundle):
    folder, hashes = bundle
    with pytest.raises(ModelLoadError, match="no registered SHA-256"):
        load_bundle(folder, {k: v for k, v in hashes.items() if k != MODEL_FILE})


def test_fetching_and_scoring_a_registered_version_unpickles_nothing(diabetes_snapshot, mlflow_store, tmp_path):
    """An audit hook sees every pickle.find_class; the child process fetches and scores under it."""
    client, root = mlflow_store
    train_product(load_product("diabetes"), diabetes_snapshot, artifact_root=root, pepper=PEPPER, seed=7)
    version = resolve(client, "diabetes", CHALLENGER)
    tracking_uri = client._tracking_client.tracking_uri
    code = textwrap.dedent(f"""
        import sys
        events = []
        sys.addaudithook(lambda event, args: events.append(event) if event == "pickle.find_class" else None)
        import numpy as np
        from chronorisk.model.registry import connect, fetch, resolve
        client = connect({tracking_uri!r})
        model = fetch(client, resolve(client, "diabetes", {str(version.version)!r}))
        x = np.zeros((3, len(model.features)))
        raw = model.scorer.predict(x, raw_score=True)
        model.scorer.predict(x, pred_contrib=True)
        p = model.calibration.probability(raw)
        assert p.shape == (3,)
        print("PICKLE_EVENTS", len(events))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "PICKLE_EVENTS 0" in done.stdout


def test_a_fetched_version_that_was_tampered_with_in_the_store_is_refused(diabetes_snapshot, mlflow_store):
    client, root = mlflow_store
    train_product(load_product("diabetes"), diabetes_snapshot, artifact_root=root, pepper=PEPPER, seed=7)
    stored = next(p for p in root.rglob(MODEL_FILE) if "artifacts" in p.parts)
    stored.write_text(stored.read_text().replace("shrinkage=", "shrinkage=1", 1))
    with pytest.raises(ModelLoadError, match="changed after registration"):
        fetch(client, resolve(client, "diabetes", CHALLENGER))
    assert shutil.which(sys.executable)


@pytest.fixture
def linear_bundles(tmp_path):
    """A GLM bundle and a blend bundle (GLM + LightGBM) on the same random rows, with their hashes."""
    import lightgbm as lgb
    import numpy as np

    from chronorisk.model.blend import Blend
    from training.glm import fit_linear

    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 3))
    x[rng.random(400) < 0.2, 2] = np.nan
    y = (x[:, 0] + rng.normal(size=400) > 0).astype(int)
    names = ["Column_0", "Column_1", "Column_2"]
    glm = fit_linear(x, y, names)
    trees = lgb.train({"objective": "binary", "verbosity": -1, "num_leaves": 4}, lgb.Dataset(x, y, feature_name=names),
                      10)
    out = {}
    for kind, model in (("glm", glm), ("blend", Blend(glm, lgb.Booster(model_str=trees.model_to_string())))):
        raw = np.asarray(model.predict(x, raw_score=True))
        cal = PlattCalibrator().fit(raw, y)
        reference = build_reference({n: x[:, i] for i, n in enumerate(names)}, cal.predict_proba(raw)[:, 1],
                                    ["low"] * 400, ["low"], "random rows")
        folder = tmp_path / kind
        hashes = write_bundle(folder, model, cal, names, [0, 0, 0], load_product("byod_diabetes"), reference)
        out[kind] = (folder, hashes, x, raw)
    return out


@pytest.mark.parametrize("kind", ["glm", "blend"])
def test_a_glm_or_blend_bundle_loads_pickle_free_and_scores_and_explains_as_it_was_saved(linear_bundles, kind):
    import numpy as np

    folder, hashes, x, raw = linear_bundles[kind]
    assert "glm.json" in hashes and (("model.txt" in hashes) == (kind == "blend"))
    model = load_bundle(folder, hashes)
    assert (np.asarray(model.scorer.predict(x, raw_score=True)) == raw).all()
    contrib = np.asarray(model.scorer.predict(x, pred_contrib=True))
    np.testing.assert_allclose(contrib.sum(axis=1), raw, atol=1e-9)  # base value + contributions = raw


@pytest.mark.parametrize("kind", ["glm", "blend"])
def test_an_edited_glm_file_is_refused(linear_bundles, kind):
    folder, hashes, _, _ = linear_bundles[kind]
    text = (folder / "glm.json").read_text()
    (folder / "glm.json").write_text(text.replace('"intercept": ', '"intercept": 1', 1))
    with pytest.raises(ModelLoadError, match=r"glm\.json has SHA-256"):
        load_bundle(folder, hashes)


def test_a_blend_without_its_registered_trees_is_no_model_kind(linear_bundles):
    folder, hashes, _, _ = linear_bundles["blend"]
    with pytest.raises(ModelLoadError, match="which is no model kind"):
        load_bundle(folder, {k: v for k, v in hashes.items() if k != MODEL_FILE})
