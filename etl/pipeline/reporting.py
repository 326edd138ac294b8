"""What the pipeline tells the person running it: one line per finished task, one per failure.

``report_failure`` prints ``ufo: error: TASK: what to fix`` (the line the worker service and the
docs point at); ``report_done`` logs ``done: TASK in N s -> OUTPUT``. ``etl/__init__.py``
attaches both to Luigi's events.

Under Luigi's command line, ``arm_alerts`` also keeps a ledger of how each task ended (a file
that the run's task processes append to) and, when the run exits, sends one alert
(``etl.adapters.alerts``) listing every task whose last attempt failed: one message for a whole
backfill, none for a failure that a retry mended. The worker service sends its runs' alerts
itself, so the runs it starts (``ALERTS_BY_WORKER`` set) keep no ledger.
"""

from __future__ import annotations

import atexit
import datetime as dt
import errno
import json
import logging
import os
import secrets
import sys
import tempfile
from pathlib import Path

import luigi

from etl.adapters.alerts import Alert, Failure, deliver
from etl.errors import UfoError
from etl.logs import last_lines_after_this, log_dir, say_at_exit, to_file

logger = logging.getLogger("ufo")

_MAIN_PID = os.getpid()
_printed: set[str] = set()


def report_failure(task: luigi.Task, exception: BaseException) -> None:
    """Print one line saying what failed and what to do, after everything Luigi prints.

    In the main process (a run with one worker runs its tasks there) the line is printed when
    the process exits, after Luigi's traceback and execution summary; a task process (several
    workers) prints it at once, before it ends.
    """
    if type(exception).__name__ == "RPCError":
        return  # no luigid: etl.logs says it once, with what to do, as the run's last line
    if isinstance(exception, UfoError):
        message = str(exception)
    elif isinstance(exception, OSError) and (advice := _disk_advice(exception)):
        message = advice
    else:
        message = f"{type(exception).__name__}: {exception}".splitlines()[0]
    line = f"ufo: error: {label(task) if task is not None else 'luigi'}: {message}"
    _note(task, "failed", line)
    if os.getpid() == _MAIN_PID:
        say_at_exit(line)
    elif line not in _printed:  # Luigi reports some failures twice (FAILURE, BROKEN_TASK)
        _printed.add(line)
        to_file(line)
        print(line, file=sys.stderr, flush=True)


#: What to do about the operating system's write errors: a full disk, a read-only lake.
_DISK = {
    errno.ENOSPC: "No space left on device",
    errno.EDQUOT: "Disk quota exceeded",
    errno.EROFS: "Read-only file system",
    errno.EACCES: "Permission denied",
}


def _disk_advice(err: OSError) -> str | None:
    """The message of a write error, with the path and what to do; None for other errors."""
    text = str(err)
    reason = _DISK.get(err.errno) or next((r for r in _DISK.values() if r in text), None)
    if reason is None:
        return None
    where = f" writing {err.filename}" if err.filename else ""
    return (
        f"{reason}{where}: the lake (UFO_STORAGE), the log directory (UFO_LOG_DIR) and the "
        "temporary directory (TMPDIR) must be writable and have free space"
    )


def report_lost(task: luigi.Task, error: str) -> None:
    """A task whose process died or timed out (Luigi's PROCESS_FAILURE and TIMEOUT)."""
    report_failure(task, RuntimeError(str(error).strip() or "its process ended unexpectedly"))


def report_success(task: luigi.Task) -> None:
    _note(task, "done")


# -- the run's alert --------------------------------------------------------------------------

#: Set by the worker service in the environment of the runs it starts.
ALERTS_BY_WORKER = "UFO_ALERTS_BY_WORKER"

_ledger: Path | None = None


def arm_alerts() -> None:
    """Keep this run's ledger and send its alert at exit (Luigi's command line only)."""
    global _ledger
    if _ledger is not None or os.environ.get(ALERTS_BY_WORKER):
        return
    _ledger = Path(tempfile.gettempdir()) / f"ufo-run-{os.getpid()}-{secrets.token_hex(4)}.jsonl"
    last_lines_after_this()  # the alert's own log lines, then the ``ufo: error:`` line
    atexit.register(_alert_at_exit)


def _note(task: luigi.Task | None, outcome: str, reason: str = "") -> None:
    if _ledger is None or task is None:
        return
    dates = [d.isoformat() for d in getattr(task, "dates", ())]
    entry = {"id": task.task_id, "family": task.task_family, "dates": dates,
             "outcome": outcome, "reason": reason}  # fmt: skip
    try:  # one short line in append mode: the task processes' lines do not interleave
        with open(_ledger, "a", encoding="utf-8") as ledger:
            ledger.write(json.dumps(entry) + "\n")
    except OSError as err:
        logger.warning("alerts: cannot note how %s ended (%s)", task.task_id, err)


def failed_tasks(ledger: Path) -> list[Failure]:
    """The tasks whose last outcome in ``ledger`` is a failure, in the order they failed."""
    last: dict[str, dict] = {}
    try:
        lines = ledger.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a line cut short by a killed task process
        last.pop(entry["id"], None)  # re-inserted: the order of the last outcomes
        last[entry["id"]] = entry
    return [
        Failure(e["family"], tuple(e["dates"]), e["reason"])
        for e in last.values()
        if e["outcome"] == "failed"
    ]


def _alert_at_exit() -> None:
    if _ledger is None or os.getpid() != _MAIN_PID:
        return
    try:
        failures = failed_tasks(_ledger)
        _ledger.unlink(missing_ok=True)
        if failures:
            where = log_dir()
            log = str(where / "pipeline.log") if where else "the run's output"
            deliver(Alert("a pipeline run", tuple(failures), log))
    except Exception as err:  # an alert never changes how the run ends
        logger.warning("alerts: the run's alert was not sent: %s", err)


def report_done(task: luigi.Task, seconds: float) -> None:
    """One line per finished task: how long it took and where its outputs are."""
    outputs = [getattr(t, "path", repr(t)) for t in luigi.task.flatten(task.output())]
    if len(outputs) > 1:
        where = f"{len(outputs)} outputs, first {outputs[0]}"
    else:
        where = outputs[0] if outputs else "no output of its own"  # e.g. RangeDaily
    history = getattr(task, "history_page", None)
    if history:
        where += f"; Spark application: {history}"
    logger.info("done: %s in %.1f s -> %s", label(task), seconds, where)


def label(task: luigi.Task) -> str:
    """A task as a person names it: ``ReadUFOs(date=2019-04-01)``, a batch as
    ``ReadUFOs(date=2019-01-01..2019-03-29 (88 dates))``; another task (RangeDaily) by the
    parameters given to it. Never Luigi's hashed id (``ReadUFOs_2019_04_01_5b092e82ff``)."""
    dates = getattr(task, "dates", None)
    if isinstance(dates, tuple) and dates:
        return f"{task.task_family}(date={span(dates)})"
    given = []
    for name, param in task.get_params():
        if not param.significant or param.visibility != luigi.parameter.ParameterVisibility.PUBLIC:
            continue
        value = getattr(task, name)
        default = param._default  # Luigi's: no public accessor
        if value != default:
            given.append(f"{name}={param.serialize(value)}")
    return f"{task.task_family}({', '.join(given)})"


def report_start(task: luigi.Task) -> None:
    """One line when a task starts (Luigi's own says which worker, in the log file)."""
    logger.info("start: %s", label(task))


def span(dates: tuple[dt.date, ...]) -> str:
    """Run dates as a reader wants them in a log line: one date, or FIRST..LAST (N dates)."""
    if len(dates) == 1:
        return dates[0].isoformat()
    return f"{dates[0]}..{dates[-1]} ({len(dates)} dates)"
