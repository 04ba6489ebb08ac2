"""The GLM and a strongly regularised LightGBM averaged on the log-odds scale: the small-data
candidate for a risk that is mostly additive with some structure the trees can see.

On a few hundred rows neither model alone is reliably better: the GLM misses interactions and
thresholds, the trees waste rows learning what is linear. Their average keeps the GLM's
steadiness and some of the trees' structure. It stays exactly explainable, because both parts
are: the blend's contributions are the weighted sum of the GLM's exact terms and the trees'
TreeSHAP values, and its base value the weighted sum of theirs, so base + contributions = raw.
The weight is fixed (one half), so that nothing more is chosen on the rows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lightgbm as lgb
import numpy as np

if TYPE_CHECKING:  # only a type here: MLflow's copy of this module (chronorisk/model/mlflow_model.py) stands alone
    from chronorisk.model.linear import LinearModel

GLM_WEIGHT = 0.5


@dataclass(frozen=True)
class Blend:
    glm: LinearModel
    trees: lgb.Booster
    glm_weight: float = GLM_WEIGHT

    def predict(self, x: np.ndarray, raw_score: bool = False, pred_contrib: bool = False, **kw: Any) -> np.ndarray:
        w = self.glm_weight
        if pred_contrib:
            return np.asarray(w * self.glm.predict(x, pred_contrib=True)
                              + (1.0 - w) * np.asarray(self.trees.predict(x, pred_contrib=True, **kw)))
        raw = w * self.glm.predict(x, raw_score=True) + (1.0 - w) * np.asarray(self.trees.predict(x, raw_score=True,
                                                                                                  **kw))
        return raw if raw_score else 1.0 / (1.0 + np.exp(-raw))

    def feature_name(self) -> list[str]:
        return self.glm.feature_name()

    def feature_importance(self, importance_type: str = "gain") -> np.ndarray:
        """Each part's importance as shares, weighted as the blend weights the parts."""
        def share(v: np.ndarray) -> np.ndarray:
            return v / v.sum() if v.sum() > 0 else v

        return np.asarray(self.glm_weight * share(self.glm.feature_importance())
                          + (1.0 - self.glm_weight) * share(np.asarray(self.trees.feature_importance("gain"),
                                                                       dtype=float)))

    def num_trees(self) -> int:
        return int(self.trees.num_trees())

    def weights_json(self) -> str:
        return json.dumps({"kind": "blend", "glm_weight": self.glm_weight}, indent=2)

    @staticmethod
    def weight_from_json(path: Path) -> float:
        data = json.loads(path.read_text())
        if data.get("kind") != "blend" or not isinstance(data.get("glm_weight"), float) or not (
                0.0 <= data["glm_weight"] <= 1.0):
            raise ValueError("blend.json: expected {'kind': 'blend', 'glm_weight': float in [0, 1]}")
        return float(data["glm_weight"])
