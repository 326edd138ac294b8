"""What the database says was loaded: the run dates of ``ufo_runs`` and their figures (reads only).

Two reads, so that a page of run dates costs the same with ten years loaded: when each date of
a range was loaded (one small row per date), then the figures of the dates of one page only.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa

from etl.adapters.database.loader import connect_error, drop_reader, reader
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


def _read(url: str, query) -> list:
    """The rows of ``query``; none when the database has no ``ufo_runs`` yet (nothing loaded)."""
    try:
        with reader(url).connect() as conn:
            try:
                return list(conn.execute(query))
            except sa.exc.ProgrammingError as err:
                if getattr(err.orig, "pgcode", None) == "42P01":  # undefined_table
                    return []
                raise
    except sa.exc.OperationalError as err:
        drop_reader(url)
        raise connect_error(url, err) from err
