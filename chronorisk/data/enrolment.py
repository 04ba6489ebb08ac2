"""Who is enrolled on a date: one rule for the training labels, the feature runners, the imported
snapshot, the batch scorer's eligibility and the portfolio report, so that a member the model
learned about and a member it scores are counted the same way."""

from __future__ import annotations

import numpy as np
import pandas as pd


def enrolled_on(members: pd.DataFrame, t: pd.Timestamp, *, joined_by: pd.Timestamp | None = None) -> np.ndarray:
    """Members whose cover holds on `t`: joined on or before `joined_by` (default `t`; earlier when the
    rows need history before `t`) and not left before `t`. A missing end is cover still running; a
    missing start is never enrolled, so it counts as not enrolled rather than failing."""
    start, end = members["enrollment_start"], members["enrollment_end"]
    since = t if joined_by is None else joined_by
    return ((start <= since) & (end.isna() | (end >= t))).to_numpy(dtype=bool, na_value=False)
