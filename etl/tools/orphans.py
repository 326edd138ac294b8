"""Processes of the local worker's runs that outlived it, found by a marker in their environment.

The worker ``make up`` starts carries ``UFO_LOCALSTACK=<run directory>`` in its environment, and
so does every process of its runs (Luigi, spark-submit, Java). The worker stops its run before
it exits; what a killed worker left is found here, for ``make stop`` and ``make clean``.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

#: Set in the worker's environment, so that its runs (Luigi, spark-submit, Java) carry it too.
MARKER = "UFO_LOCALSTACK"
#: How long the processes get after SIGTERM before SIGKILL.
STOP_SECONDS = 10.0


def leftover_runs(run_dir: Path) -> list[int]:
    """Processes of the worker's runs from this run directory (found by MARKER in their
    environment). The worker stops its run before it exits; these are what a killed worker
    left."""
    wanted = f"{MARKER}={run_dir.resolve()}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if wanted in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue  # ended meanwhile, or another user's
    return sorted(found)


def stop_leftover_runs(run_dir: Path) -> None:
    """Stop what leftover_runs finds: SIGTERM, then SIGKILL what is still there (bounded)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = leftover_runs(run_dir)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + STOP_SECONDS
        while leftover_runs(run_dir) and time.monotonic() < deadline:
            time.sleep(0.2)
