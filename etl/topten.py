"""Top ten states from the (month, state) aggregate: small data, plain Python, no Spark."""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterable
from typing import IO

from etl.errors import DataError

ALL_TIME = "all"
TOP_N = 10
AGGREGATE_COLUMNS = ["month", "state", "sightings"]
TOP_COLUMNS = ["period", "rank", "state", "sightings"]


def read_aggregate(handles: Iterable[IO[str]]) -> list[tuple[str, str, int]]:
    """(month, state, sightings) rows of the aggregate's CSV part files."""
    rows: list[tuple[str, str, int]] = []
    for handle in handles:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header != AGGREGATE_COLUMNS:
            raise DataError(
                f"The aggregate has columns {header}, expected {AGGREGATE_COLUMNS}: "
                "re-run AggregateUFOsByState for this date with --force."
            )
        rows.extend((month, state, int(sightings)) for month, state, sightings in reader)
    return rows


def counts_by_period(aggregate: Iterable[tuple[str, str, int]]) -> dict[str, Counter]:
    """Sightings per state for all time and for each month."""
    all_time = Counter()
    periods: dict[str, Counter] = {ALL_TIME: all_time}
    for month, state, sightings in aggregate:
        all_time[state] += sightings
        by_state = periods.get(month)
        if by_state is None:
            by_state = periods[month] = Counter()
        by_state[state] += sightings
    return periods


def rank(counts: Counter, n: int = TOP_N) -> list[tuple[int, str, int]]:
    """(rank, state, sightings): by sightings descending, ties by state code ascending."""
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [(i, state, sightings) for i, (state, sightings) in enumerate(ordered[:n], start=1)]


def top_states(periods: dict[str, Counter]) -> list[tuple[str, int, str, int]]:
    """(period, rank, state, sightings) for every period, ``all`` first, then months in order."""
    if not periods.get(ALL_TIME):
        raise DataError(
            "The aggregate holds no valid sightings: see the quality report and the rejects "
            "for why every row was left out."
        )
    order = [ALL_TIME] + sorted(p for p in periods if p != ALL_TIME)
    return [(period, *row) for period in order for row in rank(periods[period])]


def write_rows(out: IO[str], columns: list[str], rows: Iterable[tuple]) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)


def read_top(handle: IO[str]) -> list[tuple[str, int, str, int]]:
    reader = csv.reader(handle)
    header = next(reader, None)
    if header != TOP_COLUMNS:
        raise DataError(f"The top-ten file has columns {header}, expected {TOP_COLUMNS}.")
    return [(period, int(rank), state, int(n)) for period, rank, state, n in reader]
