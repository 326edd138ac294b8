"""Run dates: the ``--date`` of every task, one date or a batch of them (a backfill).

Luigi's scheduler may hand a worker many pending dates of one task as a single batch
(``RangeDaily``): ``date`` is then a ``RunDates`` tuple, merged by ``batch_method``.
"""

from __future__ import annotations

import datetime as dt
import sys

import luigi

from etl.logs import say_at_exit


def yesterday() -> dt.date:
    """The default run date."""
    return dt.date.today() - dt.timedelta(days=1)


#: Run dates in one batch at most (``UfoTask.max_batch_size``): a batch is one Spark run and
#: one transaction per date; a longer backfill is several batches (RangeDaily) or requests.
#: Ten years and more in one: a ten-year backfill in batches of 1,000 started four Spark runs,
#: 73 s against 32 s for one (the 2019 index, 2 cores).
MAX_BATCH_DATES = 4000


class RunDateError(ValueError):
    """A date that is a date, but not one a run can have; the message says why."""


def check_run_date(day: dt.date) -> dt.date:
    """``day``, unless it is after tomorrow (a day of slack for time zones ahead of this one)."""
    if day > dt.date.today() + dt.timedelta(days=1):
        raise RunDateError(
            f"{day} is in the future: a run date's snapshot holds the reports posted on or "
            "before it; give today or an earlier date"
        )
    return day


class RunDates(tuple):
    """Several run dates handled as one batch: distinct and in order."""

    def __new__(cls, dates) -> RunDates:
        return super().__new__(cls, sorted(set(dates)))


def merge_dates(dates) -> dt.date | RunDates:
    merged = RunDates(
        d for value in dates for d in (value if isinstance(value, tuple) else (value,))
    )
    return merged[0] if len(merged) == 1 else merged


class RunDateParameter(luigi.DateParameter):
    """A run date, or a batch of them: comma-separated dates and ``FIRST..LAST`` spans
    (``2019-01-01..2019-12-31,2020-02-29``).

    A batch is written with its consecutive dates as spans, so luigid's UI and Luigi's summary
    show a backfill of a year as ``date=2019-01-01..2019-12-31`` rather than 365 dates.

    The default, yesterday, is worked out each time a task is made, not once at import: a
    worker service that runs for days must not keep the day it started on.
    """

    def __init__(self, **kwargs):
        super().__init__(batch_method=merge_dates, **kwargs)

    @property
    def _default(self):
        return yesterday()

    @_default.setter
    def _default(self, value) -> None:
        pass  # the default is always yesterday

    def parse(self, s: str):
        try:
            if "," in s or ".." in s:
                found = set()
                for part in s.split(","):
                    found.update(self._dates(part.strip(), MAX_BATCH_DATES - len(found)))
                return merge_dates(found)
            return check_run_date(super().parse(s))
        except ValueError as err:
            if sys.argv and sys.argv[0].endswith(("luigi", "luigi/__main__.py")):  # the CLI only
                say_at_exit(
                    f"ufo: error: --date {s!r}: {err}."
                    if isinstance(err, RunDateError)
                    else f"ufo: error: --date {s!r} is not a date: give YYYY-MM-DD, e.g. 2019-03-29."
                )
            raise

    def _dates(self, part: str, room: int) -> list[dt.date]:
        """The dates of ``part`` (a date or a span); ValueError beyond ``room`` more dates."""
        first, span, last = part.partition("..")
        start = super().parse(first.strip())
        days = 1
        if span:
            end = super().parse(last.strip())
            if end < start:
                raise RunDateError(f"{part!r}: the span ends before it starts")
            check_run_date(end)
            days = (end - start).days + 1
        check_run_date(start)
        if days > room:
            raise RunDateError(
                f"a batch holds at most {MAX_BATCH_DATES} run dates: split a longer backfill "
                "into several (RangeDaily does, by max_batch_size; or one request per span)"
            )
        return [start + dt.timedelta(days=n) for n in range(days)]

    def serialize(self, x) -> str:
        if isinstance(x, RunDates):
            spans: list[tuple[dt.date, dt.date]] = []  # (first, last) of consecutive dates
            for day in x:
                if spans and day - spans[-1][1] == dt.timedelta(days=1):
                    spans[-1] = (spans[-1][0], day)
                else:
                    spans.append((day, day))
            return ",".join(
                first.isoformat() if first == last else f"{first}..{last}" for first, last in spans
            )
        return super().serialize(x)

    def next_in_enumeration(self, value):
        """The date after ``value``; none after a batch. Luigi's summary asks, to write
        consecutive tasks as a range, and a backfill of several batches has batches in it."""
        if isinstance(value, RunDates):
            return None
        return super().next_in_enumeration(value)

    def normalize(self, x):
        if isinstance(x, RunDates):
            return x
        return super().normalize(x)
