"""Request and response models of the scoring API (they become the OpenAPI documentation).

Ranges and code lists are taken from the raw-data contracts, so a value the batch pipeline would
quarantine is refused here with the same rule, and the two can never drift apart.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from chronorisk.data import units as units_module
from chronorisk.data.contracts import ATC, CONTRACTS, ICD10, LAB_RANGES, REGIONS
from chronorisk.data.units import normalize_unit
from chronorisk.model.product import DECISIONS, RiskClass

LIMITS = {"consultations": 500, "lab_results": 500, "wearable_daily": 1100}
LAB_UNITS: dict[str, tuple[str, ...]] = {test: tuple(units) for test, units in units_module.LAB_UNITS.items()}


def _bounded(table: str, column: str, description: str, default: Any = None) -> Any:
    """A Field documenting the contract's physiological range for table.column. The range is judged
    by the contract itself (serving/scoring.py `accepted_tables`), not here, so that import, batch
    scoring and the service refuse the same value with the same rule and message (out_of_range)."""
    rng = CONTRACTS[table].columns[column].range
    assert rng is not None, f"{table}.{column} has no range in the contracts"
    lo, hi, unit = rng
    # strict: "7.0" is a string, not a number; a client that sends one has a bug we should not hide
    # finite: JSON's NaN is not a missing value (null is); it gets its own rule, finite_number
    return Field(default, strict=True, allow_inf_nan=False, json_schema_extra={"minimum": lo, "maximum": hi},
                 description=f"{description} ({unit}, {lo:g} to {hi:g})")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Family = Literal["none", "second_degree", "first_degree"]
CustomName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False, strict=True)]
Icd10 = Annotated[str, StringConstraints(pattern=rf"^{ICD10}$")]
Atc = Annotated[str, StringConstraints(pattern=rf"^{ATC}$")]


class Demographics(_Strict):
    birth_date: date = Field(description="date of birth (age 18 to 100 at application)")
    sex: Literal["F", "M"]
    region: Literal[REGIONS] = Field(description="region of residence")  # type: ignore[valid-type]
    family_history_diabetes: Family | None = Field(None, description="recorded family history, if known")
    family_history_hypertension: Family | None = None
    family_history_score: float | None = _bounded("members", "family_history_score",
                                                  "a family-history score as the insurer records it (an examination "
                                                  "extract's pedigree function)")


class Questionnaire(_Strict):
    """The application form, as the applicant answered it (self-reported). The answers may all be
    left out when the product's model does not use them (an examination extract's model); a model
    that does refuses the request, naming each answer it needs."""

    application_date: date = Field(description="the model scores as of the day after this date")
    active_30min: bool | None = Field(None, strict=True, description="physically active at least 30 minutes a day")
    daily_veg_fruit: bool | None = Field(None, strict=True, description="eats vegetables or fruit every day")
    ever_bp_treatment: bool | None = Field(None, strict=True, description="ever treated for high blood pressure")
    ever_high_glucose: bool | None = Field(None, strict=True, description="ever told of high blood glucose")
    family_history: Family | None = Field(None, description="diabetes in the family: none, second_degree, "
                                                            "first_degree")
    smoker: bool | None = Field(None, strict=True)
    waist_cm: float | None = _bounded("applications", "waist_cm", "waist circumference")
    height_cm: float | None = _bounded("applications", "height_cm", "height")
    weight_kg: float | None = _bounded("applications", "weight_kg", "weight")

    def answered(self) -> bool:
        """Whether any of the form's answers was given (the date and the measurements are not answers)."""
        return any(getattr(self, name) is not None for name in ANSWERS)


ANSWERS = ("active_30min", "daily_veg_fruit", "ever_bp_treatment", "ever_high_glucose", "family_history", "smoker")


class Consultation(_Strict):
    date: date
    channel: Literal["online", "outpatient", "inpatient"]
    icd10_codes: list[Icd10] = Field(default_factory=list, max_length=30, description="ICD-10 codes, e.g. E11.9")
    atc_codes: list[Atc] = Field(default_factory=list, max_length=30, description="ATC codes, e.g. A10BA02")
    weight_kg: float | None = _bounded("consultations", "weight_kg", "weight")
    height_cm: float | None = _bounded("consultations", "height_cm", "height")
    waist_cm: float | None = _bounded("consultations", "waist_cm", "waist circumference")
    sbp_mmhg: float | None = _bounded("consultations", "sbp_mmhg", "systolic blood pressure")
    dbp_mmhg: float | None = _bounded("consultations", "dbp_mmhg", "diastolic blood pressure")
    bmi: float | None = _bounded("consultations", "bmi", "BMI as measured, where weight and height are not given")
    triceps_skinfold_mm: float | None = _bounded("consultations", "triceps_skinfold_mm", "triceps skinfold")
    pregnancies: int | None = _bounded("consultations", "pregnancies", "number of pregnancies")
    heart_rate_bpm: float | None = _bounded("consultations", "heart_rate_bpm", "pulse at the consultation")
    smoking_status: Literal["never", "former", "current"] | None = None


class LabResult(_Strict):
    date: date
    test: Literal[tuple(LAB_RANGES)] = Field(description="lab test")  # type: ignore[valid-type]
    value: float = Field(strict=True, allow_inf_nan=False,
                         description="result in the stated unit; converted to %, mmol/L or mL/min/1.73m2")
    unit: str = Field(description="hba1c: % or mmol/mol; glucose and lipids: mmol/L or mg/dL; egfr: mL/min/1.73m2")

    @field_validator("unit")
    @classmethod
    def _known_unit(cls, v: str, info: Any) -> str:
        test = info.data.get("test")
        allowed = LAB_UNITS.get(test, ())
        if test is not None and normalize_unit(v) not in {normalize_unit(u) for u in allowed}:
            # the submitted unit is never echoed: it reaches the answer, the audit and the log
            raise ValueError(f"not a unit of {test}; use one of {', '.join(allowed)}")
        return v


class WearableDay(_Strict):
    date: date
    steps: int | None = _bounded("wearable_daily", "steps", "steps that day")
    resting_hr: float | None = _bounded("wearable_daily", "resting_hr", "resting heart rate")
    sleep_minutes: float | None = _bounded("wearable_daily", "sleep_minutes", "sleep")
    active_minutes: float | None = _bounded("wearable_daily", "active_minutes", "active minutes")
    wear_minutes: float | None = _bounded("wearable_daily", "wear_minutes", "minutes the device was worn")


class Applicant(_Strict):
    """One applicant's raw records; everything dated after the application date is ignored."""

    applicant_id: str = Field(min_length=1, max_length=64, description="the insurer's pseudonymous id; stored only "
                                                                        "as an HMAC in the audit trail")
    demographics: Demographics
    questionnaire: Questionnaire
    consultations: list[Consultation] = Field(default_factory=list, max_length=LIMITS["consultations"])
    lab_results: list[LabResult] = Field(default_factory=list, max_length=LIMITS["lab_results"])
    wearable_daily: list[WearableDay] = Field(default_factory=list, max_length=LIMITS["wearable_daily"],
                                              description="daily records; empty when the applicant has no device")
    custom_measurements: dict[CustomName, FiniteFloat] = Field(
        default_factory=dict, max_length=50,
        description="a model trained on an insurer's own data may use its own measurements (custom features, "
                    "e.g. skinfold_mm): name -> value taken at application, in the unit the data set's mapping "
                    "declares (GET /products lists them); a name the model does not know is refused")


class Reason(BaseModel):
    feature: str = Field(description="the feature's name in the registry (GET /model_card lists them)")
    description: str = Field(description="what the feature measures")
    value: float | None = Field(description="the applicant's value, in the feature's unit; null when not recorded")
    contribution: float = Field(description="SHAP contribution on the log-odds scale (positive raises risk)")
    direction: Literal["raises risk", "lowers risk"] = Field(description="which way it moves this applicant's risk")
    text: str = Field(description="the reason in plain words")


class ScoreResult(BaseModel):
    request_id: str = Field(description="the id of this answer's audit record (also the x-request-id header)")
    product: str = Field(description="the insurance product scored, e.g. diabetes")
    model_name: str = Field(description="the registered model that answered")
    model_version: str = Field(description="the exact registry version that answered")
    index_date: date = Field(description="the day after the application date")
    probability: float = Field(description="calibrated probability of the disease within the horizon")
    horizon_years: int = Field(description="years after index_date the probability covers")
    risk_class: str = Field(description="the product's risk class for this probability (GET /products lists "
                                        "each class's bound, decision and loading)")
    decision: Literal["accept", "accept_with_loading", "refer", "decline"] = Field(description=DECISIONS)
    premium_loading_pct: float | None = Field(description="premium loading in percent of the standard premium "
                                                          "(negative: a discount); null when a knock-out decided "
                                                          "or the class is not priced")
    knockout: str | None = Field(None, description="the rule that decided before the model, if any")
    reasons: list[Reason] = Field(description="the features raising this applicant's risk the most (TreeSHAP), "
                                              "strongest first: the product's 3 to 5, fewer when fewer raise it")


class ApplicantError(BaseModel):
    field: str = Field(description="path of the offending field, e.g. applicant.lab_results[2].value")
    rule: str = Field(description="the rule broken, e.g. out_of_range, unknown_code, required_by_model")
    message: str = Field(description="what the rule allows, in words; never the submitted value")


class BatchItem(BaseModel):
    index: int = Field(description="the applicant's position in the request's applicants")
    status: int = Field(description="this applicant's own status: 200 scored, 422 refused")
    result: ScoreResult | None = Field(None, description="the answer /score gives this applicant (status 200)")
    errors: list[ApplicantError] | None = Field(None, description="each field path and rule broken (status 422)")


class BatchResult(BaseModel):
    request_id: str = Field(description="the id of the batch's audit record (also the x-request-id header)")
    product: str = Field(description="the insurance product scored")
    results: list[BatchItem] = Field(description="one item per applicant, in the request's order")


class Explanation(BaseModel):
    request_id: str = Field(description="the id of this answer's audit record (also the x-request-id header)")
    product: str = Field(description="the insurance product scored")
    model_version: str = Field(description="the exact registry version that answered")
    base_value: float = Field(description="expected raw score (log-odds) over the training data")
    raw_score: float = Field(description="the model's raw score (log-odds); base_value + sum of contributions")
    contributions: dict[str, float] = Field(description="each model feature's TreeSHAP contribution (log-odds)")
    values: dict[str, float | None] = Field(description="each model feature's value, in its unit; null when not "
                                                         "recorded")


class ProductInfo(BaseModel):
    product: str = Field(description="the product's name, as /score takes it")
    title: str = Field(description="the product's title")
    horizon_years: int = Field(description="years after the index date its probabilities cover")
    model_name: str | None = Field(description="the registered model answering; null while it is not loaded")
    model_version: str | None = Field(description="the exact version answering; null while it is not loaded")
    loaded: bool = Field(description="whether its champion is loaded and answering")
    load_error: str | None = Field(description="set when the champion could not be loaded (the server log says why)")
    risk_classes: list[RiskClass] = Field(description="the classes, by ascending probability bound")


class ProductList(BaseModel):
    products: list[ProductInfo] = Field(description="every product this server serves")
    input_schema: dict[str, Any] = Field(description="JSON Schema of an applicant (the Applicant model)")


class ErrorAnswer(BaseModel):
    """Every refusal's body: the request id to quote, the status again, and each field path and rule broken
    (never the submitted value)."""

    request_id: str = Field(description="the id to quote (the refusal's audit record, when it has one)")
    status: int = Field(description="the HTTP status again")
    errors: list[ApplicantError] = Field(min_length=1, description="each field path and rule broken")
