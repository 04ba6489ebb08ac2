"""Scoring many applicants at once: /score_batch's fast path, with the answers of `score_applicant`.

The applicants' raw tables are concatenated into one extract, validated by the contracts once,
their features computed once for all their (member, index date) pairs, and the booster asked once for the raw scores
and once for the contributions of the whole matrix; each applicant's answer is then finished by
`serving.scoring.scored_row`, the tail /score uses too. Every answer is bit for bit the one
`score_applicant` gives the applicant alone (tests/integration/test_batch_scoring.py):

- each request gets its own member id in the extract (`applicants_tables(applicants, keys)`), so two
  requests with the same applicant id never meet the cross-row rules (duplicate keys) or each
  other's records; no rule beyond "present and unique" and no feature reads a member id;
- the rules of one member's rows depend only on that member's rows and its members row, so a
  rejected row is the same row, for the same reasons, as for the applicant alone; its
  `source_row` is taken back to the applicant's own position before the error paths are named;
- a feature of one (member, index date) pair reads only that member's records, and LightGBM
  scores each row of a matrix on its own (the same tree walk, whatever the other rows).

The per-request refusals (`questionnaire_needed`, unknown custom measurements) run per applicant,
in the order `score_applicant` runs them, so an applicant gets the same first refusal.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

import numpy as np
import pandas as pd

from chronorisk.data.contracts import TABLES, validate_columns
from chronorisk.data.measurements import CUSTOM_TABLE
from chronorisk.data.table import Table
from chronorisk.data.text_columns import ColumnArray
from features.build import feature_matrix
from serving.schemas import Applicant
from serving.scoring import (
    ONE_ROW,
    ApplicantRejected,
    Scored,
    ServedModel,
    _errors_from_quarantine,
    applicant_pairs,
    applicants_tables,
    custom_table,
    knockouts,
    questionnaire_needed,
    scored_row,
)

Outcome = Scored | ApplicantRejected


def _concat(tables: list[Table]) -> Table:
    """One table of the requests' custom-measurement tables, in request order, positions 0..n-1 (all
    built alike by `custom_table`, so their columns share names and dtypes)."""
    kept = [t for t in tables if len(t)]
    if len(kept) <= 1:
        return kept[0] if kept else tables[0]
    return Table({name: _concat_arrays([t[name] for t in kept]) for name in kept[0]})


def _concat_arrays(arrays: list[ColumnArray]) -> ColumnArray:
    if isinstance(arrays[0], np.ndarray):
        return np.concatenate(arrays)
    return type(arrays[0])._concat_same_type(arrays)


def _rejections(rejected: dict[str, pd.DataFrame], starts: dict[str, np.ndarray]) -> dict[int, dict[str, pd.DataFrame]]:
    """The quarantined rows of each request (by its position among those validated), `source_row` back to
    the row's position in the request's own table, as validating the request alone gives it."""
    out: dict[int, dict[str, pd.DataFrame]] = {}
    for table in TABLES:
        frame = rejected.get(table)
        if frame is None or not len(frame):
            continue
        rows = frame["source_row"].to_numpy(dtype=np.int64)
        owner = np.searchsorted(starts[table], rows, side="right") - 1  # the last request starting at or before
        for slot in np.unique(owner).tolist():
            sel = owner == slot
            own = frame.iloc[np.flatnonzero(sel)].reset_index(drop=True)
            own["source_row"] = rows[sel] - starts[table][slot]
            out.setdefault(slot, {})[table] = own
    return out


def score_applicants(served: ServedModel, applicants: Sequence[Applicant], request_id: str, today: date,
                     pepper: bytes) -> list[Outcome]:
    """Each applicant's `score_applicant` answer (a Scored, or the ApplicantRejected it raises), in order."""
    outcomes: list[Outcome | None] = [None] * len(applicants)
    live: list[int] = []  # positions in `applicants` that reach the contracts
    for i, applicant in enumerate(applicants):
        try:
            questionnaire_needed(served, applicant)
        except ApplicantRejected as err:
            outcomes[i] = err
            continue
        live.append(i)
    if live:
        _score_live(served, applicants, live, outcomes, request_id, today, pepper)
    assert all(o is not None for o in outcomes)
    return [o for o in outcomes if o is not None]


def _score_live(served: ServedModel, applicants: Sequence[Applicant], live: list[int], outcomes: list[Outcome | None],
                request_id: str, today: date, pepper: bytes) -> None:
    keys = [f"batch-{i}" for i in live]  # one member id per request (see the module's docstring)
    raw, starts = applicants_tables([applicants[i] for i in live], keys)
    accepted, rejected, _ = validate_columns(raw, extract_date=today, pepper=pepper)
    refused = _rejections(rejected, starts)

    scored: list[int] = []  # positions in `live` scored by the model
    custom: list[Table] = []
    for slot, i in enumerate(live):
        applicant = applicants[i]
        errors = _errors_from_quarantine(refused[slot]) if slot in refused else []
        try:
            if errors:
                raise ApplicantRejected(errors)
            if applicant.custom_measurements or served.model.custom_features:  # a data set's own features
                custom.append(custom_table(served, applicant, keys[slot]))
        except ApplicantRejected as err:
            outcomes[i] = err
            continue
        scored.append(slot)
    if not scored:
        return
    tables = dict(accepted)
    if custom:
        tables[CUSTOM_TABLE] = _concat(custom)
    index_dates = [applicants[live[s]].questionnaire.application_date + timedelta(days=1) for s in scored]
    pairs = applicant_pairs([keys[s] for s in scored], index_dates)
    model = served.model
    x = np.ascontiguousarray(feature_matrix(tables, pairs, served.registry)[:, served.model_columns])
    # the calling thread, as for one row (`ONE_ROW`): a batch is a few rows, and each row's score is
    # computed alone, so neither the thread count nor the other rows change a bit of it
    raw_scores = np.asarray(model.scorer.predict(x, raw_score=True, **ONE_ROW), dtype=float)
    contribs = np.asarray(model.scorer.predict(x, pred_contrib=True, **ONE_ROW))
    ruled = knockouts(served, tables, pairs)
    for row, (slot, day) in enumerate(zip(scored, index_dates, strict=True)):
        outcomes[live[slot]] = scored_row(served, request_id, ruled[row], day, x[row], float(raw_scores[row]),
                                          contribs[row])
