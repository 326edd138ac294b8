"""TopStatesToDatabase: each run date's results loaded into PostgreSQL in one transaction."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import islice

import luigi

from etl.adapters import database
from etl.errors import DataError
from etl.pipeline.aggregate import AggregateUFOsByState
from etl.pipeline.base import UfoTask
from etl.pipeline.rejects import RejectReader
from etl.pipeline.reporting import span
from etl.pipeline.targets import AggregateTarget, TopTenTarget
from etl.pipeline.topten import TopTenStates
from etl.settings import load_settings

logger = logging.getLogger("ufo")


class Latest:
    """The last value made from each kind of input, for the next caller with the same input:
    a backfill's consecutive dates mostly hold the same snapshot. Safe across threads."""

    def __init__(self):
        self._last: dict[str, tuple[object, object]] = {}
        self._lock = threading.Lock()

    def get(self, kind: str, key, make: Callable[[], object]):
        with self._lock:
            found = self._last.get(kind)
        if found is not None and found[0] == key:
            return found[1]
        value = make()
        with self._lock:
            self._last[kind] = (key, value)
        return value


#: Dates whose files are read ahead of the date being loaded, by as many threads.
READ_AHEAD = 4


def load_in_order(
    loader: database.Loader,
    days: Iterable[dt.date],
    results: Callable[[dt.date], database.RunResults],
    loaded: Callable[[int], None] = lambda done: None,
) -> None:
    """Load ``days`` in their order, one at a time, each in its own transaction; ``loaded`` is
    told how many are done after each.

    One writer: loads take turns under the database's load lock anyway, and writers waiting on
    each other made a ten-year backfill's loads slower with each one added (28.8 s with one,
    36.6 s with two, 44 s with three, on 2 cores). ``READ_AHEAD`` threads read the next dates'
    files meanwhile, which on S3 are a request each. Only the last date's commit waits for
    the disk (``Loader.load``'s ``durable``). A date that fails stops the load: the dates
    before it stay loaded, the ones after it are not started.
    """
    ahead: deque[Future] = deque()
    todo = iter(days)
    with ThreadPoolExecutor(READ_AHEAD) as pool:
        try:
            ahead.extend(pool.submit(results, day) for day in islice(todo, READ_AHEAD))
            done = 0
            while ahead:
                found = ahead.popleft().result()
                following = next(todo, None)
                if following is not None:
                    ahead.append(pool.submit(results, following))
                loader.load(found, durable=not ahead)  # the last one waits for the disk
                done += 1
                loaded(done)
        except BaseException:
            for future in ahead:
                future.cancel()
            raise


class TopStatesToDatabase(UfoTask):
    """The run date's top tens, state counts, quality figures and sample rejects in PostgreSQL.

    Up to ``UFO_REJECT_ROWS`` rejected rows per reason go into ``reject_samples``; the lake's
    ``aggregated/date=D/_MANIFEST.json`` lists the files of every one of them.
    """

    def requires(self) -> dict[str, luigi.Task]:
        return {
            "top": self.upstream(TopTenStates),
            "aggregate": self.upstream(AggregateUFOsByState),
        }

    def output(self) -> dict[dt.date, database.RunLoadedTarget]:
        url = self.settings.require_database_url()
        return {day: database.RunLoadedTarget(url, day) for day in self.dates}

    def _complete(self) -> bool:
        if self.forced:
            return super()._complete()
        # One query for a batch's dates, not one per date; a single date's answer is read with
        # its neighbours', which Luigi asks next.
        url = self.settings.require_database_url()
        if len(self.dates) == 1:
            return database.loaded_recently(url, self.dates[0])
        return set(self.dates) <= database.loaded_dates(url, self.dates)

    @classmethod
    def bulk_complete(cls, parameter_tuples):
        """The run dates among ``parameter_tuples`` already loaded: one query for them all."""
        dates = list(parameter_tuples)
        loaded = database.loaded_dates(load_settings().require_database_url(), dates)
        return [d for d in dates if d in loaded]

    def run(self) -> None:
        self.link_console()
        settings = self.settings
        url = settings.require_database_url()
        inputs = self.input()
        rejects = RejectReader(self.lake)
        shared = Latest()
        started = time.monotonic()

        def results(day: dt.date) -> database.RunResults:
            return self.results(
                day, inputs["aggregate"][day], inputs["top"][day], rejects, settings.reject_rows,
                shared,
            )  # fmt: skip

        def loaded(done: int) -> None:
            self.progress(done, started, f"TopStatesToDatabase {span(self.dates)}: loaded")

        with database.Loader(url) as loader:
            load_in_order(loader, self.dates, results, loaded)
        logger.info(
            "TopStatesToDatabase %s: %d date(s) loaded into %s in %.1f s",
            span(self.dates), len(self.dates), database.safe_url(url), time.monotonic() - started,
        )  # fmt: skip

    @staticmethod
    def results(
        day: dt.date,
        aggregate: AggregateTarget,
        top: TopTenTarget,
        rejects: RejectReader,
        limit: int,
        shared: Latest | None = None,
    ) -> database.RunResults:
        """What is loaded for ``day``: its aggregate's manifest, its top ten and counts, and the
        first ``limit`` rejected rows of each reason. Dates whose files are the same as the
        last ones ``shared`` saw get the same objects (read and drawn once; the loader then
        encodes them once too)."""
        shared = shared or Latest()
        manifest = aggregate.manifest()
        quality = manifest["quality"]
        files = top.read()
        top_ten = shared.get("top", files, lambda: top.parse(*files))
        reject_files = tuple(manifest["files"].get("rejects", []))
        by_reason = quality["rejected_by_reason"]
        try:
            sample = shared.get(
                "rejects",
                (reject_files, limit, sorted(by_reason.items())),
                lambda: tuple(rejects.sample(reject_files, limit, by_reason)),
            )
        except DataError as err:
            raise DataError(f"run date {day}: {err}") from None
        return database.RunResults(
            run_date=day,
            source=manifest.get("source", ""),
            layout=manifest.get("layout"),
            quality=quality,
            top=top_ten.top,
            counts=top_ten.counts,
            rejects=sample,
            checks=top.checks(),
        )
