"""Product specifications: one YAML per single-disease product, validated into `ProductSpec`.

A product names what counts as the disease in the records (codes, medications, lab results,
repeated high readings), the horizon, who is excluded at the index date and which features the
model uses. Adding a product is a YAML file; a typo is an error naming the key.
"""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path
from typing import Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from chronorisk.data.units import CANONICAL_UNIT

PRODUCTS_DIR = Path("experiments/products")
LAB_TESTS = tuple(CANONICAL_UNIT)  # the lab-test catalogue the contracts convert and check


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LabThreshold(_Strict):
    test: str = Field(description="lab test in canonical units (hba1c %, fasting_glucose mmol/L, ...)")
    at_least: float = Field(description="a result at or above this value is an event")

    @field_validator("test")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in LAB_TESTS:
            raise ValueError(f"unknown lab test {v!r}; known: {', '.join(LAB_TESTS)}")
        return v


class HighReadings(_Strict):
    sbp_mmhg: float = Field(140, description="systolic threshold (inclusive)")
    dbp_mmhg: float = Field(90, description="diastolic threshold (inclusive)")
    count: int = Field(2, ge=1, description="the event is the date of this many-th high reading")


class EventDefinition(_Strict):
    """What counts as a recorded event: the first of any of these."""

    icd10_prefixes: list[str] = Field(default_factory=list)
    atc_prefixes: list[str] = Field(default_factory=list)
    lab_thresholds: list[LabThreshold] = Field(default_factory=list)
    high_readings: HighReadings | None = None

    @model_validator(mode="after")
    def _something(self) -> EventDefinition:
        if not (self.icd10_prefixes or self.atc_prefixes or self.lab_thresholds or self.high_readings):
            raise ValueError("an event definition needs at least one of icd10_prefixes, atc_prefixes, "
                             "lab_thresholds, high_readings")
        return self


class Exclusions(_Strict):
    prevalent_event: bool = Field(True, description="exclude members with a recorded event before the index date")
    min_history_days: int = Field(365, ge=0, description="days enrolled before the index date")


class Split(_Strict):
    """Which (member, index date) rows train, validate and test the model.

    `time` (the first wave's split): whole index dates go to one part, in time order. With a
    horizon of several years this only works if rows without full follow-up are dropped, and a
    member's training row at a later date shares events with their test row at an earlier one.
    `member_and_time`, so that no member's events sit on both sides of the split: members are
    drawn into test and validation by a
    keyed hash of their id; training members give every index date (partially followed rows
    count, through the censoring-aware model), validation members every date too (early stopping
    and the hazard calibration), and test members only the `test` dates, which must have complete
    follow-up; their later dates are kept as `test_censored` rows for a censoring-aware metric.
    No test member's record reaches training, so no event is shared across the split.
    """

    scheme: Literal["time", "member_and_time"] = "time"
    train: list[date] = Field(default_factory=list)
    validation: list[date] = Field(default_factory=list)
    test: list[date]
    test_members: float = Field(0.2, gt=0, lt=0.5, description="share of members held out for test")
    validation_members: float = Field(0.15, gt=0, lt=0.5, description="share of members for validation")
    salt: str = Field("chronorisk-split-1", description="hash salt of the member draw (not a secret: a split "
                                                       "is reproducible, nothing is pseudonymised with it)")

    def member_part(self, member_ids: np.ndarray) -> np.ndarray:
        """'test', 'validation' or 'train' for each member id, the same on every machine and run."""
        draws = np.array([int.from_bytes(hashlib.blake2b(f"{self.salt}:{m}".encode(), digest_size=8).digest(),
                                         "big") / 2.0**64 for m in member_ids], dtype=float)
        out = np.full(len(draws), "train", dtype=object)
        out[draws < self.test_members + self.validation_members] = "validation"
        out[draws < self.test_members] = "test"
        return out


DECISIONS = ("accept: issue at the standard premium; accept_with_loading: issue with the class's premium loading; "
             "refer: an underwriter decides; decline: not offered")


class RiskClass(_Strict):
    name: str = Field(description="the risk class, as the product names it (e.g. preferred, standard)")
    below: float = Field(gt=0, le=1.0001, description="calibrated horizon probability upper bound (exclusive)")
    decision: Literal["accept", "accept_with_loading", "refer", "decline"] = Field(description=DECISIONS)
    premium_loading_pct: float | None = Field(None, description="premium loading in percent; null when not priced")


class Knockouts(_Strict):
    """Rules applied before the model: a recorded prevalent disease, or too little data to score."""

    prevalent_event: Literal["decline", "refer"] = "decline"
    min_data_sources: int = Field(1, ge=0, description="consultations, labs or wearables needed; fewer -> refer")
    too_little_data: Literal["refer", "decline"] = "refer"


class SubgroupBounds(_Strict):
    """How far subgroups (sex, age band) may drift apart before the gate refuses a model (decision 10).

    A subgroup with fewer rows or events than the minimums is reported but not judged: its AUC
    would be noise, and a gate that refuses on noise teaches people to ignore it.
    """

    max_auc_gap: float = Field(0.10, gt=0, description="largest AUC difference between subgroups of one kind")
    max_calibration_gap: float = Field(0.03, gt=0, description="largest |observed rate - mean predicted| "
                                                               "within a subgroup")
    min_rows: int = Field(200, ge=1, description="rows a subgroup needs to be judged")
    min_events: int = Field(30, ge=1, description="events a subgroup needs to be judged")


class GateConfig(_Strict):
    auc_margin: float = Field(0.002, ge=0, description="test ROC AUC the challenger must gain over the champion")
    calibration_slope: tuple[float, float] = (0.8, 1.2)
    max_ece: float = Field(0.02, gt=0, description="above small_data.max_rows rows; below, the intervals judge")
    observed_expected: tuple[float, float] = Field((0.8, 1.25), description="small data: bounds on observed / "
                                                   "expected events; refused only when the whole interval is out")
    bootstrap_replicates: int = Field(1000, ge=100, le=20000, description="small data: replicates of the "
                                      "calibration intervals")
    subgroups: SubgroupBounds = Field(default_factory=SubgroupBounds)


ModelFamily = Literal["glm", "glm_spline", "lightgbm", "blend"]
MODEL_FAMILIES: tuple[ModelFamily, ...] = ("glm", "glm_spline", "lightgbm", "blend")  # simplest first
DEFAULT_FAMILIES: tuple[ModelFamily, ...] = ("glm", "lightgbm", "blend")


class SmallData(_Strict):
    """Below `max_rows` labelled rows, training uses repeated stratified k-fold (training/kfold.py)."""

    max_rows: int = Field(5000, ge=0, description="k-fold below this many labelled rows (0: never)")
    folds: int = Field(5, ge=2, le=20)
    repeats: int = Field(3, ge=1, le=20)
    test_fraction: float = Field(0.25, gt=0, lt=0.6, description="held out before any model choice, for an "
                                                                   "extract without an out-of-time test split")
    lambda_l2: float = Field(20.0, ge=0, description="LightGBM L2 penalty in k-fold mode (strong regularisation)")
    min_child_samples: int = Field(30, ge=5, description="LightGBM leaf size in k-fold mode")
    candidates: list[ModelFamily] = Field(
        default_factory=lambda: list(DEFAULT_FAMILIES), min_length=1,
        description="the model families the folds compare, simplest first (training/kfold.py); glm_spline "
                    "(the GLM with B-spline terms) is there to add")
    glm_c: float = Field(1.0, gt=0, description="the GLM candidates' inverse L2 penalty (standardised scale)")
    spline_knots: int = Field(4, ge=2, le=12, description="knots of the spline-GLM candidate's B-splines")
    refit_on_all_rows: bool = Field(True, description="deploy the chosen model refitted on every labelled row; "
                                                      "the test figures stay those of the fit before")


class WhatIfScenario(_Strict):
    """A named what-if for the portfolio report: an edit of raw records, re-featured and re-scored
    (`chronorisk/insights/whatif.py`; a sum of SHAP values would miss interactions and the
    calibration's curvature). `steps_at_least`: every wearable day under `value` steps gets `value`;
    `bmi_change`: every recorded weight moves so that BMI changes by `value` kg/m2."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    description: str
    edit: Literal["steps_at_least", "bmi_change"]
    value: float


class ProductSpec(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    title: str
    disease: str
    horizon_years: int = Field(ge=1, le=20)
    outcome: Literal["event", "extract"] = Field("event", description="event: labels from the event definition; "
                                                 "extract: from the imported extract's outcome column")
    outcome_timing: Literal["incident", "current"] = Field(
        "incident", description="incident: the outcome is a first event within horizon_years of the index date "
        "(members who already have the disease are excluded); current: the disease as found at the index date "
        "(screening), so the probability is of having it now and nobody is excluded for it; only with outcome: "
        "extract")
    event: EventDefinition | None = None
    exclusions: Exclusions = Field(default_factory=Exclusions)
    index_dates: list[date] = Field(default_factory=list)
    split: Split | None = None
    features: Literal["all"] | list[str] = "all"
    exclude_features: list[str] = Field(default_factory=list)
    monotone_overrides: dict[str, Literal[-1, 0, 1]] = Field(default_factory=dict)
    baseline_score: Literal["findrisc"] | None = Field(None, description="published score to compare against")
    model_params: dict[str, float | int | str] = Field(default_factory=dict, description="LightGBM overrides")
    risk_classes: list[RiskClass] = Field(min_length=1)
    knockouts: Knockouts = Field(default_factory=Knockouts)
    gate: GateConfig = Field(default_factory=GateConfig)
    reason_count: int = Field(5, ge=3, le=5, description="reasons returned per score: the features pushing risk up "
                                                        "most (fewer if fewer push up)")
    small_data: SmallData = Field(default_factory=SmallData)
    recency_half_life_years: float | None = Field(
        None, gt=0, description="censoring-aware model: weight each training row by 0.5 ** (years before the "
        "latest index date / this), so the model learns most from the population it will be served on")
    scenarios: list[WhatIfScenario] = Field(default_factory=list, description="what-ifs of the portfolio report")

    @model_validator(mode="after")
    def _current_outcome_is_an_extract_s(self) -> ProductSpec:
        if self.outcome_timing == "current" and self.outcome != "extract":
            raise ValueError("outcome_timing: current needs outcome: extract (an event definition labels events "
                             "within the horizon, which is incident)")
        return self

    @property
    def excludes_prevalent(self) -> bool:
        """Whether a member with the disease already on record is outside the product's population."""
        return self.outcome_timing == "incident" and self.exclusions.prevalent_event

    @property
    def min_history_days(self) -> int:
        """Days enrolled before the index date that a row needs: an extract's applicants are scored on
        the day after their application, with no history before it, as its model was trained."""
        return 0 if self.outcome == "extract" else self.exclusions.min_history_days

    def outcome_meaning(self) -> str:
        return (f"{self.disease} within {self.horizon_years} years" if self.outcome_timing == "incident"
                else f"{self.disease} at the index date (screening)")

    def base_rate_warning(self, rate: float) -> str | None:
        """A warning when the outcome's base rate sits in the lowest or highest risk class: a
        calibrated model's answers centre on the base rate, so most applicants would land in one class."""
        if not len(self.risk_classes) > 1 or not 0 <= rate <= 1:
            return None
        position = int(self.class_index(np.array([rate]))[0])
        if 0 < position < len(self.risk_classes) - 1:
            return None
        c = self.risk_classes[position]
        bound = (f"below {self.risk_classes[0].below:.1%}" if position == 0
                 else f"{self.risk_classes[-2].below:.1%} and above")
        hint = " (is the extract's outcome current rather than incident?)" \
            if position > 0 and self.outcome_timing == "incident" else ""
        return (f"the outcome's base rate {rate:.1%} ({self.outcome_meaning()}) is in risk class '{c.name}' "
                f"({bound}, decision {c.decision}): a calibrated model centres on the base rate, so most applicants "
                f"will fall in that one class; set the risk classes of product {self.name} for this rate{hint}")

    def class_mix_warning(self, probabilities: np.ndarray, most: float = 0.5) -> str | None:
        """A warning when more than `most` of the scored applicants fall in one risk class."""
        p = np.asarray(probabilities, dtype=float)
        p = p[~np.isnan(p)]
        if not len(p) or len(self.risk_classes) < 2:
            return None
        shares = np.bincount(self.class_index(p), minlength=len(self.risk_classes)) / len(p)
        top = int(np.argmax(shares))
        if shares[top] <= most:
            return None
        return (f"{shares[top]:.0%} of {len(p):,} applicants fall in risk class '{self.risk_classes[top].name}' "
                f"(mean probability {p.mean():.1%}, {self.outcome_meaning()}): check the risk classes against the "
                "outcome's base rate")

    @model_validator(mode="after")
    def _split_covers_index_dates(self) -> ProductSpec:
        if self.outcome == "extract":  # one snapshot per member, labelled by the extract itself
            if self.split is not None or self.index_dates:
                raise ValueError("outcome: extract takes its index dates from the extract; drop index_dates and split")
            return self
        if self.event is None or self.split is None or not self.index_dates:
            raise ValueError("event, index_dates and split are required unless outcome is extract")
        if self.split.scheme == "member_and_time":
            if self.split.train or self.split.validation:
                raise ValueError("split: member_and_time trains and validates on every index date; list only `test`")
            if not self.split.test or not set(self.split.test) <= set(self.index_dates):
                raise ValueError("split: member_and_time needs `test` dates, each one of the index_dates")
            last = max(self.index_dates)
            late = [d for d in self.split.test if date(d.year + self.horizon_years, d.month, d.day) > last.replace(
                year=last.year + 1)]
            if late:
                raise ValueError(f"split: test dates {[str(d) for d in late]} cannot have {self.horizon_years} years "
                                 f"of follow-up before the extract that the last index date {last} implies")
            return self
        split_dates = [*self.split.train, *self.split.validation, *self.split.test]
        if sorted(split_dates) != sorted(self.index_dates):
            raise ValueError("split: train, validation and test must together list exactly the index_dates")
        if not self.split.train or not self.split.validation:
            raise ValueError("split: the time scheme needs train and validation dates")
        if not max(self.split.train) < min(self.split.validation) <= max(self.split.validation) < min(self.split.test):
            raise ValueError("split: train dates must precede validation dates, which must precede test dates")
        return self

    @model_validator(mode="after")
    def _scenario_names_unique(self) -> ProductSpec:
        names = [s.name for s in self.scenarios]
        if len(set(names)) != len(names):
            raise ValueError(f"scenarios: names must be unique, got {names}")
        return self

    @model_validator(mode="after")
    def _classes_ascend_to_one(self) -> ProductSpec:
        bounds = [c.below for c in self.risk_classes]
        if bounds != sorted(bounds) or len(set(bounds)) != len(bounds):
            raise ValueError("risk_classes: 'below' bounds must strictly increase")
        if bounds[-1] < 1.0:
            raise ValueError("risk_classes: the last class must reach probability 1 (below: 1.0001)")
        return self

    def risk_class(self, probability: float) -> RiskClass:
        for c in self.risk_classes:
            if probability < c.below:
                return c
        return self.risk_classes[-1]

    def class_index(self, p: np.ndarray) -> np.ndarray:
        """`risk_class` of many probabilities at once, as positions in `risk_classes` (ascending)."""
        bounds = np.array([c.below for c in self.risk_classes])
        return np.minimum(np.searchsorted(bounds, p, side="right"), len(bounds) - 1)

    def class_names(self, p: np.ndarray) -> np.ndarray:
        """`risk_class(...).name` of many probabilities at once (object array)."""
        return np.array([c.name for c in self.risk_classes], dtype=object)[self.class_index(np.asarray(p))]

    def feature_names(self, available: list[str]) -> list[str]:
        """The features this product's model uses, in registry order; unknown names are an error."""
        chosen = available if self.features == "all" else list(self.features)
        unknown = sorted(set(chosen) - set(available)) + sorted(set(self.exclude_features) - set(available))
        if unknown:
            raise ValueError(f"product {self.name}: unknown features {unknown}")
        excluded = set(self.exclude_features)
        return [f for f in available if f in set(chosen) and f not in excluded]

    def split_of(self, index_date: date) -> str:
        """The part of an index date under the `time` scheme (member_and_time: `split_rows`)."""
        if self.split is None:
            raise ValueError(f"product {self.name} has no out-of-time split (outcome: extract)")
        for part in ("train", "validation", "test"):
            if index_date in getattr(self.split, part):
                return part
        raise ValueError(f"{index_date} is not an index date of product {self.name}")


def split_rows(spec: ProductSpec, member_ids: np.ndarray, index_date: date) -> np.ndarray:
    """The part of each (member, index date) row: 'train', 'validation', 'test', 'test_censored'
    (a test member's date after the last test date) or 'unused' (a test member's earlier date)."""
    if spec.split is None:
        raise ValueError(f"product {spec.name} has no split (outcome: extract)")
    if spec.split.scheme == "time":
        return np.full(len(member_ids), spec.split_of(index_date), dtype=object)
    parts = spec.split.member_part(member_ids)
    test = parts == "test"
    if index_date in spec.split.test:
        return parts
    parts[test] = "test_censored" if index_date > max(spec.split.test) else "unused"
    return parts


def load_product(name_or_path: str | Path, products_dir: Path = PRODUCTS_DIR) -> ProductSpec:
    """Load `experiments/products/<name>.yaml` (or a path); errors name the file and the key."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = products_dir / f"{name_or_path}.yaml"
    if not path.exists():
        known = sorted(p.stem for p in products_dir.glob("*.yaml"))
        raise FileNotFoundError(f"no product spec {path}; known products: {', '.join(known)}")
    raw = yaml.safe_load(path.read_text())
    try:
        return ProductSpec.model_validate(raw)
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in err.errors())
        raise ValueError(f"{path}: {problems}") from None

