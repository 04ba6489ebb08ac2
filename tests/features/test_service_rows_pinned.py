"""The service's feature rows for a fixed set of requests, pinned bit for bit.

The answers must stay bit-identical while the data path is rewritten for speed (issue 17): the same
model scores the same row to the same bits, so pinning the rows pins the answers. The requests and
their rows were recorded once, before the rewrite, from 24 members of a 600-member synthetic cohort
(seed 5), the load bench's standard applicant and the same applicant with US lab units; the requests
are stored, not regenerated, so a change to the generator cannot move them. A row that moves is a
behaviour change to explain, not a file to re-record.
"""

from __future__ import annotations

import gzip
import json
import math
from datetime import date, timedelta
from pathlib import Path

import pytest

from features.registry import default_registry
from serving.schemas import Applicant
from serving.scoring import accepted_tables, feature_row

GOLDEN = Path(__file__).parents[1] / "golden" / "service_feature_rows.json.gz"
with gzip.open(GOLDEN, "rt") as _fh:
    PINNED = json.load(_fh)


@pytest.mark.parametrize("case", PINNED["cases"], ids=lambda c: c["request"]["applicant_id"][:12])
def test_the_service_path_gives_the_pinned_row_bit_for_bit(case):
    registry = default_registry()
    applicant = Applicant.model_validate(case["request"])
    tables = accepted_tables(applicant, date.fromisoformat(PINNED["today"]), PINNED["pepper"].encode())
    values = feature_row(tables, applicant.applicant_id, applicant.questionnaire.application_date + timedelta(days=1),
                         registry)
    row = dict(zip(registry.names(), values.tolist(), strict=True))
    assert set(case["features"]) <= set(registry.names())
    moved = {f: (pinned, float(row[f]).hex()) for f, pinned in case["features"].items()
             if (None if math.isnan(float(row[f])) else float(row[f]).hex()) != pinned}
    assert not moved


def test_the_pinned_requests_cover_what_the_rows_read():
    cases = PINNED["cases"]
    assert len(cases) == 26
    assert any(len(c["request"]["wearable_daily"]) >= 365 for c in cases)  # the standard applicant
    assert any(not c["request"]["wearable_daily"] for c in cases)  # members without a wearable
    assert any(u in ("mg/dL", "mmol/mol") for c in cases for lab in c["request"]["lab_results"] for u in [lab["unit"]])
