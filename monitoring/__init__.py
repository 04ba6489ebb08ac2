"""Monitoring: the reference profile stored with each model, drift against it, and its reports."""
