"""The MLflow models-from-code definition of a chronorisk model version.

MLflow stores this file as code (nothing is pickled) next to the bundle files, with the
modules it scores through (chronorisk/model/linear.py, blend.py, calibration.py) as code paths. It lets
MLflow's own tools score a version; chronorisk itself never loads models through MLflow (the
service and every loader read the bundle files directly, after checking their hashes).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel


class ChronoriskModel(PythonModel):
    def load_context(self, context) -> None:  # type: ignore[no-untyped-def]
        import lightgbm as lgb

        try:  # in chronorisk's own environment
            from chronorisk.model.blend import Blend
            from chronorisk.model.calibration import Calibration
            from chronorisk.model.linear import LinearModel
        except ImportError:  # elsewhere: the code paths logged with the model
            from blend import Blend  # type: ignore[no-redef]
            from calibration import Calibration  # type: ignore[no-redef]
            from linear import LinearModel  # type: ignore[no-redef]

        art = context.artifacts
        glm = LinearModel.from_json(Path(art["glm.json"]).read_text()) if "glm.json" in art else None
        trees = lgb.Booster(model_file=art["model.txt"]) if "model.txt" in art else None
        self.scorer: Any = glm if glm is not None else trees
        if "blend.json" in art:
            self.scorer = Blend(glm, trees, Blend.weight_from_json(Path(art["blend.json"])))  # type: ignore[arg-type]
        with open(context.artifacts["calibration.json"]) as f:
            self.calibration = Calibration.from_json(f.read())
        with open(context.artifacts["features.json"]) as f:
            self.features = json.load(f)["features"]

    def predict(self, context, model_input: pd.DataFrame, params=None) -> np.ndarray:  # type: ignore[no-untyped-def]
        raw = np.asarray(self.scorer.predict(model_input[self.features].to_numpy(dtype=float), raw_score=True))
        return np.asarray(self.calibration.probability(raw))


mlflow.models.set_model(ChronoriskModel())
