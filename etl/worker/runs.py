"""Running the pipeline as a child process: bound in time, its output logged live and redacted.

A run is ``python -m luigi --module etl TASK ...`` in its own process group. Each line it prints
is redacted and logged as ``LABEL | line``. After its time-out, or when told to stop, the whole
group (Luigi and any spark-submit) gets SIGTERM, then SIGKILL; whatever a run leaves in its
group when it ends is killed too.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass

from etl.pipeline.reporting import ALERTS_BY_WORKER
from etl.redact import redact_text
from etl.worker.requests import Request

logger = logging.getLogger("ufo.worker")

DEFAULT_TIMEOUT = 2 * 3600.0
# A run's processes get this long between SIGTERM and SIGKILL: enough for luigi and
# spark-submit to stop their children, short next to any timeout.
KILL_GRACE = 5.0


class AnyOf:
    """Set when any of its events is: a run stops for a lost claim or the worker's own stop."""

    def __init__(self, *events: threading.Event):
        self.events = events

    def is_set(self) -> bool:
        return any(event.is_set() for event in self.events)


@dataclass(frozen=True)
class RunOutcome:
    """How a run ended: its exit code, and whether it was stopped for time or a lost claim."""

    exit_code: int
    timed_out: bool
    stopped: bool
    reason: str | None  # the run's last "ufo: error: " line, if any


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass  # the group is empty: every process of the run has ended


def run_streamed(
    argv: list[str],
    env: dict[str, str],
    *,
    label: str,
    timeout: float,
    secrets: list[str],
    log_path: str | None = None,
    stop: threading.Event | AnyOf | None = None,
) -> RunOutcome:
    """Run ``argv`` in its own process group, logging its output live and into ``log_path``.

    Each line is redacted, logged as ``LABEL | line`` and written to ``log_path`` (if any). After
    ``timeout`` seconds, or once ``stop`` is set, the group gets SIGTERM and, KILL_GRACE
    seconds later, SIGKILL; when the run ends, whatever is left in its group is killed.
    """
    proc = subprocess.Popen(
        argv,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        start_new_session=True,  # its own process group, so that it can be killed as a whole
    )
    reasons: list[str] = []

    def pump() -> None:
        # Line-buffered: the worker uploads the log while the run goes on (etl.worker.runlog).
        with open(log_path or os.devnull, "w", encoding="utf-8", buffering=1) as log:
            for raw in proc.stdout:
                line = redact_text(raw.rstrip("\n"), secrets)
                # The run writes the log file itself (all of it): its lines go to the terminal here.
                logger.info("%s | %s", label, line, extra={"file": False})
                log.write(line + "\n")
                if line.startswith("ufo: error: "):
                    reasons.append(line)

    reader = threading.Thread(target=pump, name=f"output of {label}", daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    timed_out = stopped = False
    while proc.poll() is None:
        if stop is not None and stop.is_set():
            stopped = True
            break
        if time.monotonic() >= deadline:
            timed_out = True
            break
        try:
            proc.wait(timeout=min(0.5, max(deadline - time.monotonic(), 0.01)))
        except subprocess.TimeoutExpired:
            pass
    if proc.poll() is None:
        _signal_group(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=KILL_GRACE)
        except subprocess.TimeoutExpired:
            pass
    _signal_group(proc.pid, signal.SIGKILL)
    proc.wait()
    # The group is gone, so the pipe is closed and the reader ends; the limit only guards
    # against a process that left the group while keeping the pipe open.
    reader.join(timeout=30)
    return RunOutcome(proc.returncode, timed_out, stopped, reasons[-1] if reasons else None)


def run_luigi(
    request: Request,
    scheduler: list[str],
    *,
    title: str,
    label: str,
    timeout: float,
    secrets: list[str],
    log_path: str | None = None,
    stop: threading.Event | AnyOf | None = None,
    env: dict[str, str] | None = None,
) -> RunOutcome:
    """Run a pipeline task as ``python -m luigi``, bound by ``timeout``, its output logged live.

    Requests and the daily schedule both run through here. The command is logged as ``TITLE:
    running ...``, its output as ``LABEL | line``; run_streamed says how the bound is kept.
    ``env`` adds to the run's environment (a request's own log folder).
    """
    argv = request.argv(scheduler)
    logger.info("%s: running %s", title, redact_text(" ".join(argv[2:]), secrets))
    # Unbuffered, so that the run's lines reach the log as they are printed.
    # The worker sends the alert of a failed run itself (etl.pipeline.reporting).
    given = {**os.environ, **(env or {}), **request.env, "PYTHONUNBUFFERED": "1",
             ALERTS_BY_WORKER: "1"}  # fmt: skip
    return run_streamed(
        argv, given, label=label, timeout=timeout, secrets=secrets, log_path=log_path, stop=stop
    )


def seconds_text(value: float) -> str:
    return str(int(value)) if value == int(value) else str(value)
