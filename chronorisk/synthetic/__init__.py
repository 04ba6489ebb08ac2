"""The synthetic cohort: a data source for demos, tests and benches, with its generating truth.

It writes the same raw tables an insurer's import does; nothing below it imports it.
"""
