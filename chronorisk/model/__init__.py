"""What a model version is: the product it scores, its pickle-free bundle (scorer, calibration,
reference profile), the MLflow registry that holds it, and its model card.

Training writes it and serving, monitoring and the report read it, so it sits below all three.
"""
