"""The job's steps as Spark shows them, and its progress while it works.

Each step of ``aggregate_by_state.py`` ("read and pick the layout", "find the duplicates",
"classify") is announced with ``Steps.step``:

* run as a new application (cold), it becomes the description of the step's Spark jobs and SQL
  queries (``SparkContext.setJobDescription``): Spark's UI and the history server then list
  "AggregateUFOsByState 2019-03-29: classify" instead of ``localCheckpoint at
  NativeMethodAccessorImpl.java:0``;
* run as a session of a Spark Connect server (warm), the server sets every job's description
  itself ("Spark Connect - ..."); the step is then a tag of the session's operations, which the
  server's Connect tab lists beside each statement (``SparkSession.addTag``).

While a step runs, a thread prints at most one line every ``every`` seconds on stderr (0:
none)::

    progress: AggregateUFOsByState 2019-03-29: classify: stage 3, 5 of 8 tasks (12 s)

from Spark's status tracker (cold) or the progress the Connect server sends (warm). Luigi's task
reads the job's stderr as it comes and logs these lines (``etl/pipeline/spark_submit.py``).
Nothing is printed for a step that ends within ``every`` seconds; a stage whose counts do not
move is said again only every ``STILL`` seconds.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

#: What starts a progress line; the Luigi side looks for it.
PROGRESS = "progress: "


class Steps:
    """Names the Spark work of one run by its steps and reports how far each is."""

    def __init__(self, spark, label: str, connect: bool, every: float = 5.0, say=None):
        self.spark = spark
        self.label = label
        self.connect = connect
        self.every = every
        self.say = say or stderr_of(spark, connect)
        self._step: str | None = None
        self._started = time.monotonic()
        self._tag: str | None = None
        self._latest: tuple[int, int, int] | None = None  # (stage, done, total) reported warm
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if connect:
            self.spark.registerProgressHandler(self._on_progress)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Run the block as step ``name``: its Spark jobs say so, and it reports progress."""
        described = f"{self.label}: {name}"
        self._step, self._started, self._latest = name, time.monotonic(), None
        if self.connect:
            self._tag = tag(described)
            self.spark.addTag(self._tag)
        else:
            self.spark.sparkContext.setJobDescription(described)
        try:
            yield
        finally:
            if self.connect:
                self.spark.removeTag(self._tag)
            else:
                self.spark.sparkContext.setJobDescription(None)
            self._step = None

    def __enter__(self) -> Steps:
        self._stop = threading.Event()
        if self.every > 0:
            # Its own stop event: a thread of an earlier group never waits on a later one's.
            self._thread = threading.Thread(
                target=self._report, args=(self._stop,), name="progress", daemon=True
            )
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()  # before Spark stops: no status asked of a stopped application
            self._thread = None

    # -- progress -----------------------------------------------------------------------------

    def _on_progress(self, stages, inflight_tasks, operation_id, done) -> None:
        """PySpark's progress handler (Spark Connect): the stage that is still running."""
        running = [s for s in stages or () if not s.done]
        if running:
            stage = running[-1]
            self._latest = (stage.stage_id, stage.num_completed_tasks, stage.num_tasks)

    def _tracked(self) -> tuple[int, int, int] | None:
        """The running stage of a new application, from Spark's status tracker."""
        tracker = self.spark.sparkContext.statusTracker()
        stages = [tracker.getStageInfo(s) for s in tracker.getActiveStageIds()]
        stages = [s for s in stages if s is not None]
        if not stages:
            return None
        stage = max(stages, key=lambda s: s.stageId)
        return stage.stageId, stage.numCompletedTasks, stage.numTasks

    def line(self) -> str | None:
        """The progress line of now, or None when no step or stage runs."""
        step = self._step
        if step is None:
            return None
        try:
            found = self._latest if self.connect else self._tracked()
        except Exception:  # the application is stopping: no line
            return None
        seconds = time.monotonic() - self._started
        where = f"stage {found[0]}, {found[1]} of {found[2]} tasks" if found else "starting"
        return f"{PROGRESS}{self.label}: {step}: {where} ({seconds:.0f} s)"

    #: A step whose counts do not move is still said to run this often.
    STILL = 30.0

    def _report(self, stop: threading.Event) -> None:
        last, said = None, 0.0
        while not stop.wait(self.every):
            line = self.line()
            if line is None:
                continue
            # At most one line an interval; the same counts again (a long task) only after STILL.
            counts = line.rsplit(" (", 1)[0]
            if counts != last or time.monotonic() - said >= self.STILL:
                try:
                    self.say(line)
                except Exception:  # the output is gone (the run is ending): progress stops
                    return
                last, said = counts, time.monotonic()


def stderr_of(spark, connect: bool) -> Callable[[str], None]:
    """How a line reaches the stderr of the process Luigi started. spark-submit runs the job's
    Python with its stderr merged into the driver's stdout, which Luigi reads only at the end:
    a new application's lines go through the driver JVM's own stderr instead."""
    if connect:
        return lambda line: print(line, file=sys.stderr, flush=True)
    jvm_stderr = spark.sparkContext._jvm.System.err
    return jvm_stderr.println


def tag(text: str) -> str:
    """A Spark Connect operation tag of ``text``: tags may not hold commas."""
    return text.replace(",", ";")
