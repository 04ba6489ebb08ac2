"""What-if scenarios of the portfolio report: edit raw records, rerun the feature function, re-score.

A scenario (named in the product YAML) is an edit of accepted raw tables, never a sum of SHAP
values: the one feature function sees the edited records and the model scores the result, so
interactions and the calibration's curvature are in the answer.
Members whose records the edit does not touch keep their score exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from chronorisk.model.product import ProductSpec, WhatIfScenario

Edit = tuple[dict[str, pd.DataFrame], pd.DataFrame]  # edited tables; (member_id, date) of every edited record


def _edited(frame: pd.DataFrame, mask: np.ndarray, date_col: str = "date") -> pd.DataFrame:
    return pd.DataFrame({"member_id": frame.loc[mask, "member_id"].astype("str").to_numpy(),
                         "date": pd.to_datetime(frame.loc[mask, date_col]).to_numpy()})


def _steps_at_least(tables: Mapping[str, pd.DataFrame], value: float) -> Edit:
    """Every wearable day with fewer than `value` steps gets `value`; days without a count stay so."""
    wear = tables["wearable_daily"]
    steps = wear["steps"].to_numpy(dtype=float, na_value=np.nan)
    low = ~np.isnan(steps) & (steps < value)
    if not low.any():
        return dict(tables), _edited(wear, low)
    edited = wear.copy()
    edited["steps"] = np.where(low, value, steps)
    return {**tables, "wearable_daily": edited}, _edited(wear, low)


def _bmi_change(tables: Mapping[str, pd.DataFrame], value: float) -> Edit:
    """Every recorded weight moves by `value` x height squared, so BMI moves by `value` kg/m2.

    Consultations use the member's median recorded height (the BMI feature's own denominator);
    the application uses its own height. Weights without any height stay as they are: no BMI.
    """
    out = dict(tables)
    touched: list[pd.DataFrame] = []
    cons = tables["consultations"]
    if len(cons):
        ids = cons["member_id"].astype("str")
        height = cons["height_cm"].to_numpy(dtype=float, na_value=np.nan)
        median_h = pd.Series(height).groupby(ids.to_numpy()).transform("median").to_numpy(dtype=float)
        weight = cons["weight_kg"].to_numpy(dtype=float, na_value=np.nan)
        ok = ~np.isnan(weight) & ~np.isnan(median_h)
        if ok.any():
            edited = cons.copy()
            edited["weight_kg"] = np.where(ok, weight + value * (median_h / 100.0) ** 2, weight)
            out["consultations"] = edited
            touched.append(_edited(cons, ok))
    apps = tables["applications"]
    if len(apps):
        weight = apps["weight_kg"].to_numpy(dtype=float, na_value=np.nan)
        height = apps["height_cm"].to_numpy(dtype=float, na_value=np.nan)
        ok = ~np.isnan(weight) & ~np.isnan(height)
        if ok.any():
            edited = apps.copy()
            edited["weight_kg"] = np.where(ok, weight + value * (height / 100.0) ** 2, weight)
            out["applications"] = edited
            touched.append(_edited(apps, ok, "application_date"))
    return out, (pd.concat(touched, ignore_index=True) if touched
                 else pd.DataFrame({"member_id": pd.Series(dtype="str"), "date": pd.Series(dtype="datetime64[s]")}))


EDITS = {"steps_at_least": _steps_at_least, "bmi_change": _bmi_change}


def edit_tables(tables: Mapping[str, pd.DataFrame], scenario: WhatIfScenario) -> Edit:
    """The tables with the scenario's edit applied, and (member_id, date) of every record it changed."""
    return EDITS[scenario.edit](tables, scenario.value)


def touched_pairs(edited: pd.DataFrame, pairs: pd.DataFrame) -> np.ndarray:
    """Which (member, index date) pairs see an edited record: one dated strictly before the index
    date (the features' point-in-time rule). The others have no source data to change."""
    if not len(edited) or not len(pairs):
        return np.zeros(len(pairs), dtype=bool)
    first = edited.groupby("member_id")["date"].min()
    first_edit = pairs["member_id"].astype("str").map(first)
    return (pd.to_datetime(first_edit) < pd.to_datetime(pairs["index_date"])).to_numpy(dtype=bool, na_value=False)


@dataclass(frozen=True)
class ScenarioResult:
    """One scenario over the portfolio: who had data to edit, who changed class, expected claims."""

    name: str
    description: str
    members: int
    with_source_data: int
    changed_class: int
    moved_down: int  # to a lower (better) risk class
    moved_up: int
    expected_claims_before: float
    expected_claims_after: float
    transitions: pd.DataFrame  # risk class before x after, member counts
    # The generator's counterfactual truth on the same members (synthetic data only): expected true
    # onsets within the horizon before and after, over the members truly free of the disease.
    true_onsets_before: float | None = None
    true_onsets_after: float | None = None
    true_members: int = 0

    @property
    def expected_claims_change(self) -> float:
        return self.expected_claims_after - self.expected_claims_before

    @property
    def model_relative_change(self) -> float:
        return self.expected_claims_change / self.expected_claims_before if self.expected_claims_before else 0.0

    @property
    def true_relative_change(self) -> float | None:
        if self.true_onsets_before is None or self.true_onsets_after is None or not self.true_onsets_before:
            return None
        return (self.true_onsets_after - self.true_onsets_before) / self.true_onsets_before


def summarise(scenario: WhatIfScenario, spec: ProductSpec, p_before: np.ndarray, p_after: np.ndarray,
              edited: np.ndarray) -> ScenarioResult:
    """Compare before and after; `p_after` equals `p_before` wherever `edited` is false."""
    before, after = spec.class_index(p_before), spec.class_index(p_after)
    names = [c.name for c in spec.risk_classes]
    transitions = pd.crosstab(pd.Categorical([names[i] for i in before], categories=names),
                              pd.Categorical([names[i] for i in after], categories=names), dropna=False)
    transitions.index.name, transitions.columns.name = "before", "after"
    return ScenarioResult(
        name=scenario.name, description=scenario.description, members=len(p_before),
        with_source_data=int(edited.sum()), changed_class=int((before != after).sum()),
        moved_down=int((after < before).sum()), moved_up=int((after > before).sum()),
        expected_claims_before=float(p_before.sum()), expected_claims_after=float(p_after.sum()),
        transitions=transitions)
