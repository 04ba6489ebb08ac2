"""Demographic features: age and sex at the index date, and family history where known."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.pointintime import KEY, YEAR_DAYS, aligned
from features.registry import FeatureSpec

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
]
NAMES = [s.name for s in SPECS]


def demographic_features(members: pd.DataFrame, index: pd.DataFrame) -> pd.DataFrame:
    m = index[KEY].merge(members, on="member_id", how="inner")
    out = pd.DataFrame({
        "member_id": m["member_id"], "index_date": m["index_date"],
        "age_years": (m["index_date"] - m["birth_date"]).dt.days.to_numpy(dtype=float) / YEAR_DAYS,
        "sex_male": np.where(m["sex"].isna(), np.nan, (m["sex"] == "M").to_numpy(dtype=float, na_value=0.0)),
        "fh_diabetes_level": m["family_history_diabetes"].map(FAMILY_LEVEL).astype("float64"),
        "fh_hypertension_level": m["family_history_hypertension"].map(FAMILY_LEVEL).astype("float64"),
    }).set_index(KEY)
    return aligned(out, index, NAMES)
