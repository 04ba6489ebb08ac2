"""Labels, splits, model fitting, baselines, calibration, evaluation and the MLflow registry."""
