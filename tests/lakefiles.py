"""The lake's files as tests read them: pyarrow and the csv module directly, not the pipeline's
readers."""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable

import pyarrow.parquet as pq

AGGREGATE_COLUMNS = ["month", "state", "sightings"]


def aggregate_counts(parts: Iterable[bytes]) -> Counter:
    """(month, state) -> sightings, summed over an aggregate's Parquet part files."""
    counts: Counter = Counter()
    for data in parts:
        table = pq.read_table(io.BytesIO(data))
        assert table.column_names == AGGREGATE_COLUMNS, table.column_names
        for month, state, n in zip(*(table[c].to_pylist() for c in AGGREGATE_COLUMNS)):
            counts[(month, state)] += n
    return counts


def reject_rows(text: str) -> tuple[list[str], list[tuple[tuple[str, ...], str]]]:
    """A reject CSV of the lake: its header, and each row as the reference lists rejects:
    ``(fields, reason)``, the fields of a ``columns`` reject being its whole record as it came."""
    rows = list(csv.reader(io.StringIO(text, newline="")))
    header, found = rows[0], []
    assert header[-2:] == ["_record", "reason"], header
    for *fields, record, reason in rows[1:]:
        if reason == "columns":
            found.append((tuple(next(csv.reader(io.StringIO(record, newline="")))), reason))
        else:
            assert record == "", record
            found.append((tuple(fields), reason))
    return header, found
