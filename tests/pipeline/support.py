"""Helpers of the pipeline's tests: the rejected rows a load stored, checked against the reference."""

from __future__ import annotations

import csv
import io
from collections import Counter

import sqlalchemy as sa


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
