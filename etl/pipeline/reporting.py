"""What the pipeline tells the person running it: one line per finished task, one per failure.

``report_failure`` prints ``ufo: error: TASK: what to fix`` (the line the worker service and the
README point at); ``report_done`` logs ``done: TASK in N s -> OUTPUT``. ``etl/__init__.py``
attaches both to Luigi's events.
"""

from __future__ import annotations

import atexit
import datetime as dt
import logging
import os
import sys

import luigi

from etl.errors import UfoError

logger = logging.getLogger("ufo")

_MAIN_PID = os.getpid()
_at_exit: list[str] = []


def report_failure(task: luigi.Task, exception: BaseException, *, last: bool = False) -> None:
    """Print one line saying what failed and what to do (after Luigi's own traceback).

    ``last``: Luigi prints its traceback after this call (errors in ``complete()`` and in
    parameters): in the main process the line is printed when the process exits instead.
    """
    if isinstance(exception, UfoError):
        message = str(exception)
    else:
        message = f"{type(exception).__name__}: {exception}".splitlines()[0]
    line = f"ufo: error: {task.task_id if task is not None else 'luigi'}: {message}"
    if last and os.getpid() == _MAIN_PID:
        say_at_exit(line)
    else:
        print(line, file=sys.stderr, flush=True)


def say_at_exit(line: str) -> None:
    """Print ``line`` on stderr when the process exits, after whatever Luigi prints last."""
    if not _at_exit:
        atexit.register(
            lambda: print(*dict.fromkeys(_at_exit), sep="\n", file=sys.stderr, flush=True)
        )
    _at_exit.append(line)


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
