"""Defaults that more than one command shows: the pipelines pass them on to the stage commands they run, so
`demo` or `retrain` with no options does what `data synth`, `features build` and `train` do with none."""

from __future__ import annotations

SEED = 7  # same seed and data: same cohort bytes, bit-identical predictions
MEMBERS = 20_000  # the synthetic cohort of `data synth` and `demo`
CHUNK_MEMBERS = 20_000  # members per features chunk; bounds memory
WORKERS = 2  # processes generating a cohort, or Dask workers building features
