"""The long table of an extract's custom measurements (member_id, date, feature, value), and its rules.

An insurer's mapping may declare measurements the built-in catalogue does not know; they are
raw data like lab results, checked and quarantined by the same rules before any feature reads
them (features/custom.py turns them into features).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

import numpy as np
import pandas as pd

from chronorisk.data.pseudonym import member_refs

CUSTOM_TABLE = "custom_measurements"
COLUMNS = ["member_id", "date", "feature", "value"]


def empty_measurements() -> pd.DataFrame:
    return pd.DataFrame({"member_id": pd.Series([], dtype="str"), "date": pd.Series([], dtype="datetime64[s]"),
                         "feature": pd.Series([], dtype="str"), "value": pd.Series([], dtype="float64")})


def applicant_measurements(applicant_id: str, day: date, values: Mapping[str, float]) -> pd.DataFrame:
    """One applicant's custom measurements, dated the application date (a flat row's, likewise)."""
    frame = pd.DataFrame({"member_id": pd.Series([applicant_id] * len(values), dtype="str"),
                          "date": pd.Series([pd.Timestamp(day)] * len(values), dtype="datetime64[s]"),
                          "feature": pd.Series(list(values), dtype="str"),
                          "value": pd.Series(list(values.values()), dtype="float64")})
    return frame if len(values) else empty_measurements()


def validate_measurements(raw: pd.DataFrame, specs: dict[str, tuple[float, float] | None],
                          accepted_members: pd.Index, pepper: bytes) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(accepted rows in canonical dtypes, quarantined rows with reasons and member_ref).

    The same rules as the contracts, for columns the contracts do not know: a value that is not
    a number, outside the declared range, an unknown feature name, or a member the contracts
    rejected is quarantined with its reason, never dropped silently.
    """
    frame = raw.reset_index(drop=True)
    values = pd.to_numeric(frame["value"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    present = frame["value"].notna().to_numpy()
    dates = pd.to_datetime(frame["date"], errors="coerce").astype("datetime64[s]")
    ids = frame["member_id"].astype("str")
    names = frame["feature"].astype("str")
    why = np.full(len(frame), "", dtype=object)

    def flag(mask: np.ndarray, label: pd.Series | str) -> None:
        label_arr = label.to_numpy(dtype=object) if isinstance(label, pd.Series) else np.full(len(frame), label)
        out = np.where(why == "", label_arr, why + ";" + label_arr)
        why[mask] = out[mask]

    flag(present & np.isnan(values), "invalid_number:" + names)
    flag(dates.isna().to_numpy(), "invalid_date:date")
    known = names.isin(list(specs)).to_numpy()
    flag(~known, "unknown_code:feature")
    for name, rng in specs.items():
        if rng is None:
            continue
        sel = (names == name).to_numpy() & ~np.isnan(values)
        flag(sel & ((values < rng[0]) | (values > rng[1])), f"out_of_range:{name}")
    member_rejected = ~ids.isin(accepted_members).to_numpy() & (why == "")
    why[member_rejected] = "member_rejected"
    keep = (why == "") & present
    accepted = pd.DataFrame({"member_id": ids[keep].to_numpy(), "date": dates[keep].to_numpy(),
                             "feature": names[keep].to_numpy(), "value": values[keep]})
    accepted["member_id"] = accepted["member_id"].astype("str")
    accepted["feature"] = accepted["feature"].astype("str")
    bad = np.flatnonzero(why != "")
    rejected = frame.iloc[bad].drop(columns=["member_id"]).reset_index(drop=True).astype("str")
    rejected.insert(0, "member_ref", member_refs(ids.iloc[bad], pepper).to_numpy())
    rejected["reason"] = why[bad].astype(str)
    rejected["source_row"] = bad.astype(np.int64)
    return accepted, rejected
