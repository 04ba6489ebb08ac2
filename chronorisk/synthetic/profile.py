"""The population profile of the synthetic cohort, validated from YAML.

A shifted population (older, less active, fewer wearables) is a profile that `extends` the
default and overrides a few keys, so drift scenarios are data, not code.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class AgeBand(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    low: float = Field(ge=18, le=100)
    high: float = Field(ge=18, le=101)
    share: float = Field(gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> AgeBand:
        if self.high <= self.low:
            raise ValueError(f"age band high ({self.high}) must exceed low ({self.low})")
        return self


class Profile(BaseModel):
    """Who is in the synthetic book; the disease biology itself lives in synthetic_population."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    enrolment_start: date
    enrolment_end: date
    extract_date: date
    annual_lapse_rate: float = Field(gt=0, lt=1)
    age_bands: list[AgeBand] = Field(min_length=1)
    male_share: float = Field(ge=0, le=1)
    regions: dict[str, float]
    bmi_median: float = Field(gt=15, lt=40)
    bmi_log_sd: float = Field(gt=0, lt=0.5)
    activity_shift: float = Field(ge=-3, le=3)
    steps_median: float = Field(gt=500, lt=30000)
    wearable_uptake: float = Field(ge=0, le=1)
    wearable_days_share_median: float = Field(gt=0, le=1)
    wearable_start: date
    lab_share: float = Field(ge=0, le=1)
    family_history_diabetes: dict[str, float]
    family_history_hypertension: dict[str, float]
    smoker_share: dict[str, float]
    gestational_diabetes_share: float = Field(ge=0, le=1)

    @field_validator("family_history_diabetes", "family_history_hypertension")
    @classmethod
    def _family_keys(cls, v: dict[str, float]) -> dict[str, float]:
        unknown = set(v) - {"first_degree", "second_degree"}
        if unknown:
            raise ValueError(f"unknown family history keys {sorted(unknown)}; use first_degree, second_degree")
        if sum(v.values()) > 1:
            raise ValueError("family history shares add up to more than 1")
        return v

    @field_validator("smoker_share")
    @classmethod
    def _sexes(cls, v: dict[str, float]) -> dict[str, float]:
        if set(v) != {"male", "female"}:
            raise ValueError("smoker_share needs exactly the keys male and female")
        return v

    @model_validator(mode="after")
    def _dates(self) -> Profile:
        if not self.enrolment_start <= self.enrolment_end < self.extract_date:
            raise ValueError("need enrolment_start <= enrolment_end < extract_date")
        return self


def load_profile(path: Path) -> Profile:
    """Read a profile YAML; `extends: other.yaml` (relative to the file) is applied first."""
    raw = yaml.safe_load(Path(path).read_text())
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: a profile is a YAML mapping")
    parent = raw.pop("extends", None)
    if parent is not None:
        base = load_profile(Path(path).parent / parent).model_dump()
        base.update(raw)
        raw = base
    return Profile.model_validate(raw)
