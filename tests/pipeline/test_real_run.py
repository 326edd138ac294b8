"""The whole chain on the real 2019 NUFORC file, checked against an independent computation."""

from __future__ import annotations

import csv
import json
from collections import Counter

import pytest
import sqlalchemy as sa

from tests.lakefiles import aggregate_counts, reject_rows

pytestmark = [pytest.mark.integration, pytest.mark.spark, pytest.mark.shared_data]


def _manifest(run) -> dict:
    return json.loads((run.storage / "aggregated/date=2019-03-29/_MANIFEST.json").read_text())


def _files(run, kind: str) -> list:
    return [run.storage / rel for rel in _manifest(run)["files"][kind]]


def _rows(url: str, sql: str, **params) -> list[tuple]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(sa.text(sql), params)]
    engine.dispose()
    return rows


def test_quality_report_matches_and_adds_up(real_run, real_expected):
    [report_file] = _files(real_run, "report")
    report = json.loads(report_file.read_text())
    assert _manifest(real_run)["quality"] == report
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
    [reject_file] = _files(real_run, "rejects")
    header, rows = reject_rows(reject_file.read_text(encoding="utf-8"))
    assert header == [
        "Date / Time",
        "City",
        "State",
        "Shape",
        "Duration",
        "Summary",
        "Posted",
        "_record",
        "reason",
    ]
    got = Counter(rows)
    expected = Counter((row, reason) for row, reason in real_expected.rejects)
    assert got == expected


def test_the_aggregate_counts_every_valid_report(real_run, real_expected):
    [aggregate_file] = _files(real_run, "aggregated")
    assert aggregate_file.suffix == ".parquet"
    got = aggregate_counts([aggregate_file.read_bytes()])
    assert dict(got) == dict(real_expected.by_month_state)


def test_the_run_is_recorded(real_run, real_expected):
    [(source, valid, finished, layout)] = _rows(
        real_run.database_url, "SELECT source, valid, finished_at, layout FROM ufo_runs WHERE run_date = :d",
        d=real_run.run_date,
    )  # fmt: skip
    assert source == str(real_run.source)
    assert layout == "index"
    assert valid == real_expected.quality()["valid"]
    assert finished is not None


def test_raw_zone_holds_the_source_in_utf8_and_every_record(real_run):
    import pyarrow.parquet as pq

    raw = json.loads((real_run.storage / "raw/date=2019-03-29/_MANIFEST.json").read_text())
    [copy] = raw["files"]["source"]
    assert (real_run.storage / copy).read_bytes() == real_run.source.read_bytes()  # UTF-8 already
    [records] = raw["files"]["records"]
    parquet = pq.ParquetFile(real_run.storage / records)
    assert parquet.metadata.num_rows == raw["records"] == 119727
    assert parquet.metadata.num_row_groups > 1  # Spark splits it across cores
    with open(real_run.source, encoding="utf-8", newline="") as handle:
        expected = list(csv.reader(handle))[1:]
    got = parquet.read().to_pylist()
    assert [list(r.values())[:-1] for r in got] == expected
    assert {r["_record"] for r in got} == {""}  # every record has its header's seven fields
    assert raw["ragged"] == 0


def test_every_attempt_left_in_the_lake_is_published(real_run):
    attempts = sorted(p.name for p in (real_run.storage / "_attempts").iterdir())
    manifests = {_manifest(real_run)["attempt"]}
    manifests.add(
        json.loads((real_run.storage / "raw/date=2019-03-29/_MANIFEST.json").read_text())["attempt"]
    )
    assert sorted(manifests) == attempts  # no attempt left behind that nothing names
