"""Member pseudonyms are keyed HMAC-SHA256, never a bare hash."""

from __future__ import annotations

import hashlib

import pandas as pd
import pytest

from chronorisk.data.pseudonym import member_ref, member_refs


def test_member_ref_is_hmac_sha256_as_in_rfc_4231_test_case_2():
    expected = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    assert member_ref("what do ya want for nothing?", b"Jefe") == expected


def test_member_ref_is_not_the_bare_sha256_of_the_id():
    assert member_ref("M-1001", b"pepper") != hashlib.sha256(b"M-1001").hexdigest()


def test_a_different_pepper_gives_a_different_ref():
    assert member_ref("M-1001", b"pepper-a") != member_ref("M-1001", b"pepper-b")


def test_an_empty_pepper_is_refused():
    with pytest.raises(ValueError, match="pepper"):
        member_ref("M-1001", b"")


def test_vectorised_refs_equal_one_by_one_refs_and_nulls_stay_null():
    ids = pd.Series(["M-1", None, "M-2", "M-1"], dtype="str")
    refs = member_refs(ids, b"pepper")
    assert refs.iloc[0] == refs.iloc[3] == member_ref("M-1", b"pepper")
    assert refs.iloc[2] == member_ref("M-2", b"pepper")
    assert pd.isna(refs.iloc[1])
