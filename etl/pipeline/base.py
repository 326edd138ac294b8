"""The base of the pipeline's tasks: run dates, settings, the lake, forced re-runs, progress.

Every task takes ``--date``, one run date or a batch (``etl/pipeline/rundates.py``). A batch is
run once for all its dates, and each date is still published (and loaded) on its own, so a
batch is complete only when every one of its dates is.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import time
from collections.abc import Callable
from typing import TypeVar

import luigi

from etl.adapters.lake import Lake, open_lake
from etl.adapters.manifests import Manifests
from etl.errors import UfoError
from etl.pipeline.reporting import report_failure
from etl.pipeline.rundates import MAX_BATCH_DATES, RunDateParameter, RunDates
from etl.settings import Settings, load_settings

logger = logging.getLogger("ufo")

T = TypeVar("T")

#: The pipeline's tasks in the order they run: ``force_from`` names one of them.
CHAIN = ("ReadUFOs", "AggregateUFOsByState", "TopTenStates", "TopStatesToDatabase")


@functools.lru_cache(maxsize=8)
def _lake(uri: str) -> Lake:
    return open_lake(uri)


class UfoTask(luigi.task.MixinNaiveBulkComplete, luigi.Task):
    """Base of the pipeline's tasks: the run date(s), the settings and the lake.

    Range tools (``RangeDaily``) ask each date's task whether it is complete (the naive bulk
    check, or a task's own ``bulk_complete``).
    """

    date = RunDateParameter(
        description="Run date: the snapshot covers reports posted on or before it (default: "
        "yesterday). A batch of dates is comma-separated.",
    )

    # Neither is part of the task's identity (a forced task is the same task), and luigid shows
    # neither (HIDDEN: still sent to the scheduler, so a worker that takes the task over gets
    # them, but left out of its display name and the parameters its UI and API show).
    force = luigi.BoolParameter(
        default=False,
        significant=False,
        visibility=luigi.parameter.ParameterVisibility.HIDDEN,
        description="Run even if the output exists; the new output replaces it atomically.",
    )
    force_upstream = luigi.BoolParameter(
        default=False,
        significant=False,
        visibility=luigi.parameter.ParameterVisibility.HIDDEN,
        description="Like --force, for this task and every task upstream of it.",
    )
    force_from = luigi.ChoiceParameter(
        default="",
        choices=("", *CHAIN),
        var_type=str,
        significant=False,
        visibility=luigi.parameter.ParameterVisibility.HIDDEN,
        description="Run again from this task of the chain on: it and every task after it up "
        "to this one (e.g. AggregateUFOsByState: the Spark step, the ranking and the load), "
        "each replacing its outputs; the tasks before it are used as they are.",
    )

    # An operational record, not part of the task's identity: TopTenStates checks the snapshot.
    accept_checks = luigi.Parameter(
        default="",
        significant=False,
        visibility=luigi.parameter.ParameterVisibility.HIDDEN,
        description='Publish a snapshot its checks would hold: "WHO: WHY", recorded with it.',
    )

    #: Dates per batch in a backfill (a Spark run covers them all; a failure fails them all).
    max_batch_size = MAX_BATCH_DATES

    @classmethod
    def get_params(cls) -> list[tuple[str, luigi.Parameter]]:
        """Luigi's list of the task's parameters, worked out once per class: Luigi looks through
        ``dir(cls)`` each time, several times for every task made (a ten-year backfill makes
        14,609 tasks: 110,000 calls, 7.6 s of its run under a profiler)."""
        found = cls.__dict__.get("_parameters")
        if found is None:
            found = tuple(super().get_params())
            cls._parameters = found
        return list(found)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # A forced task notes when its outputs were written the first time Luigi asks whether it
        # is complete (before it runs), and is complete once they have all been written again.
        # Nothing is deleted up front: only the worker that runs the task replaces its outputs.
        self._forced_baseline: list[float | None] | None = None
        # progress(): [started, when last said, every how many seconds, whether said]
        self._progress: list | None = None

    def link_console(self) -> None:
        """Point luigid's page of this running task at its run date(s) in the console
        (UFO_CONSOLE_URL), where its requests, logs and fixes are."""
        console = self.settings.console_url
        if not console or not callable(getattr(self, "set_tracking_url", None)):
            return  # no console, or not run by a Luigi worker (which sets set_tracking_url)
        console, days = console.rstrip("/"), self.dates
        if len(days) == 1:
            self.set_tracking_url(f"{console}/dates/{days[0]}")
        else:
            self.set_tracking_url(f"{console}/?from={days[0]}&to={days[-1]}&all_loaded=0")

    def to_str_params(self, only_significant: bool = False, only_public: bool = False) -> dict:
        # What the worker sends luigid. Luigi creates a batch task in luigid without the
        # parameters' visibilities, so luigid would show its hidden ones: leave ``force``,
        # ``force_upstream``, ``force_from`` and ``accept_checks`` out while they are off (their default, what a
        # task is rebuilt with).
        params = super().to_str_params(only_significant, only_public)
        for name in ("force", "force_upstream", "force_from", "accept_checks"):
            if not getattr(self, name):
                params.pop(name, None)
        return params

    @property
    def dates(self) -> tuple[dt.date, ...]:
        """The run dates of this task: one, or a batch."""
        return tuple(self.date) if isinstance(self.date, RunDates) else (self.date,)

    def complete(self) -> bool:
        try:
            return self._complete()
        except UfoError as err:
            # Luigi logs a traceback for errors in complete() but no reason: say what to fix.
            report_failure(self, err)
            raise

    @property
    def forced(self) -> bool:
        """Whether this task runs again even if done: ``--force``, ``--force-upstream``, or a
        ``--force-from`` task at or before it in the chain."""
        if self.force or self.force_upstream:
            return True
        name = type(self).__name__
        return bool(self.force_from) and name in CHAIN and (
            CHAIN.index(name) >= CHAIN.index(self.force_from)
        )  # fmt: skip

    def _complete(self) -> bool:
        if not self.forced:
            return super().complete()
        outputs = luigi.task.flatten(self.output())
        if self._forced_baseline is None:
            self._forced_baseline = [t.modified_at() if t.exists() else None for t in outputs]
            return False
        return all(
            t.exists() and (before is None or t.modified_at() > before)
            for t, before in zip(outputs, self._forced_baseline)
        )

    def upstream(self, cls: type[UfoTask]) -> UfoTask:
        """The task ``cls`` for the same run date(s), forced when this one is forced upstream
        (or ``cls`` comes at or after the ``force_from`` task)."""
        return cls(
            date=self.date, force=self.force_upstream, force_upstream=self.force_upstream,
            force_from=self.force_from, accept_checks=self.accept_checks,
        )  # fmt: skip

    # Read at use, not cached on the task: Luigi reuses task instances within a process, and a
    # long-running worker must see the environment of each run.
    @property
    def settings(self) -> Settings:
        return load_settings()

    @property
    def lake(self) -> Lake:
        return _lake(self.settings.storage)

    def per_date(self, target: Callable[[Lake, dt.date], T]) -> dict[dt.date, T]:
        """``target`` of the lake for each run date: the lake found once, not once a date (a
        ten-year batch is 3,652 dates, and Luigi asks for the outputs again and again)."""
        lake = self.lake
        return {day: target(lake, day) for day in self.dates}

    @property
    def manifests(self) -> Manifests:
        return Manifests(self.lake)

    def tidy(self, superseded) -> None:
        """Remove attempts no manifest names any more, and stale ones of interrupted runs."""
        removed = self.manifests.retire(superseded)
        removed += self.manifests.sweep(self.settings.stale_attempts)
        if removed:
            logger.info("removed %d unused attempt(s) from the lake", len(removed))

    def progress(self, done: int, started: float, what: str) -> None:
        """How far a batch's dates are (``done`` of them, since ``started``): one line at most
        every UFO_PROGRESS_SECONDS, and the last date's once any was said."""
        total = len(self.dates)
        if total <= 1:
            return
        now = time.monotonic()
        if self._progress is None or self._progress[0] != started:
            self._progress = [started, started, self.settings.progress_seconds, False]
        _, said_at, every, said = self._progress
        if now - said_at < every and not (done == total and said):
            return
        elapsed = now - started
        left = elapsed / done * (total - done) if done else 0
        logger.info(
            "%s %d of %d dates, %.1f s so far, about %.0f s left", what, done, total, elapsed, left,
        )  # fmt: skip
        self._progress[1:] = [now, every, True]
