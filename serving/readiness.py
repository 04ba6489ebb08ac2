"""Readiness shared by the workers of one server: ready only once every worker has its champions.

BentoML asks each worker alone (`__is_ready__`), and a new connection may reach any of them, so a
server whose first worker had loaded answered /readyz 200 while its second was still loading, and a
load balancer sent requests to a worker that could only answer 503. Each worker marks itself ready
in a folder of its own server (named by the leader's pid and start time, so a later server never
reads an earlier one's marks) and reports ready only when every worker's mark is there. A worker
that starts again (BentoML restarts a dead one) first takes its old mark away, so the whole server
reads not ready until it has loaded again.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import psutil

__all__ = ["ReadyMarks"]


class ReadyMarks:
    """The ready marks of one server's workers, in a 0700 folder of files named by worker number."""

    def __init__(self, folder: Path, worker: int, workers: int) -> None:
        self.folder, self.workers = folder, workers
        self.mark = folder / f"worker-{worker}"
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.mark.unlink(missing_ok=True)  # a restarted worker is not ready until it has loaded again

    @classmethod
    def of_this_server(cls, worker: int | None, workers: int) -> ReadyMarks:
        """For this worker (BentoML's 1-based worker index) of a server of `workers` workers."""
        leader = os.getppid()  # `bentoml serve` runs the worker processes as its children
        try:
            started = int(psutil.Process(leader).create_time())
        except psutil.Error:
            started = 0
        folder = Path(tempfile.gettempdir()) / f"chronorisk-ready-{os.getuid()}-{leader}-{started}"
        return cls(folder, worker if worker is not None else 1, workers)

    def set(self) -> None:
        """This worker has loaded every champion."""
        self.mark.touch(mode=0o600)

    def clear(self) -> None:
        with contextlib.suppress(OSError):
            self.mark.unlink(missing_ok=True)

    def all_set(self) -> bool:
        """Whether every worker of the server has set its mark."""
        return sum((self.folder / f"worker-{i}").exists() for i in range(1, self.workers + 1)) == self.workers
