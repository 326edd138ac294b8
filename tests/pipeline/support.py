"""Helpers of the pipeline's tests: the rejected rows a load stored, checked against the reference;
aggregates written by hand (no Spark)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import Counter

import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa

from etl.adapters.lake import Lake
from etl.adapters.manifests import Manifests


def stored_rejects(url: str, day) -> list[tuple[str, int, dict]]:
    """(reason, row_number, fields) of a run date, in row order."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT reason, row_number, fields FROM reject_samples WHERE run_date = :d "
                "ORDER BY row_number"
            ),
            {"d": day},
        ).all()
    engine.dispose()
    return [tuple(r) for r in rows]


def check_against_reference(stored, expected, limit: int, columns: list[str]) -> None:
    """Per reason the first ``limit`` rows (all when fewer), each one of the reference's rejects."""
    by_reason = Counter(reason for _, reason in expected.rejects)
    assert Counter(r for r, _, _ in stored) == {r: min(limit, n) for r, n in by_reason.items()}
    for reason, _, fields in stored:  # the source's own order; a ``columns`` reject's record
        assert list(fields) == columns + (["_record"] if reason == "columns" else [])
    got = Counter(
        (tuple(next(csv.reader(io.StringIO(fields["_record"], newline="")))), reason)
        if reason == "columns"
        else (tuple(fields[c] for c in columns), reason)
        for reason, _, fields in stored
    )
    assert not got - Counter(expected.rejects)  # every stored row is a reject, once
    for reason, n in by_reason.items():
        if n <= limit:  # not capped: exactly the reference's rows of that reason
            mine = Counter(k for k in got.elements() if k[1] == reason)
            assert mine == Counter(k for k in expected.rejects if k[1] == reason), reason


def quality(valid: int, rejected: int = 0, input_: int | None = None) -> dict:
    by_reason = {"columns": 0, "posted": 0, "sighting_date": 0, "state": rejected}
    return {"input": input_ if input_ is not None else valid + rejected, "header_repeat": 0,
            "duplicate": 0, "after_run_date": 0, "valid": valid, "rejected": rejected,
            "rejected_by_reason": by_reason}  # fmt: skip


def put_aggregate(lake: Lake, day: dt.date, valid: int, rejected: int = 0,
                  layout: str = "index", input_: int | None = None) -> None:  # fmt: skip
    """An aggregate manifest for ``day`` as AggregateUFOsByState publishes it: ``valid``
    sightings spread over CA and WA in 2019-01."""
    manifests = Manifests(lake)
    attempt = manifests.new_attempt("aggregated", [day])
    table = pa.table({"month": ["2019-01", "2019-01"], "state": ["CA", "WA"],
                      "sightings": pa.array([valid - valid // 3, valid // 3], pa.int64())})  # fmt: skip
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    part = f"{attempt}/aggregated/date={day}/part-0.parquet"
    lake.write_bytes(part, buffer.getvalue())
    files = {"aggregated": [part], "rejects": [], "report": []}
    manifests.publish("aggregated", day, attempt, files, quality=quality(valid, rejected, input_),
                      layout=layout, source="test", raw_attempt="none")  # fmt: skip
