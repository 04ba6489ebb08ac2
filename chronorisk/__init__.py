"""chronorisk: the command-line entry point and the settings every stage shares.

The product code lives in `features`, `training` and `serving`; this package only wires them
to the outside world (CLI, environment), so nothing in them reads the environment itself.
"""
