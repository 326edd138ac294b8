"""Ranking the top ten states from the (month, state) aggregate."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from etl.errors import DataError
from etl.pipeline import ranking


def test_ties_are_broken_by_state_code_and_only_ten_are_kept():
    aggregate = [
        ("2019-01", s, n) for s, n in zip("ABCDEFGHIJKL", [5, 7, 7, 1, 2, 3, 4, 5, 6, 9, 9, 1])
    ]
    rows = ranking.rows(
        ranking.top_states(ranking.counts_by_period(ranking.aggregate_table(aggregate)))
    )
    all_time = [(r, s, n) for p, r, s, n in rows if p == "all"]
    assert all_time == [
        (1, "J", 9), (2, "K", 9), (3, "B", 7), (4, "C", 7), (5, "I", 6),
        (6, "A", 5), (7, "H", 5), (8, "G", 4), (9, "F", 3), (10, "E", 2),
    ]  # fmt: skip


def test_all_time_sums_the_months_and_each_month_is_ranked():
    aggregate = [
        ("2019-01", "CA", 3),
        ("2019-02", "CA", 1),
        ("2019-02", "NY", 2),
        ("2018-12", "TX", 1),
    ]
    rows = ranking.rows(
        ranking.top_states(ranking.counts_by_period(ranking.aggregate_table(aggregate)))
    )
    assert rows == [
        ("all", 1, "CA", 4), ("all", 2, "NY", 2), ("all", 3, "TX", 1),
        ("2018-12", 1, "TX", 1),
        ("2019-01", 1, "CA", 3),
        ("2019-02", 1, "NY", 2), ("2019-02", 2, "CA", 1),
    ]  # fmt: skip


def test_an_empty_aggregate_fails_with_a_reason():
    with pytest.raises(DataError, match="no valid sightings"):
        ranking.top_states(ranking.counts_by_period(ranking.aggregate_table([])))


def test_counts_by_period_are_every_state_per_month_and_for_all_time():
    aggregate = [("2019-01", "CA", 3), ("2019-02", "NY", 2), ("2019-02", "CA", 1)]
    counts = ranking.rows(ranking.counts_by_period(ranking.aggregate_table(aggregate)))
    expected = {("all", "CA", 4), ("all", "NY", 2), *aggregate}
    assert sorted(counts) == sorted(expected) and len(counts) == len(expected)


def test_more_than_ten_states_in_many_months_are_ranked_like_sorted():
    """Against Python's sort over every period: the run boundaries of the vectorised ranking."""
    states = [f"S{i:02d}" for i in range(25)]
    aggregate = [
        (f"20{y:02d}-{m:02d}", s, (y * 7 + m * 13 + i * 31) % 17 + 1)
        for y in range(10, 14) for m in range(1, 13) for i, s in enumerate(states) if (i + m) % 3
    ]  # fmt: skip
    periods: dict[str, dict[str, int]] = {}
    for month, state, n in aggregate:
        for period in (month, "all"):
            periods.setdefault(period, {}).setdefault(state, 0)
            periods[period][state] += n
    expected = [
        (period, rank, state, n)
        for period in ["all", *sorted(p for p in periods if p != "all")]
        for rank, (state, n) in enumerate(
            sorted(periods[period].items(), key=lambda kv: (-kv[1], kv[0]))[:10], start=1
        )
    ]
    table = ranking.top_states(ranking.counts_by_period(ranking.aggregate_table(aggregate)))
    assert ranking.rows(table) == expected


def test_csv_round_trip_and_schema_checks():
    top = ranking.top_states(
        ranking.counts_by_period(ranking.aggregate_table([("2019-01", "CA", 4)]))
    )
    text = ranking.write_csv(top)
    assert text.decode().splitlines() == [
        "period,rank,state,sightings",
        "all,1,CA,4",
        "2019-01,1,CA,4",
    ]
    assert ranking.rows(ranking.read_top(text)) == [("all", 1, "CA", 4), ("2019-01", 1, "CA", 4)]
    with pytest.raises(DataError, match="expected"):
        ranking.read_top(b"period,rank,state\nall,1,CA\n")
    with pytest.raises(DataError, match="cannot be read"):
        ranking.read_top(b"period,rank,state,sightings\nall,first,CA,4\n")


def _parquet(table: pa.Table) -> bytes:
    out = io.BytesIO()
    pq.write_table(table, out)
    return out.getvalue()


def test_the_aggregate_is_read_from_parquet_parts_and_its_columns_checked():
    parts = [
        _parquet(pa.table({"month": ["2019-01"], "state": ["CA"], "sightings": [3]})),
        _parquet(
            pa.table(
                {"month": ["2019-02"], "state": ["NY"], "sightings": pa.array([2], pa.int32())}
            )
        ),
    ]
    assert ranking.rows(ranking.read_aggregate(parts)) == [
        ("2019-01", "CA", 3),
        ("2019-02", "NY", 2),
    ]
    assert ranking.read_aggregate([]).num_rows == 0
    with pytest.raises(DataError, match="expected"):
        ranking.read_aggregate([_parquet(pa.table({"month": ["2019-01"], "state": ["CA"]}))])
    with pytest.raises(DataError, match="not Parquet"):
        ranking.read_aggregate([b"month,state,sightings\n2019-01,CA,3\n"])
