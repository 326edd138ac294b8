"""Top ten states from the (month, state) aggregate, and the files that hold them: Arrow, no Spark.

The aggregate of a run date is Parquet (``month, state, sightings``, one row per month and
state). A year of backfill is millions of such rows, so they are read and ranked as Arrow
columns, never as Python objects one row at a time.
"""

from __future__ import annotations

import io
from collections.abc import Iterable

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from etl.errors import DataError

ALL_TIME = "all"
TOP_N = 10
AGGREGATE_SCHEMA = pa.schema(
    [("month", pa.string()), ("state", pa.string()), ("sightings", pa.int64())]
)
COUNT_SCHEMA = pa.schema(
    [("period", pa.string()), ("state", pa.string()), ("sightings", pa.int64())]
)
TOP_SCHEMA = pa.schema(
    [
        ("period", pa.string()),
        ("rank", pa.int64()),
        ("state", pa.string()),
        ("sightings", pa.int64()),
    ]
)
AGGREGATE_COLUMNS = AGGREGATE_SCHEMA.names
TOP_COLUMNS = TOP_SCHEMA.names


def read_aggregate(parts: Iterable[bytes]) -> pa.Table:
    """The ``month, state, sightings`` rows of an aggregate's Parquet part files."""
    tables = []
    for data in parts:
        try:
            table = pq.read_table(pa.BufferReader(data))
        except pa.ArrowInvalid as err:
            raise DataError(
                f"An aggregate part is not Parquet ({err}): re-run AggregateUFOsByState for "
                "this date with --force."
            ) from None
        if table.column_names != AGGREGATE_COLUMNS:
            raise DataError(
                f"The aggregate has columns {table.column_names}, expected {AGGREGATE_COLUMNS}: "
                "re-run AggregateUFOsByState for this date with --force."
            )
        tables.append(table.cast(AGGREGATE_SCHEMA))
    return pa.concat_tables(tables) if tables else AGGREGATE_SCHEMA.empty_table()


def aggregate_table(rows: Iterable[tuple[str, str, int]]) -> pa.Table:
    """An aggregate from ``(month, state, sightings)`` tuples."""
    return pa.Table.from_pylist(
        [dict(zip(AGGREGATE_COLUMNS, row)) for row in rows], schema=AGGREGATE_SCHEMA
    )


def counts_by_period(aggregate: pa.Table) -> pa.Table:
    """Sightings per state for each month and for all time: ``period, state, sightings``,
    sorted by period (``all`` last, as it sorts after the digits) and state."""
    months = aggregate.group_by(["month", "state"], use_threads=False).aggregate(
        [("sightings", "sum")]
    )
    months = pa.table(
        [months["month"], months["state"], months["sightings_sum"]], schema=COUNT_SCHEMA
    )
    totals = aggregate.group_by("state", use_threads=False).aggregate([("sightings", "sum")])
    all_time = pa.table(
        [
            pa.array([ALL_TIME] * totals.num_rows, pa.string()),
            totals["state"],
            totals["sightings_sum"],
        ],
        schema=COUNT_SCHEMA,
    )
    counts = pa.concat_tables([months, all_time])
    return counts.sort_by([("period", "ascending"), ("state", "ascending")])


def top_states(counts: pa.Table, n: int = TOP_N) -> pa.Table:
    """The ``n`` states with the most sightings in each period: ``period, rank, state,
    sightings``, ``all`` first, then the months in order; ties go to the lower state code."""
    if not pc.any(pc.equal(counts["period"], ALL_TIME)).as_py():
        raise DataError(
            "The aggregate holds no valid sightings: see the quality report and the rejects "
            "for why every row was left out."
        )
    ordered = counts.append_column("_month", pc.not_equal(counts["period"], ALL_TIME)).sort_by(
        [
            ("_month", "ascending"),
            ("period", "ascending"),
            ("sightings", "descending"),
            ("state", "ascending"),
        ]
    )
    # Each period is one run of rows in sorted order: keep the first n of every run.
    runs = pc.run_end_encode(ordered["period"].combine_chunks())
    keep, ranks, start = [], [], 0
    for end in runs.run_ends.to_pylist():
        size = min(end - start, n)
        keep.extend(range(start, start + size))
        ranks.extend(range(1, size + 1))
        start = end
    top = ordered.take(pa.array(keep, pa.int64()))
    return pa.table(
        [top["period"], pa.array(ranks, pa.int64()), top["state"], top["sightings"]],
        schema=TOP_SCHEMA,
    )


def write_csv(table: pa.Table) -> bytes:
    """``table`` as CSV. Periods and state codes never need quotes, and none are written."""
    out = io.BytesIO()
    pa_csv.write_csv(
        table,
        out,
        pa_csv.WriteOptions(quoting_style="none", quoting_header="none"),
    )
    return out.getvalue()


def write_parquet(table: pa.Table) -> bytes:
    """``table`` as one Parquet file."""
    out = io.BytesIO()
    pq.write_table(table, out)
    return out.getvalue()


def read_counts(data: bytes) -> pa.Table:
    """Per-period counts written by ``write_parquet``, their columns checked."""
    try:
        table = pq.read_table(pa.BufferReader(data))
    except pa.ArrowInvalid as err:
        raise DataError(f"The per-period counts are not Parquet ({err}).") from None
    if table.column_names != COUNT_SCHEMA.names:
        raise DataError(
            f"The per-period counts have columns {table.column_names}, expected "
            f"{COUNT_SCHEMA.names}: run TopTenStates for this date again with --force."
        )
    return table.cast(COUNT_SCHEMA)


def read_top(data: bytes) -> pa.Table:
    """A top-ten file written by ``write_csv``, its columns checked."""
    try:
        table = pa_csv.read_csv(
            pa.BufferReader(data),
            convert_options=pa_csv.ConvertOptions(column_types=TOP_SCHEMA),
        )
    except pa.ArrowInvalid as err:
        raise DataError(f"The top-ten file cannot be read as {TOP_COLUMNS}: {err}") from None
    if table.column_names != TOP_COLUMNS:
        raise DataError(
            f"The top-ten file has columns {table.column_names}, expected {TOP_COLUMNS}."
        )
    return table


def rows(table: pa.Table) -> list[tuple]:
    """A table's rows as tuples, in its column order."""
    columns = [table[name].to_pylist() for name in table.column_names]
    return list(zip(*columns))
