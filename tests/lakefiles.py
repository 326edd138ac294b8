"""The lake's published aggregate as tests read it: pyarrow directly, not the pipeline's readers."""

from __future__ import annotations

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
