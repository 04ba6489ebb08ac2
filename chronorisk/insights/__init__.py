"""The portfolio report: a scored book's SHAP segments, what-if scenarios, figures and HTML page."""
