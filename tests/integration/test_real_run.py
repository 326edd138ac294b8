"""The whole chain on the real 2019 NUFORC file, checked against an independent computation."""

from __future__ import annotations

import csv
import json
from collections import Counter

import pytest
import sqlalchemy as sa

pytestmark = [pytest.mark.integration, pytest.mark.spark, pytest.mark.shared_data]


def _rows(url: str, sql: str, **params) -> list[tuple]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(sa.text(sql), params)]
    engine.dispose()
    return rows


def test_quality_report_matches_and_adds_up(real_run, real_expected):
    report = json.loads((real_run.storage / "reports/date=2019-03-29/quality.json").read_text())
    expected = real_expected.quality()
    assert {k: report[k] for k in expected} == expected
    parts = ("header_repeat", "duplicate", "after_run_date", "valid", "rejected")
    assert report["input"] == sum(report[p] for p in parts)
    # The figures SOURCE.md gives for this file.
    assert (report["input"], report["header_repeat"], report["duplicate"]) == (119727, 930, 33)


def test_top_ten_for_all_time_matches(real_run, real_expected):
    got = _rows(
        real_run.database_url,
        "SELECT rank, state, sightings FROM top_states WHERE run_date = :d AND period = 'all' ORDER BY rank",
        d=real_run.run_date,
    )
    expected = [(i, s, n) for i, (s, n) in enumerate(real_expected.top_ten(), start=1)]
    assert got == expected


def test_top_ten_for_every_month_matches(real_run, real_expected):
    got: dict[str, list] = {}
    for period, rank, state, n in _rows(
        real_run.database_url,
        "SELECT period, rank, state, sightings FROM top_states WHERE run_date = :d AND period <> 'all' "
        "ORDER BY period, rank",
        d=real_run.run_date,
    ):
        got.setdefault(period, []).append((rank, state, n))
    months = real_expected.months()
    assert sorted(got) == months
    for month in months:
        expected = [(i, s, n) for i, (s, n) in enumerate(real_expected.top_ten(month), start=1)]
        assert got[month] == expected, month


def test_every_state_count_is_loaded(real_run, real_expected):
    got = dict(
        _rows(
            real_run.database_url,
            "SELECT state, sightings FROM state_sightings WHERE run_date = :d AND period = 'all'",
            d=real_run.run_date,
        )
    )
    assert got == dict(real_expected.totals())


def test_rejects_hold_every_rejected_row_with_its_reason(real_run, real_expected):
    files = sorted((real_run.storage / "rejects/date=2019-03-29").glob("part-*.csv"))
    with open(files[0], encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == [
        "Date / Time",
        "City",
        "State",
        "Shape",
        "Duration",
        "Summary",
        "Posted",
        "reason",
    ]
    got = Counter((tuple(r[:7]), r[7]) for r in rows[1:])
    expected = Counter((row, reason) for row, reason in real_expected.rejects)
    assert got == expected


def test_the_aggregate_counts_every_valid_report(real_run, real_expected):
    files = sorted((real_run.storage / "aggregated/date=2019-03-29").glob("part-*.csv"))
    with open(files[0], encoding="utf-8") as handle:
        got = {(r["month"], r["state"]): int(r["sightings"]) for r in csv.DictReader(handle)}
    assert got == dict(real_expected.by_month_state)
    assert (real_run.storage / "aggregated/date=2019-03-29/_SUCCESS").exists()


def test_the_run_is_recorded(real_run, real_expected):
    [(source, valid, finished)] = _rows(
        real_run.database_url, "SELECT source, valid, finished_at FROM ufo_runs WHERE run_date = :d",
        d=real_run.run_date,
    )  # fmt: skip
    assert source == str(real_run.source)
    assert valid == real_expected.quality()["valid"]
    assert finished is not None


def test_raw_copy_is_the_source_in_utf8(real_run):
    raw = real_run.storage / "raw/date=2019-03-29/nuforc_reports.csv"
    assert raw.read_bytes() == real_run.source.read_bytes()  # already UTF-8: copied unchanged
