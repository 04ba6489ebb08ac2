"""The MLflow models-from-code definition of a chronorisk model version.

MLflow stores this file as code (nothing is pickled) next to the bundle files, with the two
modules it scores through (training/glm.py, training/calibration.py) as code paths. It lets
MLflow's own tools score a version; chronorisk itself never loads models through MLflow (the
service and every loader read the bundle files directly, after checking their hashes).
"""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel


class ChronoriskModel(PythonModel):
    def load_context(self, context) -> None:  # type: ignore[no-untyped-def]
        try:  # in chronorisk's own environment
            from training.calibration import Calibration
            from training.glm import LinearModel
        except ImportError:  # elsewhere: the code paths logged with the model
            from calibration import Calibration  # type: ignore[no-redef]
            from glm import LinearModel  # type: ignore[no-redef]

        if "glm.json" in context.artifacts:
            with open(context.artifacts["glm.json"]) as f:
                self.scorer = LinearModel.from_json(f.read())
        else:
            import lightgbm as lgb

            self.scorer = lgb.Booster(model_file=context.artifacts["model.txt"])  # type: ignore[assignment]
        with open(context.artifacts["calibration.json"]) as f:
            self.calibration = Calibration.from_json(f.read())
        with open(context.artifacts["features.json"]) as f:
            self.features = json.load(f)["features"]

    def predict(self, context, model_input: pd.DataFrame, params=None) -> np.ndarray:  # type: ignore[no-untyped-def]
        raw = np.asarray(self.scorer.predict(model_input[self.features].to_numpy(dtype=float), raw_score=True))
        return np.asarray(self.calibration.probability(raw))


mlflow.models.set_model(ChronoriskModel())
