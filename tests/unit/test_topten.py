"""Ranking the top ten states from the (month, state) aggregate."""

from __future__ import annotations

import io

import pytest

from etl import topten
from etl.errors import DataError


def test_ties_are_broken_by_state_code_and_only_ten_are_kept():
    aggregate = [
        ("2019-01", s, n) for s, n in zip("ABCDEFGHIJKL", [5, 7, 7, 1, 2, 3, 4, 5, 6, 9, 9, 1])
    ]
    rows = topten.top_states(topten.counts_by_period(aggregate))
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
    rows = topten.top_states(topten.counts_by_period(aggregate))
    assert rows == [
        ("all", 1, "CA", 4), ("all", 2, "NY", 2), ("all", 3, "TX", 1),
        ("2018-12", 1, "TX", 1),
        ("2019-01", 1, "CA", 3),
        ("2019-02", 1, "NY", 2), ("2019-02", 2, "CA", 1),
    ]  # fmt: skip


def test_an_empty_aggregate_fails_with_a_reason():
    with pytest.raises(DataError, match="no valid sightings"):
        topten.top_states(topten.counts_by_period([]))


def test_csv_round_trip_and_schema_checks():
    out = io.StringIO()
    topten.write_rows(out, topten.TOP_COLUMNS, [("all", 1, "CA", 4)])
    assert topten.read_top(io.StringIO(out.getvalue())) == [("all", 1, "CA", 4)]
    with pytest.raises(DataError, match="expected"):
        topten.read_aggregate([io.StringIO("month,state\n2019-01,CA\n")])
    assert topten.read_aggregate([io.StringIO("month,state,sightings\n2019-01,CA,3\n")]) == [
        ("2019-01", "CA", 3)
    ]
