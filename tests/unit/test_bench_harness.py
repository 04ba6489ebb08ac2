"""The benchmark harness measures what it claims: wall time and the peak RSS of a process tree."""

from __future__ import annotations

import sys

from chronorisk.bench.harness import run_measured


def test_peak_rss_sees_memory_allocated_by_a_child_process():
    code = ("import subprocess, sys; subprocess.run([sys.executable, '-c', "
            "'import time; b = bytearray(300 * 2**20); b[::4096] = b\"x\" * len(b[::4096]); time.sleep(0.6)'])")
    result = run_measured([sys.executable, "-c", code])
    assert result["peak_rss_mb"] >= 300


def test_wall_time_covers_the_whole_command():
    result = run_measured([sys.executable, "-c", "import time; time.sleep(0.5)"])
    assert 0.5 <= result["wall_s"] < 5.0
