"""Benchmarks (`chronorisk bench`): each writes its figures and a yardstick from the same run to bench/results/."""
