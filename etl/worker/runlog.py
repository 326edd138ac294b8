"""A request's log while it runs, its tasks' Spark output when it ends, and what a log says runs.

While a request runs, ``LiveLog`` uploads its log so far to ``requests/NAME.log`` every few
seconds (``UFO_PROGRESS_SECONDS``, at least MIN_EVERY apart, and only when it has grown), so
that the console shows it while the run goes on; the worker uploads it whole when the run ends,
as before. An upload that fails never fails the run: it is said once, and the next one tries
again.

Each spark-submit's whole output is kept on disk (``etl.logs.spark_log_path``): ``spark_log_dir``
gives a request's run a folder of its own for it, ``gather_spark_output`` collects what the
run's tasks kept there, redacted and bounded, for ``requests/NAME.spark.log``, and
``keep_spark_output`` copies it where the worker keeps spark-submit outputs
(``$UFO_LOG_DIR/spark/``).

``running_task`` reads a live log for the task that runs now: the console shows it for a
running request.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import threading
from collections.abc import Iterable
from pathlib import Path

from etl.adapters.lake import Lake
from etl.logs import log_dir
from etl.redact import redact_text
from etl.settings import setting

logger = logging.getLogger("ufo.worker")

#: The live log is uploaded no more often than this, whatever UFO_PROGRESS_SECONDS says: each
#: upload is a whole PUT of the log so far.
MIN_EVERY = 2.0
#: How long the end of a run waits for an upload under way (the lake client's own time-outs
#: end a stuck one long before).
JOIN_SECONDS = 300.0
#: Of each spark-submit's output, its last this many bytes: its end says how the job ended.
SPARK_KEPT = 2 * 1024 * 1024

# A task's lines as the run logs them (etl.pipeline.reporting), after the log format's prefix
# (``TIME LEVEL ufo[PID]: ``) if any. A label holds parentheses of its own (``ReadUFOs(date=
# 2019-01-01..2019-03-29 (88 dates))``): it ends where the rest of its line starts.
_PREFIX = r"^(?:.*?\]: )?"
_START = re.compile(_PREFIX + r"start: (\w+\(.*\))\s*$")
_DONE = re.compile(_PREFIX + r"done: (\w+\(.*?\)) in [\d.]+ s\b")
_FAILED = re.compile(_PREFIX + r"ufo: error: (\w+\(.*?\)): ")


class LiveLog:
    """Uploads a run's log to the lake while it grows, from a thread of its own, until the
    ``with`` block (the run) ends. Nothing more is uploaded once ``halt`` is set: the request
    is no longer this worker's (another one took it over, and writes its log)."""

    def __init__(
        self,
        lake: Lake,
        local: str,
        rel: str,
        every: float,
        *,
        label: str,
        secrets: Iterable[str],
        halt: threading.Event | None = None,
    ):
        self.lake = lake
        self.local = local
        self.rel = rel
        self.every = max(every, MIN_EVERY)
        self.label = label
        self.secrets = list(secrets)
        self.halt = halt
        self.sent = 0  # bytes of the log the lake has
        self._warned = False
        self._ended = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"live log of {label}", daemon=True)

    def __enter__(self) -> LiveLog:
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._ended.set()
        # The final upload comes after this one: the lake keeps the whole log, not the last
        # live upload.
        self._thread.join(timeout=JOIN_SECONDS)

    def _loop(self) -> None:
        while not self._ended.wait(self.every):
            if self.halt is not None and self.halt.is_set():
                return
            self.upload()

    def upload(self) -> None:
        """Upload the log if it grew since the last upload; a failure is said once."""
        try:
            size = os.path.getsize(self.local)
        except OSError:
            return  # the run has not started writing it
        if size <= self.sent:
            return
        try:
            self.lake.put_file(self.local, self.rel)
        except Exception as err:
            if not self._warned:
                self._warned = True
                reason = redact_text(f"{type(err).__name__}: {err}", self.secrets)
                logger.warning(
                    "%s: its log could not be uploaded while it runs (%s): the run goes on, "
                    "and its log is uploaded when it ends", self.label, reason,
                )  # fmt: skip
            return
        self.sent = size


def spark_log_dir(tmp: str) -> tuple[Path, dict[str, str]]:
    """Where a run's spark-submits keep their output, and what the run's environment needs for
    it: a folder of the request's temporary directory ``tmp``, the run's alone (given as its
    UFO_SPARK_LOG_DIR), so that what is gathered is this run's even when other runs share the
    worker's log folder (replicas on one volume). ``keep_spark_output`` then copies it where
    the worker keeps spark-submit outputs."""
    own = Path(tmp) / "spark"
    return own, {"UFO_SPARK_LOG_DIR": str(own)}


def keep_spark_output(directory: Path) -> None:
    """Copy a run's spark-submit outputs into the worker's own folder for them (its
    UFO_SPARK_LOG_DIR, else UFO_LOG_DIR/spark), as a run outside the worker keeps them; none:
    they go with the request's temporary directory."""
    kept = setting("spark_log_dir")
    if kept is None:
        base = log_dir()
        kept = None if base is None else base / "spark"
    if kept is None or not directory.is_dir():
        return
    kept.mkdir(parents=True, exist_ok=True)
    for entry in directory.iterdir():
        if entry.is_file():
            shutil.copy2(entry, kept / entry.name)


def gather_spark_output(
    directory: Path, since: float, secrets: Iterable[str], dest: str, kept: int = SPARK_KEPT
) -> list[str]:
    """Write into ``dest`` the spark-submit outputs kept in ``directory`` since ``since`` (the
    run's start: the folder may be the worker's, with earlier runs' files), oldest first, each
    under a header line naming its file, redacted, and of a longer one its last ``kept`` bytes;
    the names of the files gathered (none: ``dest`` is not written)."""
    try:
        found = [(entry.stat().st_mtime, entry.name, entry) for entry in directory.iterdir()]
    except OSError:
        return []  # no spark-submit ran: the folder was never made
    chosen = sorted((t, n, e) for t, n, e in found if t >= since and e.is_file())
    if not chosen:
        return []
    secrets = list(secrets)
    with open(dest, "w", encoding="utf-8") as out:
        for _time, name, entry in chosen:
            with open(entry, "rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                handle.seek(max(size - kept, 0))
                data = handle.read(kept)
            text = data.decode("utf-8", "replace")
            cut = size > kept
            if cut:
                # From its first whole line: a secret cut in two would escape redaction.
                text = text.partition("\n")[2]
            said = f", its last {kept:,} bytes" if cut else ""
            out.write(f"==== {name} ({size:,} bytes{said}) ====\n")
            out.write(redact_text(text, secrets).rstrip("\n") + "\n")
    return [name for _time, name, _entry in chosen]


def running_task(log: str) -> str | None:
    """The task a run's log says runs now: the last one that started and has not ended (no
    ``done:`` line, no ``ufo: error:`` line of its own after its ``start:``); None when none."""
    running: dict[str, None] = {}  # in the order they started
    for line in log.splitlines():
        started = _START.match(line)
        if started:
            running.pop(started.group(1), None)
            running[started.group(1)] = None
            continue
        ended = _DONE.match(line) or _FAILED.match(line)
        if ended:
            running.pop(ended.group(1), None)
    return next(reversed(running), None)
