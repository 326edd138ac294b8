"""One logging configuration for the pipeline's processes.

Human-readable lines on stdout (so ``docker compose logs`` shows them) and, when UFO_LOG_DIR is
set, every line in ``$UFO_LOG_DIR/pipeline.log``; each spark-submit's whole output goes to
``$UFO_LOG_DIR/spark/``. Luigi's own logging set-up is switched off in luigi.cfg
(``no_configure_logging``) so that its lines go through these handlers too.

The terminal is quiet by default (UFO_VERBOSE=1 shows it all): each task's start and end,
progress, warnings and errors, Luigi's execution summary. Luigi's scheduler lines ("Informed
scheduler...", "Worker ... running"), spark-submit's command line and output and a user error's
traceback (its ``ufo: error:`` line says what to do) go to the log file only. A record says
where it goes with ``extra={"console": False}`` (the file only), ``{"console": True}`` (both)
or ``{"file": False}`` (the terminal only: a line another process writes to the file itself).
"""

from __future__ import annotations

import atexit
import datetime as dt
import logging
import logging.handlers
import os
import re
import sys
from pathlib import Path

from etl.errors import UfoError
from etl.settings import setting

FORMAT = "%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s"
_MARK = "_ufo_handler"


def log_dir() -> Path | None:
    """UFO_LOG_DIR, if set."""
    return setting("log_dir")


class _QuietLuigiSetup(logging.Filter):
    """Drops Luigi's "logging disabled in settings": this module sets logging up instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != "logging disabled in settings"


_at_exit: list[str] = []
_printer_registered = False


def _print_at_exit() -> None:
    if _at_exit:
        print(*dict.fromkeys(_at_exit), sep="\n", file=sys.stderr, flush=True)


def last_lines_after_this() -> None:
    """Make the lines of ``say_at_exit`` come after whatever exit functions are registered
    from now on (atexit runs them last registered, first): for the run's alert, which logs."""
    global _printer_registered
    if not _printer_registered:
        atexit.register(_print_at_exit)
        _printer_registered = True


def say_at_exit(line: str) -> None:
    """Print ``line`` on stderr when the process exits, after whatever Luigi prints last (each
    line once, in the order said)."""
    last_lines_after_this()
    if line not in _at_exit:
        to_file(line)  # now, in its place among the log file's lines
    _at_exit.append(line)


class _NoScheduler(logging.Handler):
    """When Luigi gives up on luigid, say what to do: the last line of the run's output."""

    def emit(self, record: logging.LogRecord) -> None:
        error = record.exc_info[1] if record.exc_info else None
        if error is None or type(error).__name__ != "RPCError":
            return
        if getattr(self, "_said", False):
            return
        self._said = True
        say_at_exit(
            f"ufo: error: {str(error).splitlines()[0]}: start luigid (`make luigid`, or "
            "`docker compose up -d luigid`), or run with --local-scheduler."
        )


class _BrokenTask(logging.Handler):
    """Luigi's own tasks (``RangeDaily``) that fail in ``complete()`` or ``requires()`` get a
    traceback and no event: say their error in one ``ufo: error:`` line, the run's last. The
    pipeline's tasks say theirs themselves (``etl.pipeline.reporting``)."""

    WILL_NOT_RUN = re.compile(r"^Will not run (.*?) or any dependencies due to error in", re.S)

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        found = self.WILL_NOT_RUN.match(message)
        if found is None:
            return
        last = [line for line in message.splitlines() if line.strip()][-1].strip()
        if _pipeline_error(message) or "RPCError" in last:
            return  # a pipeline task's error, or no luigid: said elsewhere
        error = re.sub(r"^[\w.]+\.(\w+): ", r"\1: ", last)  # luigi.parameter.X: -> X:
        say_at_exit(f"ufo: error: {found.group(1)}: {error}")


class _Console(logging.Filter):
    """What the terminal shows (see the module's doc); everything when ``verbose``."""

    def __init__(self, verbose: bool):
        super().__init__()
        self.verbose = verbose

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "file_only", False):
            return False  # a line the process prints itself (to_file)
        if self.verbose:
            return True
        said = getattr(record, "console", None)
        if said is not None:
            return bool(said)
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, UfoError):
            return False  # a user error: its ``ufo: error:`` line says it, without a traceback
        if record.name.startswith("luigi"):
            if record.levelno >= logging.WARNING:
                return not _told_by_task(record)
            return record.getMessage().lstrip().startswith("===== Luigi Execution Summary")
        return True


def _told_by_task(record: logging.LogRecord) -> bool:
    """Luigi's report of a pipeline task's own error in ``complete()`` or ``requires()`` (a
    traceback in its text): the task's ``ufo: error:`` line says it."""
    found = _BrokenTask.WILL_NOT_RUN.match(record.getMessage())
    return found is not None and _pipeline_error(record.getMessage())


def _pipeline_error(message: str) -> bool:
    """Whether a traceback's text ends in a pipeline error (one its task reports itself)."""
    last = [line for line in message.splitlines() if line.strip()][-1].strip()
    return last.startswith("etl.errors.")


class _File(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return getattr(record, "file", True)


def verbose() -> bool:
    """UFO_VERBOSE; off when it cannot be read (the run's settings check says why)."""
    try:
        return bool(setting("verbose"))
    except UfoError:
        return False


def configure(level: int = logging.INFO) -> None:
    """Attach the stdout and file handlers to the root logger, once per process."""
    root = logging.getLogger()
    if any(getattr(h, _MARK, False) for h in root.handlers):
        return
    logging.getLogger("luigi").addFilter(_QuietLuigiSetup())
    logging.getLogger("luigi-interface").addHandler(_NoScheduler())
    logging.getLogger("luigi-interface").addHandler(_BrokenTask())
    formatter = logging.Formatter(FORMAT)
    console = logging.StreamHandler(sys.stdout)
    console.addFilter(_Console(verbose()))
    handlers: list[logging.Handler] = [console]
    directory = log_dir()
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.handlers.WatchedFileHandler(directory / "pipeline.log"))
        handlers[-1].addFilter(_File())
    for handler in handlers:
        handler.setFormatter(formatter)
        setattr(handler, _MARK, True)
        root.addHandler(handler)
    root.setLevel(level)


def to_file(line: str) -> None:
    """Write ``line`` into the log file alone (a line the process prints itself)."""
    logging.getLogger("ufo").error("%s", line, extra={"file_only": True})


def spark_log_path(task_id: str) -> Path | None:
    """Where one spark-submit's output is kept (UFO_SPARK_LOG_DIR, else UFO_LOG_DIR/spark), or
    None without either."""
    directory = setting("spark_log_dir")
    if directory is None:
        base = log_dir()
        if base is None:
            return None
        directory = base / "spark"
    stamp = dt.datetime.now().strftime("%Y%m%dT%H%M%S")
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", task_id)
    path = directory / f"{safe}.{stamp}.{os.getpid()}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path
