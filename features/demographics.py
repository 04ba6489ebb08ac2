"""Demographic features: age and sex at the index date, and family history where known."""

from __future__ import annotations

import numpy as np
import pandas as pd

from chronorisk.data.declaration import FeatureSpec
from chronorisk.data.table import Table, floats, plain, positions, text
from chronorisk.data.text_columns import ColumnArray
from chronorisk.data.units import YEAR_DAYS
from features.pointintime import Pairs, day_numbers

FAMILY_LEVEL = {"none": 0.0, "second_degree": 1.0, "first_degree": 2.0}

SPECS = [
    FeatureSpec("age_years", "members", "years", "Age at the index date", 1,
                "Age: {value}", fmt="{:,.0f}"),
    FeatureSpec("sex_male", "members", "flag", "1 for men, 0 for women", 1,
                "Sex: {value} (1 = male)", fmt="{:.0f}"),
    FeatureSpec("fh_diabetes_level", "members", "level",
                "Family history of diabetes on record: 0 none, 1 second degree, 2 first degree", 1,
                "Family history of diabetes (0 none, 1 second-degree, 2 first-degree): {value}", fmt="{:.0f}"),
    FeatureSpec("fh_hypertension_level", "members", "level",
                "Family history of hypertension on record: 0 none, 1 second degree, 2 first degree", 1,
                "Family history of high blood pressure (0 none, 1 second-degree, 2 first-degree): {value}",
                fmt="{:.0f}"),
    FeatureSpec("family_history_score", "members", "score",
                "The extract's own family-history score (e.g. a diabetes pedigree function), as recorded", 1,
                "Family-history score: {value}", fmt="{:,.3f}"),
]
NAMES = [s.name for s in SPECS]


def levels(values: ColumnArray) -> np.ndarray:
    """FAMILY_LEVEL of each value (NaN for missing or unknown), looked up once per distinct value."""
    codes, uniques = pd.factorize(values)
    lookup = np.array([FAMILY_LEVEL.get(u, np.nan) for u in uniques] + [np.nan], dtype=float)
    return lookup[codes]


def demographic_features(members: Table, pairs: Pairs) -> dict[str, np.ndarray]:
    row = positions(text(members["member_id"]), pairs.members[pairs.member_codes])
    found = row >= 0
    m = members.take(np.where(found, row, 0))
    sex = plain(m["sex"]).astype(object)
    out = {
        "age_years": (pairs.days - day_numbers(m["birth_date"])) / YEAR_DAYS,
        "sex_male": np.where(pd.isna(sex), np.nan, (sex == "M").astype(float)),
        "fh_diabetes_level": levels(m["family_history_diabetes"]),
        "fh_hypertension_level": levels(m["family_history_hypertension"]),
        "family_history_score": floats(m["family_history_score"]),
    }
    return {k: np.where(found, v, np.nan) for k, v in out.items()}
