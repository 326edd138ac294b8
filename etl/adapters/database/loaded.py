"""What the database says was loaded: the run dates of ``ufo_runs`` and their figures (reads only).

Two reads, so that a page of run dates costs the same with ten years loaded: when each date of
a range was loaded (one small row per date), then the figures of the dates of one page only.

Whether a date is loaded is asked by Luigi for every date of a backfill, several times
(``TopStatesToDatabase.complete``): a single date's answer comes from the loaded dates around
it, read in one query and kept ``FRESH_SECONDS`` (``loaded_recently``), and forgotten as soon
as this process loads anything into that database. ``RunLoadedTarget`` asks each time.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

import luigi
import sqlalchemy as sa

from etl.adapters.database.connection import (
    connect_error,
    drop_reader,
    normalise_url,
    reader,
    safe_url,
)
from etl.adapters.database.loader import LOADED
from etl.adapters.database.schema import ufo_runs


@dataclass(frozen=True)
class LoadedRun:
    """A loaded run date as ``ufo_runs`` records it: its source, layout, rows and when."""

    run_date: dt.date
    finished_at: dt.datetime
    source: str
    layout: str | None
    valid: int
    rejected: int


def loaded_times(
    url: str, start: dt.date | None = None, end: dt.date | None = None
) -> dict[dt.date, dt.datetime]:
    """When each run date between ``start`` and ``end`` (inclusive; None: unbounded) was loaded."""
    query = sa.select(ufo_runs.c.run_date, ufo_runs.c.finished_at)
    if start is not None:
        query = query.where(ufo_runs.c.run_date >= start)
    if end is not None:
        query = query.where(ufo_runs.c.run_date <= end)
    return dict(_read(url, query))


def loaded_runs(url: str, dates: Iterable[dt.date]) -> dict[dt.date, LoadedRun]:
    """The ``ufo_runs`` records of those of ``dates`` that are loaded."""
    wanted = list(dates)
    if not wanted:
        return {}
    columns = [ufo_runs.c[name] for name in LoadedRun.__dataclass_fields__]
    rows = _read(url, sa.select(*columns).where(ufo_runs.c.run_date.in_(wanted)))
    return {row.run_date: LoadedRun(**row._mapping) for row in rows}


UNDEFINED_TABLE = "42P01"  # PostgreSQL's error code for a table that does not exist


def _read(url: str, query) -> list:
    """The rows of ``query``; none when the database has no ``ufo_runs`` yet (nothing loaded)."""
    try:
        with reader(url).connect() as conn:
            try:
                return list(conn.execute(query))
            except sa.exc.ProgrammingError as err:
                if getattr(err.orig, "pgcode", None) == UNDEFINED_TABLE:
                    return []
                raise
    except sa.exc.OperationalError as err:
        drop_reader(url)
        raise connect_error(url, err) from err


def loaded_dates(url: str, dates: Iterable[dt.date]) -> set[dt.date]:
    """Which of ``dates`` have been loaded completely: one query for them all."""
    wanted = list(dates)
    query = sa.select(ufo_runs.c.run_date).where(ufo_runs.c.run_date.in_(wanted))
    return {row.run_date for row in _read(url, query)}


def run_loaded(url: str, run_date: dt.date) -> bool:
    """Whether ``run_date`` has been loaded completely."""
    return run_date in loaded_dates(url, [run_date])


#: How long the loaded dates read around a date answer for its neighbours, and how far around.
FRESH_SECONDS = 2.0
AROUND = dt.timedelta(days=4000)

_AHEAD: dict[tuple[int, str], tuple[float, dt.date, dt.date, frozenset[dt.date]]] = {}
_AHEAD_LOCK = threading.Lock()


def loaded_recently(url: str, run_date: dt.date) -> bool:
    """Whether ``run_date`` is loaded, as the database said at most ``FRESH_SECONDS`` ago.

    Luigi asks each date of a ten-year backfill whether it is complete, three times over: one
    query for the dates around it answers the next ones too (11,000 queries were 14 s of the
    backfill under a profiler). A load in this process forgets the answers; a load by another
    process is seen within ``FRESH_SECONDS``, as if it had finished that much later.
    """
    key = (os.getpid(), normalise_url(url))
    with _AHEAD_LOCK:
        found = _AHEAD.get(key)
    if found is not None:
        read_at, first, last, loaded = found
        if time.monotonic() - read_at < FRESH_SECONDS and first <= run_date <= last:
            return run_date in loaded
    first, last = run_date - AROUND, run_date + AROUND
    read_at = time.monotonic()
    loaded = frozenset(loaded_times(url, first, last))
    with _AHEAD_LOCK:
        _AHEAD[key] = (read_at, first, last, loaded)
    return run_date in loaded


def forget_loaded(url: str) -> None:
    """Drop what ``loaded_recently`` read of ``url``: this process has just loaded into it."""
    with _AHEAD_LOCK:
        _AHEAD.pop((os.getpid(), normalise_url(url)), None)


LOADED.append(forget_loaded)


class RunLoadedTarget(luigi.Target):
    """Exists when a run date's results are in the database (its ``ufo_runs`` row)."""

    def __init__(self, url: str, run_date: dt.date):
        self.url = url
        self.run_date = run_date

    def exists(self) -> bool:
        return run_loaded(self.url, self.run_date)

    def modified_at(self) -> float:
        """When the run date was last loaded (the database's clock)."""
        query = sa.select(ufo_runs.c.finished_at).where(ufo_runs.c.run_date == self.run_date)
        found = _read(self.url, query)
        if not found:
            raise LookupError(f"{self.run_date} is not loaded into {safe_url(self.url)}")
        return found[0].finished_at.timestamp()

    def __repr__(self) -> str:
        return f"RunLoadedTarget({safe_url(self.url)}, {self.run_date})"
