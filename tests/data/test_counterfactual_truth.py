"""Counterfactual truth: the generator's true risk of the same members under a what-if scenario."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from chronorisk.synthetic.cohort import load_profile, synthesize
from chronorisk.synthetic.counterfactual import true_risk_under

INDEX = pd.Timestamp("2022-01-01")


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cf-cohort")
    synthesize(members=2_500, seed=3, out_dir=out, profile=load_profile(Path("experiments/profiles/default.yaml")),
               workers=1)
    return out


@pytest.fixture(scope="module")
def yearly(cohort) -> pd.DataFrame:
    frame = pd.read_parquet(cohort / "_truth" / "yearly.parquet")
    return frame[pd.to_datetime(frame["date"]) == INDEX].reset_index(drop=True)


def _risk(cohort: Path, yearly: pd.DataFrame, disease: str, edit: str | None = None, value: float = 0.0):
    return true_risk_under(cohort, yearly["member_id"].to_numpy(), pd.to_datetime(yearly["date"]).to_numpy(),
                           disease, 3, edit, value)


@pytest.mark.parametrize("disease", ["diabetes", "hypertension"])
def test_with_no_edit_it_is_the_truth_the_generator_wrote(cohort, yearly, disease):
    """Drawn again from the manifest alone, the population gives `_truth/yearly` to the last bit."""
    again = _risk(cohort, yearly, disease)
    written = yearly[f"true_risk_{disease}_3y"].to_numpy(dtype=float)
    assert np.array_equal(np.isnan(again), np.isnan(written)) and (~np.isnan(written)).sum() > 1_000
    assert np.nanmax(np.abs(again - written)) < 1e-12


def test_raising_steps_lowers_true_risk_only_below_the_plateau(cohort, yearly):
    base = _risk(cohort, yearly, "diabetes")
    steps = _risk(cohort, yearly, "diabetes", "steps_at_least", 8000)
    free = ~np.isnan(base)
    assert (steps[free] <= base[free] + 1e-15).all()  # more steps never raise the hazard
    assert steps[free].sum() < 0.97 * base[free].sum()  # and they matter: epidemiology.md's steps effect
    high = _risk(cohort, yearly, "diabetes", "steps_at_least", 1.0)  # nobody walks under one step a day
    assert np.nanmax(np.abs(high - base)) < 1e-12


def test_lowering_bmi_lowers_true_risk_of_both_diseases(cohort, yearly):
    """Not for every member: the diabetes hazard's age x BMI interaction turns the BMI effect down
    below age 50, so the claim is about the book and most of its members."""
    for disease in ("diabetes", "hypertension"):
        base = _risk(cohort, yearly, disease)
        lower = _risk(cohort, yearly, disease, "bmi_change", -2.0)
        free = ~np.isnan(base)
        assert lower[free].sum() < 0.97 * base[free].sum(), disease
        assert np.mean(lower[free] < base[free]) > 0.6, disease


def test_a_member_not_in_the_folder_has_no_truth(cohort):
    out = true_risk_under(cohort, np.array(["M99999999", "not-an-id"], dtype=object),
                          np.array([INDEX.to_datetime64()] * 2), "diabetes", 3)
    assert np.isnan(out).all()
