"""A small synthetic cohort and its accepted tables, shared by the feature tests."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from chronorisk.data.contracts import read_folder, validate_tables
from chronorisk.synthetic.cohort import load_profile, synthesize

EXTRACT = date(2024, 12, 31)
PEPPER = b"test-pepper"


@pytest.fixture(scope="session")
def feature_cohort(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("features400")
    synthesize(members=400, seed=5, out_dir=out, profile=load_profile(Path("experiments/profiles/default.yaml")))
    return out


@pytest.fixture(scope="session")
def accepted_tables(feature_cohort):
    frames, _ = read_folder(feature_cohort)
    accepted, _, _ = validate_tables(frames, extract_date=EXTRACT, pepper=PEPPER)
    return accepted
