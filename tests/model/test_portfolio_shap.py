"""TreeSHAP of the portfolio report: chunking changes nothing, and the values add up to the raw score."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chronorisk.insights.portfolio import check_additivity, shap_values


@pytest.fixture(scope="module")
def booster() -> lgb.Booster:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2_000, 6))
    x[rng.random(x.shape) < 0.1] = np.nan  # missing values take their own branch
    y = (x[:, 0] + 0.5 * np.nan_to_num(x[:, 1]) * np.nan_to_num(x[:, 2]) + rng.normal(size=2_000) > 0.5).astype(int)
    return lgb.train({"objective": "binary", "num_leaves": 15, "verbose": -1, "seed": 1}, lgb.Dataset(x, y),
                     num_boost_round=40)


@settings(max_examples=25, deadline=None)
@given(rows=st.integers(1, 300), chunk=st.integers(1, 400), seed=st.integers(0, 10_000))
def test_chunked_shap_equals_one_call_and_adds_up_to_the_raw_score(booster, rows, chunk, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(scale=2.0, size=(rows, 6))
    x[rng.random(x.shape) < 0.2] = np.nan
    contrib = shap_values(booster, x, chunk_rows=chunk, progress=False)
    np.testing.assert_array_equal(contrib, np.asarray(booster.predict(x, pred_contrib=True)))
    raw = np.asarray(booster.predict(x, raw_score=True))
    np.testing.assert_allclose(contrib.sum(axis=1), raw, rtol=0, atol=1e-9)
    assert check_additivity(contrib, raw) <= 1e-9


def test_additivity_check_names_the_rows_that_do_not_add_up(booster):
    x = np.random.default_rng(0).normal(size=(50, 6))
    contrib = shap_values(booster, x, progress=False)
    raw = np.asarray(booster.predict(x, raw_score=True))
    raw[[3, 7]] += 0.01
    with pytest.raises(ValueError, match="broken on 2 of 50 rows"):
        check_additivity(contrib, raw)
