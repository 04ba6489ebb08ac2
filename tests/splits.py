"""Product variants with another split, for tests that pin down one scheme's behaviour."""

from __future__ import annotations

from datetime import date

from chronorisk.model.product import ProductSpec, Split

FIRST_WAVE = [date(2018, 1, 1), date(2019, 1, 1), date(2020, 1, 1), date(2021, 1, 1)]


def time_split(spec: ProductSpec) -> ProductSpec:
    """The product with the first wave's out-of-time split (rows without full follow-up dropped)."""
    split = Split(train=FIRST_WAVE[:2], validation=FIRST_WAVE[2:3], test=FIRST_WAVE[3:])
    return ProductSpec.model_validate({**spec.model_dump(), "index_dates": FIRST_WAVE, "split": split.model_dump()})


def all_complete_dates_tested(spec: ProductSpec) -> ProductSpec:
    """member_and_time with every completely followed date a test date, so every row is kept whatever
    the member draw gives (a test member's earlier dates would otherwise be set aside)."""
    split = {"scheme": "member_and_time", "test": [d for d in spec.index_dates if d.year <= 2021]}
    return ProductSpec.model_validate({**spec.model_dump(), "split": split})
