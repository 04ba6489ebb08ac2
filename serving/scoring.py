"""Scoring one applicant: the function the service calls and `chronorisk score` runs offline.

Raw records -> contracts -> the one feature function -> booster -> calibration -> knock-out
rules -> risk class, decision, loading -> reasons from TreeSHAP. Nothing here knows about HTTP,
so the batch runner reproduces the service's answers bit for bit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

from chronorisk.data.contracts import CONTRACTS, rule_message, validate_columns
from chronorisk.data.measurements import CUSTOM_TABLE, applicant_measurements
from chronorisk.data.table import Table, column_of
from chronorisk.model.bundle import LoadedModel
from features.build import feature_matrix
from features.pointintime import Pairs, count_before
from features.registry import FeatureRegistry, default_registry
from serving.schemas import ANSWERS, Applicant, ApplicantError, Questionnaire, Reason, ScoreResult
from training.labels import event_records

# Where each raw table lives in the request, for error paths.
REQUEST_PATH = {"members": "applicant.demographics", "applications": "applicant.questionnaire",
                "consultations": "applicant.consultations", "lab_results": "applicant.lab_results",
                "wearable_daily": "applicant.wearable_daily"}
LIST_TABLES = ("consultations", "lab_results", "wearable_daily")
# One row is predicted on the calling thread: LightGBM's OpenMP team costs more to wake than the
# row costs to score, and under load its threads wait on cores that the server's other requests
# hold (1.6-3.5 ms against 0.45 ms per predict + pred_contrib, measured here). Each row's score is
# computed alone, so the thread count does not change a bit of it.
ONE_ROW: dict[str, Any] = {"num_threads": 1}


class ApplicantRejected(ValueError):
    """The applicant's records break the contracts; errors name each field path and rule."""

    def __init__(self, errors: list[ApplicantError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.rule}" for e in errors))
        self.errors = errors


@dataclass(frozen=True)
class ServedModel:
    product: str
    model_name: str
    version: str
    model: LoadedModel
    registry: FeatureRegistry
    model_columns: np.ndarray = field(init=False)  # each model feature's column in the registry's rows

    def __post_init__(self) -> None:
        names = self.registry.names()
        object.__setattr__(self, "model_columns", np.array([names.index(f) for f in self.model.features], np.int64))


@dataclass(frozen=True)
class Scored:
    result: ScoreResult
    features: dict[str, float | None]
    contributions: np.ndarray  # per model feature, then the base value (log-odds)
    raw_score: float


def _table(name: str, n: int, columns: dict[str, list[Any]]) -> Table:
    """Request values as the raw table `name`, each column in its contract kind's canonical dtype."""
    kinds = CONTRACTS[name].columns
    return Table({col: column_of(kinds[col].kind, values) for col, values in columns.items()}, n)


CONSULTATION_COLUMNS = ("date", "channel", "weight_kg", "height_cm", "waist_cm", "sbp_mmhg", "dbp_mmhg", "bmi",
                        "triceps_skinfold_mm", "pregnancies", "heart_rate_bpm", "smoking_status")
LAB_COLUMNS = ("date", "test", "value", "unit")
WEARABLE_COLUMNS = ("date", "steps", "resting_hr", "sleep_minutes", "active_minutes", "wear_minutes")
MEMBER_COLUMNS = ("member_id", "birth_date", "sex", "region", "enrollment_start", "enrollment_end",
                  "family_history_diabetes", "family_history_hypertension", "family_history_score")
APPLICATION_COLUMNS = ("member_id", *Questionnaire.model_fields)
TABLE_COLUMNS = {"members": MEMBER_COLUMNS, "applications": APPLICATION_COLUMNS,
                 "consultations": ("consultation_id", "member_id", *CONSULTATION_COLUMNS, "icd10_codes", "atc_codes"),
                 "lab_results": ("member_id", *LAB_COLUMNS), "wearable_daily": ("member_id", *WEARABLE_COLUMNS)}


def applicant_tables(applicant: Applicant, key: str | None = None) -> dict[str, Table]:
    """The request as raw tables, exactly as a batch extract would hold them (`applicants_tables`)."""
    return applicants_tables([applicant], None if key is None else [key])[0]


def applicants_tables(applicants: Sequence[Applicant], keys: Sequence[str] | None = None
                      ) -> tuple[dict[str, Table], dict[str, np.ndarray]]:
    """Requests as raw tables, exactly as a batch extract would hold them, and where each request's rows
    start in each table. Built as arrays in one pass over the parsed requests, each column once for all
    of them (no DataFrame: its fixed costs were most of a request's time).

    With `keys` (a batch of requests, `serving.batch_scoring`), each key is its request's member id and
    prefixes its consultation ids, so that requests in one extract never share a key; neither id is read
    by a rule (beyond being present and unique) or by a feature."""
    cols: dict[str, dict[str, list[Any]]] = {t: {c: [] for c in names} for t, names in TABLE_COLUMNS.items()}
    starts: dict[str, list[int]] = {t: [] for t in TABLE_COLUMNS}
    for i, applicant in enumerate(applicants):
        mid = applicant.applicant_id if keys is None else keys[i]
        prefix = "" if keys is None else f"{keys[i]}:"
        for t, table in cols.items():
            starts[t].append(len(table["member_id"]))
        q, d = applicant.questionnaire, applicant.demographics
        for c, v in zip(MEMBER_COLUMNS, (mid, d.birth_date, d.sex, d.region, q.application_date, None,
                                          d.family_history_diabetes, d.family_history_hypertension,
                                          d.family_history_score), strict=True):
            cols["members"][c].append(v)
        # no answers at all: no application row, as for an extract without a questionnaire (a model that uses
        # the answers refuses such a request first: `questionnaire_needed`)
        if q.answered():
            cols["applications"]["member_id"].append(mid)
            for c in APPLICATION_COLUMNS[1:]:
                cols["applications"][c].append(getattr(q, c))
        cons = applicant.consultations
        cols["consultations"]["consultation_id"] += [f"{prefix}{j}" for j in range(len(cons))]
        cols["consultations"]["icd10_codes"] += [";".join(c.icd10_codes) for c in cons]
        cols["consultations"]["atc_codes"] += [";".join(c.atc_codes) for c in cons]
        for t, records, fields in (("consultations", cons, CONSULTATION_COLUMNS),
                                   ("lab_results", applicant.lab_results, LAB_COLUMNS),
                                   ("wearable_daily", applicant.wearable_daily, WEARABLE_COLUMNS)):
            cols[t]["member_id"] += [mid] * len(records)
            for c in fields:
                cols[t][c] += [getattr(r, c) for r in records]
    tables = {t: _table(t, len(table["member_id"]), table) for t, table in cols.items()}
    return tables, {t: np.array(s, dtype=np.int64) for t, s in starts.items()}


# Members-table columns that the request carries elsewhere, or under another name.
MEMBER_FIELDS = {"age_at_enrollment": "applicant.demographics.birth_date",
                 "enrollment_start": "applicant.questionnaire.application_date"}


def _field(table: str, source_row: int, rule: str, column: str) -> str:
    if table == "members" and column in MEMBER_FIELDS:
        return MEMBER_FIELDS[column]
    base = REQUEST_PATH[table] + (f"[{source_row}]" if table in LIST_TABLES else "")
    column = "value" if table == "lab_results" and rule in ("out_of_range", "unknown_unit") else column
    return f"{base}.{column}" if column else base


def _errors_from_quarantine(rejected: dict[str, pd.DataFrame]) -> list[ApplicantError]:
    """Each contract rule a row breaks, at the request's own field path. Rows refused only
    because the applicant's demographics were refused are not repeated: the cause is named."""
    errors: list[ApplicantError] = []
    seen: set[tuple[str, str]] = set()
    for table, frame in rejected.items():
        for why, source_row in zip(frame["reason"].tolist(), frame["source_row"].tolist(), strict=True):
            for reason in str(why).split(";"):
                rule, _, column = reason.partition(":")
                if rule == "member_rejected":
                    continue
                field = _field(table, int(source_row), rule, column)
                if (field, rule) not in seen:
                    seen.add((field, rule))
                    errors.append(ApplicantError(field=field, rule=rule, message=rule_message(table, reason)))
    if not errors and any(len(f) for f in rejected.values()):
        errors.append(ApplicantError(field="applicant.demographics", rule="member_rejected",
                                     message="the applicant's demographics were refused"))
    return errors


def accepted_tables(applicant: Applicant, today: date, pepper: bytes) -> dict[str, Table]:
    """Validate the applicant's records with the batch contracts; any rejected row rejects the request."""
    accepted, rejected, _ = validate_columns(applicant_tables(applicant), extract_date=today, pepper=pepper)
    errors = _errors_from_quarantine(rejected)  # the tables with rejected rows only
    if errors:
        raise ApplicantRejected(errors)
    return accepted


def applicant_pairs(applicant_ids: list[str], index_dates: list[date]) -> Pairs:
    """The (applicant, index date) pairs the feature function and the knock-outs are asked about."""
    return Pairs.of(np.array(applicant_ids, dtype=object),
                    np.array(index_dates, dtype="datetime64[D]").astype("datetime64[s]"))


def feature_row(tables: Mapping[str, Table], applicant_id: str, index_date: date,
                registry: FeatureRegistry) -> np.ndarray:
    """The applicant's features in registry order (NaN where missing): the one feature function's row."""
    return feature_matrix(tables, applicant_pairs([applicant_id], [index_date]), registry)[0]


def knockouts(served: ServedModel, tables: Mapping[str, Table], pairs: Pairs) -> list[str | None]:
    """Per (member, index date) pair, the knock-out rule that decides before the model, if any: the
    product's event already on record before the index date, or too few of consultations, labs and
    wearables on record. Vectorised, so /score_batch asks it once for all its applicants, as /score for one."""
    spec = served.model.spec
    members, dates = event_records(tables, spec)
    events = Table({"member_id": column_of("str", members.tolist()), "date": dates})
    prevalent = count_before(events, pairs) > 0
    sources = sum((count_before(tables[name], pairs) > 0).astype(int) for name in LIST_TABLES)
    need = spec.knockouts.min_data_sources
    return [f"prevalent: {spec.disease} already on record before the application" if p else
            f"too little data: {n} of consultations, labs or wearables on record (at least {need} needed)"
            if n < need else None for p, n in zip(prevalent.tolist(), np.asarray(sources).tolist(), strict=True)]


def reasons(served: ServedModel, values: np.ndarray, contrib: np.ndarray) -> list[Reason]:
    """The features pushing risk up the most (3 to 5 by product; fewer if fewer push up).

    values are the model's features in model order (NaN where missing)."""
    feats = served.model.features
    order = np.argsort(-contrib[: len(feats)], kind="stable")
    out: list[Reason] = []
    for j in order:
        if contrib[j] <= 0 or len(out) == served.model.spec.reason_count:
            break
        if not served.registry.may_be_reason(feats[j]):  # coverage and testing patterns describe the record
            continue
        spec = served.registry[feats[j]]
        value_out = None if np.isnan(values[j]) else float(values[j])
        out.append(Reason(feature=feats[j], description=spec.description, value=value_out,
                          contribution=float(contrib[j]), direction="raises risk", text=spec.reason_text(value_out)))
    return out


def questionnaire_needed(served: ServedModel, applicant: Applicant) -> None:
    """A request without questionnaire answers is scored only by a model that does not use them, and
    without the form's measurements: they are read with its answers, so without them they would go
    unchecked and unused."""
    q = applicant.questionnaire
    if q.answered():
        return
    errors: list[ApplicantError] = []
    uses = [f for f in served.model.features if served.registry[f].source == "applications"]
    if uses:
        errors += [ApplicantError(field=f"applicant.questionnaire.{name}", rule="required_by_model",
                                  message=f"model {served.model_name} v{served.version} uses the questionnaire "
                                          f"({len(uses)} features); give every answer") for name in ANSWERS]
    errors += [ApplicantError(field=f"applicant.questionnaire.{name}", rule="needs_answers",
                              message="the questionnaire's measurements are read with its answers: give the answers, "
                                      "or send measurements taken at an examination as a consultation")
               for name in ("waist_cm", "height_cm", "weight_kg") if getattr(q, name) is not None]
    if errors:
        raise ApplicantRejected(errors)


def score_applicant(served: ServedModel, applicant: Applicant, request_id: str, today: date,
                    pepper: bytes) -> Scored:
    """Score one applicant as of the day after the application date."""
    questionnaire_needed(served, applicant)
    tables = accepted_tables(applicant, today, pepper)
    if applicant.custom_measurements or served.model.custom_features:  # a data set's own features
        tables[CUSTOM_TABLE] = custom_table(served, applicant)
    index_date = applicant.questionnaire.application_date + timedelta(days=1)
    pairs = applicant_pairs([applicant.applicant_id], [index_date])
    values = feature_matrix(tables, pairs, served.registry)[0, served.model_columns]
    x = values.reshape(1, -1)
    raw = float(np.asarray(served.model.scorer.predict(x, raw_score=True, **ONE_ROW))[0])
    contrib = np.asarray(served.model.scorer.predict(x, pred_contrib=True, **ONE_ROW))[0]
    return scored_row(served, request_id, knockouts(served, tables, pairs)[0], index_date, values, raw, contrib)


def scored_row(served: ServedModel, request_id: str, knockout: str | None, index_date: date,
               values: np.ndarray, raw: float, contrib: np.ndarray) -> Scored:
    """One applicant's answer from its model row, raw score, contributions and knock-out (`knockouts`):
    calibration, risk class, decision and reasons. /score and /score_batch both end here."""
    model = served.model
    p = float(model.calibration.probability(np.array([raw]))[0])
    spec = model.spec
    risk = spec.risk_class(p)
    decision, loading = risk.decision, risk.premium_loading_pct
    if knockout is not None:
        ko = spec.knockouts
        decision = ko.prevalent_event if knockout.startswith("prevalent") else ko.too_little_data
        loading = None
    result = ScoreResult(request_id=request_id, product=served.product, model_name=served.model_name,
                         model_version=served.version, index_date=index_date, probability=p,
                         horizon_years=spec.horizon_years, risk_class=risk.name, decision=decision,
                         premium_loading_pct=loading, knockout=knockout, reasons=reasons(served, values, contrib))
    features = {f: (None if np.isnan(v) else float(v)) for f, v in zip(model.features, values.tolist(), strict=True)}
    return Scored(result=result, features=features, contributions=contrib, raw_score=raw)


def custom_table(served: ServedModel, applicant: Applicant, key: str | None = None) -> Table:
    """The request's custom measurements as the long table the custom features read; a name the
    model was not trained with is refused (a typo must not score as 'not recorded')."""
    known = [s.name for s in served.model.custom_features]
    unknown = sorted(set(applicant.custom_measurements) - set(known))
    if unknown:
        raise ApplicantRejected([ApplicantError(
            field=f"applicant.custom_measurements.{name}", rule="unknown_feature",
            message=f"model {served.model_name} v{served.version} has custom features {known or 'none'}")
            for name in unknown])
    return Table.of(applicant_measurements(key or applicant.applicant_id, applicant.questionnaire.application_date,
                                           applicant.custom_measurements))


def served_from(product: str, model_name: str, version: str, model: LoadedModel,
                registry: FeatureRegistry | None = None) -> ServedModel:
    if registry is None:  # the built-in features, plus the model's own custom ones (features/custom.py)
        registry = default_registry().extend(model.custom_features) if model.custom_features else default_registry()
    return ServedModel(product=product, model_name=model_name, version=version, model=model, registry=registry)
