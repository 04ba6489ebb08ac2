"""The servable GLM (chronorisk/model/linear.py): the same fit as scikit-learn's textbook pipeline, exact
explanations, a JSON round trip that scores bit for bit alike, and spline terms that stay flat
beyond their outer knots."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from chronorisk.model.linear import LinearModel
from training.glm import fit_linear

FEATURES = ["a", "b", "c", "d"]


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(1500, 4))
    x[rng.random(1500) < 0.25, 1] = np.nan  # a feature missing for a quarter of the rows
    eta = -0.5 + x[:, 0] + np.where(np.isnan(x[:, 1]), 0.7, 0.5 * np.nan_to_num(x[:, 1])) + 1.5 * (x[:, 2] > 1)
    y = (rng.random(1500) < 1 / (1 + np.exp(-eta))).astype(int)
    return x, y


def test_the_linear_fit_is_scikit_learns_imputed_standardised_l2_logistic_regression(data):
    x, y = data
    model = fit_linear(x, y, FEATURES, c=0.5)
    reference = make_pipeline(SimpleImputer(strategy="median", add_indicator=True), StandardScaler(),
                              LogisticRegression(C=0.5, max_iter=5000, tol=1e-8)).fit(x, y)
    np.testing.assert_allclose(model.predict(x, raw_score=True), reference.decision_function(x), atol=1e-5)


def test_base_value_plus_contributions_is_the_raw_score_and_the_missing_value_has_its_own_term(data):
    x, y = data
    model = fit_linear(x, y, FEATURES, spline_knots=5)
    contrib = model.predict(x, pred_contrib=True)
    assert contrib.shape == (len(x), len(FEATURES) + 1)
    np.testing.assert_allclose(contrib.sum(axis=1), model.predict(x, raw_score=True), atol=1e-12)
    np.testing.assert_allclose(contrib[:, :-1].mean(axis=0), 0.0, atol=1e-12)  # centred on the training rows
    missing = np.isnan(x[:, 1])
    assert model.terms[1].missing_coef != 0.0
    # every missing row gets the same contribution from b, and it is not the median's contribution
    assert np.ptp(contrib[missing, 1]) == 0.0


def test_the_json_round_trip_scores_bit_for_bit_alike(data, tmp_path):
    x, y = data
    model = fit_linear(x, y, FEATURES, spline_knots=5)
    model.save_model(tmp_path / "glm.json")
    loaded = LinearModel.from_json((tmp_path / "glm.json").read_text())
    assert (loaded.predict(x, raw_score=True) == model.predict(x, raw_score=True)).all()
    assert (loaded.predict(x, pred_contrib=True) == model.predict(x, pred_contrib=True)).all()


def test_a_spline_term_is_flat_beyond_its_outer_knots_and_picks_up_a_threshold(data):
    x, y = data
    model = fit_linear(x, y, FEATURES, spline_knots=5)
    term = model.terms[2]
    assert term.knots  # c has many distinct values: a spline term
    far = term.value(np.array([-50.0, -10.0, 10.0, 50.0]))
    assert far[0] == far[1] and far[2] == far[3]
    # the generating step of +1.5 at c = 1: the term rises by most of it between c = 0 and c = 2
    step = float(term.value(np.array([2.0]))[0] - term.value(np.array([0.0]))[0])
    assert 0.8 < step < 2.2


@pytest.mark.parametrize("text", ['{"kind": "lightgbm"}', '{"kind": "glm", "features": ["a"], "intercept": 0.0, '
                                  '"terms": [{"feature": "b", "impute": 0.0}]}'])
def test_a_malformed_glm_file_is_refused(text):
    with pytest.raises(ValueError, match=r"glm\.json"):
        LinearModel.from_json(text)


def test_a_monotone_direction_binds_the_coefficient_and_leaves_the_others_as_fitted(data):
    x, y = data
    free = fit_linear(x, y, FEATURES)
    assert free.terms[0].coef > 0.5  # a raises risk in the generating model
    # told that a may only lower risk, its best coefficient is the bound: exactly zero
    bound = fit_linear(x, y, FEATURES, monotone=[-1, 0, 0, 0])
    assert bound.terms[0].coef == 0.0
    # a direction the data agree with changes nothing
    agreeing = fit_linear(x, y, FEATURES, monotone=[1, 0, 0, 0])
    np.testing.assert_allclose(agreeing.predict(x, raw_score=True), free.predict(x, raw_score=True), atol=1e-6)
