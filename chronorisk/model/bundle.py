"""The model bundle: the pickle-free files a registered model version consists of.

`model.txt` (LightGBM text), `glm.json` (chronorisk/model/linear.py) or both with `blend.json`
(chronorisk/model/blend.py), `calibration.json`, `features.json`, `product.yaml` and
`reference_profile.json` (what the monitor compares today's population with), with the SHA-256
of each recorded at registration. Loading checks every hash before parsing anything,
and parses the LightGBM file first in a child process: a truncated or corrupted model makes
LightGBM crash the process (reliability.md), and a crash there must not take the service down.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import yaml

from chronorisk.data.declaration import FeatureSpec
from chronorisk.model.blend import Blend
from chronorisk.model.calibration import Calibration, HazardCalibrator, PlattCalibrator
from chronorisk.model.linear import LinearModel
from chronorisk.model.product import ProductSpec
from chronorisk.model.profile import ReferenceProfile
from features.registry import FEATURE_DEFINITIONS_VERSION

MODEL_FILE = "model.txt"
GLM_FILE = "glm.json"
BLEND_FILE = "blend.json"
# model kind -> the files that hold it; the set of model files a version registered names its kind
MODEL_FILES: dict[str, tuple[str, ...]] = {"lightgbm": (MODEL_FILE,), "glm": (GLM_FILE,),
                                           "blend": (MODEL_FILE, GLM_FILE, BLEND_FILE)}
CALIBRATION_FILE = "calibration.json"
FEATURES_FILE = "features.json"
PRODUCT_FILE = "product.yaml"
REFERENCE_FILE = "reference_profile.json"
COMMON_FILES = (CALIBRATION_FILE, FEATURES_FILE, PRODUCT_FILE, REFERENCE_FILE)
BUNDLE_FILES = (MODEL_FILE, *COMMON_FILES)  # a LightGBM bundle
Scorer = lgb.Booster | LinearModel | Blend  # each answers predict(raw_score=True) and predict(pred_contrib=True)


def bundle_files(kind: str) -> tuple[str, ...]:
    return (*MODEL_FILES[kind], *COMMON_FILES)


def model_kind(model: Scorer) -> str:
    return "glm" if isinstance(model, LinearModel) else "blend" if isinstance(model, Blend) else "lightgbm"
HASH_TAG_PREFIX = "sha256."
CHILD_PARSE_TIMEOUT_S = 60


class ModelLoadError(RuntimeError):
    """A model bundle that must not be used: missing, tampered, corrupt or not what was registered."""


@dataclass(frozen=True)
class LoadedModel:
    scorer: Scorer
    calibration: Calibration
    features: list[str]
    monotone: list[int]
    spec: ProductSpec
    hashes: dict[str, str]
    reference: ReferenceProfile
    custom_features: list[FeatureSpec] = field(default_factory=list)  # a data set's own features, if any


def probabilities(model: LoadedModel, frame: pd.DataFrame) -> np.ndarray:
    """Calibrated probabilities of a frame's rows, the model's features taken by name (the gate, the
    report, its what-ifs and batch scoring all score this way)."""
    missing = [f for f in model.features if f not in frame.columns]
    if missing:
        raise KeyError(f"the frame lacks features the model needs: {missing[:5]}")
    raw = model.scorer.predict(frame[model.features].to_numpy(dtype=float), raw_score=True)
    return np.asarray(model.calibration.probability(np.asarray(raw)), dtype=float)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_bundle(folder: Path, model: Scorer, calibrator: PlattCalibrator | HazardCalibrator,
                 features: list[str],
                 monotone: list[int], spec: ProductSpec, reference: ReferenceProfile,
                 custom: list[FeatureSpec] | None = None) -> dict[str, str]:
    """Write the bundle's files; return their SHA-256 by file name. `custom` are the registry entries
    of a data set's own features (features/custom.py): the service needs their reason texts."""
    folder.mkdir(parents=True, exist_ok=True)
    kind = model_kind(model)
    if isinstance(model, Blend):
        model.trees.save_model(str(folder / MODEL_FILE))
        model.glm.save_model(folder / GLM_FILE)
        (folder / BLEND_FILE).write_text(model.weights_json() + "\n")
    else:
        model.save_model(str(folder / MODEL_FILES[kind][0]))
    (folder / CALIBRATION_FILE).write_text(calibrator.to_json() + "\n")
    listing: dict[str, object] = {"features": features, "monotone": monotone, "model_kind": kind,
                                  "feature_definitions_version": FEATURE_DEFINITIONS_VERSION}
    if custom:
        listing["custom_features"] = [asdict(s) for s in custom]
    (folder / FEATURES_FILE).write_text(json.dumps(listing, indent=2) + "\n")
    (folder / PRODUCT_FILE).write_text(yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False))
    (folder / REFERENCE_FILE).write_text(reference.to_json())
    return {name: sha256_file(folder / name) for name in bundle_files(kind)}


def kind_of(expected: dict[str, str]) -> str:
    """The model kind the registered hashes name: exactly one model file must have one."""
    named = {name for files in MODEL_FILES.values() for name in files if name in expected}
    kinds = [kind for kind, files in MODEL_FILES.items() if set(files) == named]
    if not kinds:
        every = sorted({n for files in MODEL_FILES.values() for n in files})
        raise ModelLoadError(f"no registered SHA-256 for a complete model: model files {sorted(named)} of {every} "
                             f"have one, which is no model kind ({sorted(MODEL_FILES)}); refusing an unverifiable "
                             "model")
    return kinds[0]


def verify_hashes(folder: Path, expected: dict[str, str]) -> str:
    """Every bundle file present, nothing pickled beside them, each hash as registered; the kind."""
    kind = kind_of(expected)
    files = bundle_files(kind)
    missing_hash = [n for n in files if n not in expected]
    if missing_hash:
        raise ModelLoadError(f"{folder}: no registered SHA-256 for {missing_hash}; refusing an unverifiable model")
    pickles = sorted(p.name for p in folder.rglob("*") if p.suffix in (".pkl", ".pickle", ".joblib"))
    if pickles:
        raise ModelLoadError(f"{folder}: pickle files {pickles} beside the model; refusing to load")
    for name in files:
        path = folder / name
        if not path.is_file():
            raise ModelLoadError(f"{folder}: {name} is missing")
        actual = sha256_file(path)
        if actual != expected[name]:
            raise ModelLoadError(f"{folder}: {name} has SHA-256 {actual[:12]}..., registered {expected[name][:12]}...;"
                                 " the file was changed after registration")
    return kind


# The child only parses: LightGBM's optional integrations (scikit-learn, pandas, Dask, ...) are kept
# out of it, which cuts its start from ~2.7 s to ~0.6 s here; parsing never touches them.
_CHILD_PARSE = ("import sys\n"
                "for name in ('sklearn', 'pandas', 'dask', 'pyarrow', 'matplotlib', 'graphviz', 'cffi', 'polars'):\n"
                "    sys.modules[name] = None\n"
                "import lightgbm\n"
                "lightgbm.Booster(model_file=sys.argv[1])\n")


def _parse_in_child(model_path: Path) -> None:
    """Parse the model in a throwaway process first: a file LightGBM's parser crashes on (a segfault, not
    an exception) takes down the child, not the service."""
    try:
        done = subprocess.run([sys.executable, "-c", _CHILD_PARSE, str(model_path)], capture_output=True,
                              timeout=CHILD_PARSE_TIMEOUT_S)
    except subprocess.TimeoutExpired as err:
        raise ModelLoadError(f"{model_path}: parsing took over {CHILD_PARSE_TIMEOUT_S} s in a child process") from err
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["(no message)"]
        raise ModelLoadError(f"{model_path}: LightGBM could not parse the model (exit {done.returncode}): {tail[0]}")


def load_bundle(folder: Path, expected: dict[str, str]) -> LoadedModel:
    """Hash-check, then parse: the only way any part of chronorisk loads a model."""
    kind = verify_hashes(folder, expected)
    scorer: Scorer
    glm = trees = None
    if GLM_FILE in MODEL_FILES[kind]:
        try:
            glm = LinearModel.from_json((folder / GLM_FILE).read_text())
        except (ValueError, TypeError, KeyError) as err:
            raise ModelLoadError(f"{folder}: {GLM_FILE} is not a valid GLM: {type(err).__name__}") from err
    if MODEL_FILE in MODEL_FILES[kind]:
        _parse_in_child(folder / MODEL_FILE)
        trees = lgb.Booster(model_file=str(folder / MODEL_FILE))
    if kind == "blend":
        assert glm is not None and trees is not None
        try:
            scorer = Blend(glm, trees, Blend.weight_from_json(folder / BLEND_FILE))
        except ValueError as err:
            raise ModelLoadError(f"{folder}: {err}") from err
        if trees.feature_name() != glm.feature_name():
            raise ModelLoadError(f"{folder}: the blend's two models do not take the same features")
    else:
        scorer = glm if glm is not None else trees  # type: ignore[assignment]
    calibration = Calibration.from_json((folder / CALIBRATION_FILE).read_text())
    feats = json.loads((folder / FEATURES_FILE).read_text())
    spec = ProductSpec.model_validate(yaml.safe_load((folder / PRODUCT_FILE).read_text()))
    if scorer.feature_name() != feats["features"]:
        raise ModelLoadError(f"{folder}: the model's features differ from features.json")
    trained_with = feats.get("feature_definitions_version", 1)  # bundles before the field: version 1
    if trained_with != FEATURE_DEFINITIONS_VERSION:
        raise ModelLoadError(f"{folder}: trained with feature definitions version {trained_with}, but this code "
                             f"computes version {FEATURE_DEFINITIONS_VERSION} (features/registry.py); scoring it "
                             "would feed the model features it never saw. Retrain, or run the code it was trained "
                             "with")
    custom = [FeatureSpec(**entry) for entry in feats.get("custom_features", [])]
    return LoadedModel(scorer=scorer, calibration=calibration, features=list(feats["features"]),
                       monotone=list(feats["monotone"]), spec=spec, hashes=dict(expected),
                       reference=ReferenceProfile.from_json((folder / REFERENCE_FILE).read_text()),
                       custom_features=custom)


def hash_tags(hashes: dict[str, str]) -> dict[str, str]:
    return {f"{HASH_TAG_PREFIX}{name}": value for name, value in hashes.items()}


def hashes_from_tags(tags: dict[str, str]) -> dict[str, str]:
    return {k[len(HASH_TAG_PREFIX):]: v for k, v in tags.items() if k.startswith(HASH_TAG_PREFIX)}
