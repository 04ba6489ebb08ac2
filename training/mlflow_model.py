"""The MLflow models-from-code definition of a chronorisk model version.

MLflow stores this file as code (nothing is pickled) next to the bundle files. It lets MLflow's
own tools score a version; chronorisk itself never loads models through MLflow (the service
and every loader read the bundle files directly, after checking their hashes).
"""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel


class ChronoriskModel(PythonModel):
    def load_context(self, context) -> None:  # type: ignore[no-untyped-def]
        import lightgbm as lgb

        self.booster = lgb.Booster(model_file=context.artifacts["model.txt"])
        with open(context.artifacts["calibration.json"]) as f:
            cal = json.load(f)
        self.slope = float(cal["slope"])
        # platt: one intercept; discrete_hazard: one per year of follow-up (training/person_period.py)
        self.intercepts = [float(c) for c in cal.get("period_intercepts", [cal.get("intercept", 0.0)])]
        self.hazard = cal["method"] == "discrete_hazard"
        with open(context.artifacts["features.json"]) as f:
            self.features = json.load(f)["features"]

    def predict(self, context, model_input: pd.DataFrame, params=None) -> np.ndarray:  # type: ignore[no-untyped-def]
        raw = np.asarray(self.booster.predict(model_input[self.features].to_numpy(dtype=float), raw_score=True))
        if not self.hazard:
            return 1.0 / (1.0 + np.exp(-(self.slope * raw + self.intercepts[0])))
        survive = np.ones_like(raw)
        for c in self.intercepts:
            survive = survive * (1.0 - 1.0 / (1.0 + np.exp(-(self.slope * raw + c))))
        return 1.0 - survive


mlflow.models.set_model(ChronoriskModel())
