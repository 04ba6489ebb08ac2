"""chronorisk: the namespace of the layers that are not one of the named stages.

Entry points (`cli/`, `bench/`) on top; the portfolio report (`insights/`) beside serving and
monitoring; the synthetic cohort (`synthetic/`) a data source for demos, tests and benches; what a
model version is (`model/`); the data layer (`data/`); `settings.py` at the bottom. The README's
layout tour draws the whole order, and tests/unit/test_layers.py holds every import to it.
"""
