"""Member ids as keyed pseudonyms (HMAC-SHA256 with a secret pepper) for logs, audit and quarantine.

A bare hash of a member id is reversible by enumerating the id space (ids are short and
structured); a keyed HMAC is not without the pepper, yet stays stable so one member's records
can still be linked across files by whoever holds the pepper.
"""

from __future__ import annotations

import hashlib
import hmac

import numpy as np
import pandas as pd

__all__ = ["member_ref", "member_refs"]


def member_ref(member_id: str, pepper: bytes) -> str:
    """The pseudonym of one member id: HMAC-SHA256(pepper, utf-8 id), hex."""
    if not pepper:
        raise ValueError("an empty pepper would make member_ref a bare hash; pass the configured secret")
    return hmac.new(pepper, member_id.encode("utf-8"), hashlib.sha256).hexdigest()


def member_refs(member_ids: pd.Series, pepper: bytes) -> pd.Series:
    """member_ref of every element (null stays null), computing each distinct id once.

    HMAC has no vectorised form, so the work is one call per distinct id, not per row.
    """
    codes, uniques = pd.factorize(member_ids, use_na_sentinel=True)
    refs = np.array([member_ref(str(u), pepper) for u in uniques] + [None], dtype=object)
    # code -1 (null) picks the trailing None
    return pd.Series(refs[codes], index=member_ids.index, dtype="str", name="member_ref")
