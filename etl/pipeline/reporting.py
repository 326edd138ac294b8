"""What the pipeline tells the person running it: one line per finished task, one per failure.

``report_failure`` prints ``ufo: error: TASK: what to fix`` (the line the worker service and the
README point at); ``report_done`` logs ``done: TASK in N s -> OUTPUT``. ``etl/__init__.py``
attaches both to Luigi's events.
"""

from __future__ import annotations

import datetime as dt
import errno
import logging
import os
import sys

import luigi

from etl.errors import UfoError
from etl.logs import say_at_exit

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
    line = f"ufo: error: {task.task_id if task is not None else 'luigi'}: {message}"
    if os.getpid() == _MAIN_PID:
        say_at_exit(line)
    elif line not in _printed:  # Luigi reports some failures twice (FAILURE, BROKEN_TASK)
        _printed.add(line)
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


def report_done(task: luigi.Task, seconds: float) -> None:
    """One line per finished task: how long it took and where its outputs are."""
    outputs = [getattr(t, "path", repr(t)) for t in luigi.task.flatten(task.output())]
    if len(outputs) > 1:
        where = f"{len(outputs)} outputs, first {outputs[0]}"
    else:
        where = outputs[0] if outputs else "no output of its own"  # e.g. RangeDaily
    logger.info("done: %s in %.1f s -> %s", task.task_id, seconds, where)


def span(dates: tuple[dt.date, ...]) -> str:
    """Run dates as a reader wants them in a log line: one date, or FIRST..LAST (N dates)."""
    if len(dates) == 1:
        return dates[0].isoformat()
    return f"{dates[0]}..{dates[-1]} ({len(dates)} dates)"
