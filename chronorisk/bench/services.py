"""The two yardstick services of the load bench, served by BentoML with the same settings as ours.

(a) `BareYardstick`: one pre-built feature row in, the champion's predict and pred_contrib out.
(b) `SameFeaturesYardstick`: the /score request body in, the same contracts and feature function,
    then predict and pred_contrib; no auth, audit, decision or reasons.
Both predict as /score does (`ONE_ROW`: on the calling thread), so the comparison is of everything
around the model, not of LightGBM's thread settings.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

import bentoml
import numpy as np
from pydantic import Field

from chronorisk.settings import Settings
from serving.schemas import Applicant
from serving.scoring import ONE_ROW

WORKERS = int(os.environ.get("CHRONORISK_WORKERS", "1"))


def _champion() -> Any:
    from serving.batch import load_served

    return load_served(Settings(), "diabetes", "champion")


@bentoml.service(name="yardstick-bare", workers=WORKERS, traffic={"timeout": 30})
class BareYardstick:
    def __init__(self) -> None:
        self.served = _champion()

    @bentoml.api(route="/score")
    def score(self, row: list[float | None] = Field(description="feature values in model order")) -> dict[str, float]:
        x = np.array([np.nan if v is None else v for v in row], dtype=float).reshape(1, -1)
        booster = self.served.model.scorer
        raw = np.asarray(booster.predict(x, raw_score=True, **ONE_ROW))
        contrib = np.asarray(booster.predict(x, pred_contrib=True, **ONE_ROW))
        return {"raw_score": float(raw[0]), "contrib_sum": float(contrib.sum())}


@bentoml.service(name="yardstick-same-features", workers=WORKERS, traffic={"timeout": 30})
class SameFeaturesYardstick:
    def __init__(self) -> None:
        self.served = _champion()
        self.pepper = Settings().id_pepper.get_secret_value().encode()

    @bentoml.api(route="/score")
    def score(self, product: str = Field(description="product"),
              applicant: Applicant = Field(description="applicant")) -> dict[str, float]:
        from datetime import timedelta

        from serving.scoring import accepted_tables, feature_row

        tables = accepted_tables(applicant, datetime.now(UTC).date(), self.pepper)
        index = applicant.questionnaire.application_date + timedelta(days=1)
        row = feature_row(tables, applicant.applicant_id, index, self.served.registry)
        x = row[self.served.model_columns].reshape(1, -1)
        booster = self.served.model.scorer
        raw = np.asarray(booster.predict(x, raw_score=True, **ONE_ROW))
        contrib = np.asarray(booster.predict(x, pred_contrib=True, **ONE_ROW))
        return {"raw_score": float(raw[0]), "contrib_sum": float(contrib.sum())}
