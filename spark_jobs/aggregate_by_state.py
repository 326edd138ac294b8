"""Count UFO sightings per (month, US state) for one or many run dates, in one pass over the input.

A standalone PySpark job: Luigi's ``AggregateUFOsByState`` submits it (and publishes what it
writes), and it runs the same with plain spark-submit::

    spark-submit spark_jobs/aggregate_by_state.py \\
        --snapshot 2019-03-29=lake/_attempts/A/raw/records.parquet \\
        --snapshot 2019-03-30=lake/_attempts/A/raw/records.parquet \\
        --output lake/_attempts/B

or as a session of a Spark Connect server (``SPARK_REMOTE=sc://host:15002 python
spark_jobs/aggregate_by_state.py ...``): the DataFrame API only, and its own file work without
the driver's JVM (``jobfiles.py``), so the same file runs in both modes.

The input is the raw zone's Parquet (``ReadUFOs``): one string column per field of a known
layout (``layouts.py``), named as the source's header spells it. Each run date D is a snapshot:
the reports posted on or before D. Every distinct row is classified once, and every date's
figures are derived from that. Under ``--output``:

* ``aggregated/date=D/part-*.parquet``: ``month, state, sightings`` of snapshot D (strings
  and a long), written for the first of consecutive run dates with the same snapshot (no
  report posted between them) and named by each of them; drawn by the driver from the few
  steps the driver counts (``count_steps``);
* ``rejects/since=S/part-*.csv``: rejected rows, their fields under the source's header names
  and ``reason``. Snapshot D's rejects are the files with ``S <= D`` (a row rejected on D stays
  rejected later, so each row is written once however many dates a run covers);
* ``reports/date=D/quality.json``: the row counts of snapshot D, which add up to ``input``;
* ``_job.json``: all of the above per date, for the publisher, and the application's id.

Nothing here is visible to readers until ``AggregateUFOsByState`` publishes each date's manifest.
The data rules (README, "Data contract") are in ``transform_classify`` and ``snapshot_counts``;
the transforms are pure functions of their DataFrames and arguments.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import datetime as dt
import io
import json
import math
import os
import re
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from pyspark import SparkConf
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# Beside this file: shipped with the job, no package needed.
import arrowpool  # noqa: E402
import jobfiles  # noqa: E402
import layouts  # noqa: E402
from layouts import RECORD, US_STATES, WHITESPACE, DateColumn, Layout, LayoutError  # noqa: E402
from steps import Steps  # noqa: E402

T = TypeVar("T")

#: Row outcomes, in the order the rules are checked. Only REJECT_REASONS are rejects; header
#: repeats, duplicates and later-posted reports are counted, not rejected.
HEADER_REPEAT = "header_repeat"
DUPLICATE = "duplicate"
AFTER_RUN_DATE = "after_run_date"
VALID = "valid"
COLUMNS = "columns"
REJECT_REASONS = (COLUMNS, "posted", "sighting_date", "state")

#: The quality report's fields, in order; ``input`` is the sum of the next five.
QUALITY_FIELDS = (
    "run_date", "input", HEADER_REPEAT, DUPLICATE, AFTER_RUN_DATE, VALID, "rejected",
    "rejected_by_reason",
)  # fmt: skip


def field(i: int) -> str:
    """The job's name for the layout's ``i``-th column."""
    return f"f{i}"


def _trim(column: Column) -> Column:
    """The value without surrounding ASCII whitespace (plain trim only strips spaces)."""
    return F.btrim(column, F.lit(WHITESPACE))


def transform_select_columns(
    raw: DataFrame, declared: tuple[Layout, ...] = ()
) -> tuple[Layout, tuple[str, ...], DataFrame]:
    """The layout of ``raw``, its columns' own names, and its fields as ``f0..fn`` strings, then
    ``_record`` (a record of the wrong width as it came; empty for the others).

    Missing values become empty strings. Raises LayoutError when the columns are no layout
    (``declared``: the user's layouts, besides the built-in ones).
    """
    found = layouts.match(raw.columns, declared)
    # Renamed by position first: Spark cannot tell ``State`` from ``state`` by name.
    positional = raw.toDF(*(f"_c{i}" for i in range(len(raw.columns))))
    record = (
        F.col(f"_c{raw.columns.index(RECORD)}") if RECORD in raw.columns else F.lit(None)
    )  # a raw zone written before records were checked for their width has none
    selected = positional.select(
        *(
            F.coalesce(F.col(f"_c{p}").cast("string"), F.lit("")).alias(field(i))
            for i, p in enumerate(found.positions)
        ),
        F.coalesce(record.cast("string"), F.lit("")).alias(RECORD),
    )
    return found.layout, found.names, selected


def _date(year: str, month: str, day: str) -> Column:
    """The date of integer columns ``year``, ``month`` and ``day``; null when there is none.

    Each column is used once or twice: the optimizer inlines columns into the expressions that
    use them, and a column used many times at every step multiplies the plan's size.
    """
    made = F.try_make_timestamp_ntz(
        F.col(year), F.col(month), F.col(day), F.lit(0), F.lit(0), F.lit(0)
    )
    return F.when(F.col(year) >= 1, made.cast("date"))


def _year_month(day: Column) -> Column:
    """``YYYY-MM`` of a date (from year 1 on): from its integer parts, cheaper than formatting
    it through a date-time formatter."""
    return F.concat(
        F.lpad(F.year(day).cast("string"), 4, "0"),
        F.lit("-"),
        F.lpad(F.month(day).cast("string"), 2, "0"),
    )


def _part(parts: str, i: int) -> Column:
    return F.try_element_at(F.col(parts), F.lit(i)).try_cast("int")


#: More rows sharing their hash than this (duplicates, mostly), and the rows are grouped by their
#: text instead: that many hashes would no longer be a small broadcast (8 bytes each).
MAX_SHARED_HASHES = 2_000_000


def _hashed(rows: DataFrame) -> DataFrame:
    return rows.select(*rows.columns, F.xxhash64(*rows.columns).alias("_hash"))


def transform_shared_hashes(rows: DataFrame, partitions: int = 0) -> DataFrame:
    """``_hash``: the 64-bit hashes of the fields of ``rows`` that more than one row has.

    The hashes (8 bytes a row) are shuffled by their value into ``partitions`` (0: as many as
    the session's shuffles), then counted in each: nearly every hash is unique, so counting them
    before the shuffle (Spark's partial aggregation) saves nothing and holds every hash of a task
    in one table, which spills to disk once it outgrows the executor's memory. The count is
    stated, so that adaptive execution keeps it. Measured on 10M generated rows with 2 cores
    and a 1 GB driver: 6.4 s in 10 partitions, 13.4 s counted before the shuffle.
    """
    hashes = _hashed(rows).select("_hash")
    hashes = hashes.repartition(partitions, "_hash") if partitions else hashes.repartition("_hash")
    return hashes.groupBy("_hash").count().where(F.col("count") > 1).select("_hash")


#: Bytes of the raw zone's Parquet per partition of the hashes' shuffle: about a million rows
#: of a generated source (17 bytes a row compressed), whose hashes a task counts in memory.
HASH_PARTITION_BYTES = 16 << 20


def hash_partitions(nbytes: int, cores: int) -> int:
    """Partitions of the hashes' shuffle for ``nbytes`` of input: one per ``HASH_PARTITION_BYTES``,
    at least one per core."""
    return max(cores, math.ceil(nbytes / HASH_PARTITION_BYTES))


#: The column that says a row's hash is shared with another row (``transform_flag_shared``).
SHARED = "_shared"


def transform_flag_shared(rows: DataFrame, shared: DataFrame | None = None) -> DataFrame:
    """``rows`` (all string columns) with ``n`` = 1 and ``_shared``: whether another row has
    the same 64-bit hash of its fields. Exact, in one pass over the input.

    Grouping every row by all of its text is the costliest step there is (each row's fields
    hashed, compared and shuffled). A row whose hash no other row has is certainly distinct, so
    only the rows sharing a hash, the duplicates and the rare collisions, need grouping by their
    text: ``transform_group_outcomes`` does that after classifying, keeping their text until
    then. ``shared``: those hashes (``transform_shared_hashes``), worked out here when not
    given; broadcast to every task.
    """
    # Broadcast outright: planned as a sort-merge join first, the whole input would be shuffled
    # before adaptive execution saw how few hashes are shared.
    shared = transform_shared_hashes(rows) if shared is None else shared
    flags = F.broadcast(shared.select("_hash", F.lit(True).alias(SHARED)))
    return (
        _hashed(rows)
        .join(flags, "_hash", "left_outer")
        .select(
            *rows.columns,
            F.lit(1).cast("long").alias("n"),
            F.coalesce(F.col(SHARED), F.lit(False)).alias(SHARED),
        )
    )


def transform_distinct_by_text(rows: DataFrame) -> DataFrame:
    """The distinct rows of ``rows`` with their multiplicity ``n``, every row grouped by its text."""
    return rows.groupBy(*rows.columns).agg(F.count(F.lit(1)).alias("n"))


#: An input of at most this many bytes (the raw zone's Parquet) has its distinct rows grouped by
#: their text: a few megabytes to shuffle, and one query less than the shared hashes need
#: (finding them, counting them, broadcasting them: about a second of a cold run on the 2019
#: index, whose 120,000 records are 8 MB). Past it, the shared hashes save far more than that.
SMALL_INPUT_BYTES = 32 << 20


def distinct_rows(
    rows: DataFrame, by_text: bool, partitions: int = 0
) -> tuple[DataFrame, DataFrame | None]:
    """``rows`` ready to classify, with ``n``: grouped by their text (a small input, or one of
    very many duplicates), or flagged by their shared hashes (``transform_flag_shared``); and
    the shared hashes' checkpoint to release once they are used (None when there is none).
    ``partitions``: of the hashes' shuffle (``hash_partitions``)."""
    if by_text:
        return transform_distinct_by_text(rows), None
    shared = transform_shared_hashes(rows, partitions).localCheckpoint(eager=True)
    if shared.count() > MAX_SHARED_HASHES:
        return transform_distinct_by_text(rows), shared
    return transform_flag_shared(rows, shared), shared


def _date_parts(value: str, column: DateColumn, prefix: str) -> list[Column]:
    """The parts of the date in column ``value`` as integers ``{prefix}_year`` and so on (null
    when the value is not of the column's format); ``{prefix}_hour``, ``_minute`` and
    ``_second`` are null when it has no time."""
    fmt = column.format
    split = F.when(F.col(value).rlike(column.pattern()), F.split(value, fmt.separators))
    found = []
    for part in ("year", "month", "day", "hour", "minute", "second"):
        if part in fmt.parts:
            found.append(
                F.try_element_at(split, F.lit(fmt.parts.index(part) + 1))
                .try_cast("int")
                .alias(f"{prefix}_{part}")
            )
        else:
            found.append(F.lit(None).cast("int").alias(f"{prefix}_{part}"))
    return found


def _time_ok(prefix: str) -> Column:
    """No time, or hour 0-24, minute 0-59 and second (if any) 0-59."""
    hour, minute, second = (F.col(f"{prefix}_{p}") for p in ("hour", "minute", "second"))
    return hour.isNull() | (
        hour.between(0, 24) & minute.between(0, 59) & (second.isNull() | second.between(0, 59))
    )


def transform_classify(distinct: DataFrame, layout: Layout) -> DataFrame:
    """The rows (``distinct_rows``) with ``outcome``, ``posted_date``, ``month``, ``state_code``;
    their other columns than the layout's fields (``n``, ``_shared``) are kept as they are.

    ``outcome`` is the first rule a distinct row fails, leaving out the run date (README, "Data
    contract"): ``header_repeat``, ``columns``, ``posted``, ``sighting_date``, ``state`` or
    ``valid``. Whether a row is in a run date's snapshot is decided later from ``posted_date``
    (null for a row in every snapshot: a header repeat or a ``columns`` or ``posted`` reject).
    """
    names = [*(field(i) for i in range(len(layout.columns))), RECORD]
    carried = [c for c in distinct.columns if c not in names]
    col = {key: F.col(field(i)) for i, key in enumerate(layout.keys)}

    # Each step is its own projection over the previous one's columns: every field is trimmed
    # and split once, and the generated code stays small enough to compile.
    is_header = F.lit(True)
    for key in layout.keys:
        is_header = is_header & (F.lower(_trim(col[key])) == key)
    posted_key = layouts.normalise(layout.posted.column)
    if not re.fullmatch(layout.posted.pattern(), posted_key):
        # A header's Posted field is its name, never a date: only a row without a posted date
        # can be one (the check trims and lowers a field of every row: a second of 10M rows).
        is_header = F.when(F.col("p_year").isNull(), is_header).otherwise(F.lit(False))
    country_ok = F.lit(True)
    if layout.country is not None:
        country = F.lower(_trim(col[layouts.normalise(layout.country)]))
        country_ok = country.isin(*layout.countries)
    trimmed = distinct.select(
        *names,
        *carried,
        (F.col(RECORD) != "").alias("ragged"),
        _trim(col[layouts.normalise(layout.posted.column)]).alias("posted"),
        _trim(col[layouts.normalise(layout.sighting.column)]).alias("sighting"),
        F.upper(_trim(col[layouts.normalise(layout.state)])).alias("state_code"),
        country_ok.alias("country_ok"),
    )

    # Dates from their parts as integers, every part used once or twice: the optimizer inlines
    # each step into the next, so an expression that repeats its inputs grows with every step.
    kept = [*names, *carried, "ragged", "state_code", "country_ok"]
    parts = trimmed.select(
        *kept,
        *_date_parts("posted", layout.posted, "p"),
        *_date_parts("sighting", layout.sighting, "s"),
    )
    if layout.posted.format.year_digits == 2:
        # 70-99 are 1970-1999, 00-69 are 2000-2069.
        parts = parts.withColumn("p_year", (F.col("p_year") + 30) % 100 + 1970)
    if layout.sighting.format.year_digits == 2:
        # The latest year ending in these two digits that is not after the year it was posted.
        parts = parts.withColumn(
            "s_year", F.col("p_year") - F.pmod(F.col("p_year") - F.col("s_year"), F.lit(100))
        )
    days = parts.select(
        *kept,
        is_header.alias("is_header"),
        _time_ok("p").alias("p_time_ok"),
        _time_ok("s").alias("s_time_ok"),
        _date("p_year", "p_month", "p_day").alias("p_date"),
        _date("s_year", "s_month", "s_day").alias("s_date"),
    )
    kept.append("is_header")
    dated = days.select(
        *kept,
        F.when(F.col("p_time_ok"), F.col("p_date")).alias("posted_date"),
        F.when(F.col("s_time_ok"), F.col("s_date")).alias("s_date"),
    ).select(
        *kept,
        "posted_date",
        F.when(F.col("posted_date").isNotNull(), F.col("s_date")).alias("sighting_date"),
    )

    state_ok = F.col("state_code").isin(*sorted(US_STATES)) & F.col("country_ok")
    outcome = (
        F.when(F.col("is_header"), F.lit(HEADER_REPEAT))
        .when(F.col("ragged"), F.lit(COLUMNS))
        .when(F.col("posted_date").isNull(), F.lit("posted"))
        .when(F.col("sighting_date").isNull(), F.lit("sighting_date"))
        .when(~state_ok, F.lit("state"))
        .otherwise(F.lit(VALID))
    )
    classified = dated.select(*names, *carried, "state_code", "posted_date", "sighting_date",
                              outcome.alias("outcome"))  # fmt: skip
    valid = F.col("outcome") == VALID
    return classified.select(
        *names,
        *carried,
        "outcome",
        F.when(~F.col("outcome").isin(HEADER_REPEAT, COLUMNS), F.col("posted_date")).alias(
            "posted_date"
        ),
        F.when(valid, _year_month(F.col("sighting_date"))).alias("month"),
        F.when(valid, F.col("state_code")).alias("state_code"),
    )


def transform_keep_reject_text(classified: DataFrame) -> DataFrame:
    """``classified`` with the fields of rows that are no reject emptied (null), unless the row
    shares its hash (``_shared``): its text tells it from the rows it may equal.

    Only rejects need their text once rows are classified: the rows folded stay small.
    """
    kept = _rejected()
    if SHARED in classified.columns:
        kept = kept | F.col(SHARED)
    return classified.select(*_text_where(kept, classified.columns))


def _rejected() -> Column:
    return F.col("outcome").isin(*REJECT_REASONS)


def _text_where(kept: Column, columns: Iterable[str]) -> list[Column | str]:
    """``columns``, their rows' text (the fields and ``_record``) null where not ``kept``."""
    return [F.when(kept, F.col(c)).alias(c) if _is_text(c) else c for c in columns]


def _is_text(column: str) -> bool:
    return column == RECORD or (column.startswith("f") and column[1:].isdigit())


def transform_group_outcomes(classified: DataFrame, run_dates: list[dt.date]) -> DataFrame:
    """Distinct rows per (outcome, posted date, month, state, the fields kept): ``rows`` and ``n``.

    Run on ``transform_keep_reject_text``'s output: every reject stays a row of its own (its text
    tells it apart), every other row folds into its (outcome, posted date, month, state) count.
    Rows flagged ``_shared`` (``transform_flag_shared``) are grouped by their text here, each
    text one distinct row, then lose it unless rejected: the same keys may then come more than
    once (a row for each such text: one a shared hash bar collisions, so about
    ``MAX_SHARED_HASHES`` at most), and every reader sums them. Posted dates only matter against the run dates, so they
    are clipped to them: a date before the first run date counts as that date, one after the
    last as the day after it. The frame stays small (about one row per run date, month and
    state, plus the rejects) whatever the input's size, and every output is derived from it.
    """
    first, last = min(run_dates), max(run_dates)
    posted = F.col("posted_date")
    clipped = (
        F.when(posted > F.lit(last), F.lit(last + dt.timedelta(days=1)))
        .when(posted < F.lit(first), F.lit(first))
        .otherwise(posted)
    )
    keys = [c for c in classified.columns if c not in ("n", SHARED)]
    dated = classified.withColumn("posted_date", clipped)
    if SHARED not in classified.columns:
        return dated.groupBy(*keys).agg(F.count(F.lit(1)).alias("rows"), F.sum("n").alias("n"))
    # Each row is its own (n = 1): a group of a shared text is one distinct row, n times over.
    counted = dated.groupBy(*keys, SHARED).agg(F.count(F.lit(1)).alias("n"))
    return counted.select(
        *_text_where(_rejected(), keys),
        F.when(F.col(SHARED), F.lit(1)).otherwise(F.col("n")).cast("long").alias("rows"),
        "n",
    )


def outcome_counts(grouped: pa.Table) -> list[tuple[str, dt.date | None, int, int]]:
    """Distinct rows and input rows per (outcome, posted date) of the collected ``grouped`` frame
    (``transform_group_outcomes``): ``(outcome, posted_date, rows, n)``."""
    per = grouped.group_by(["outcome", "posted_date"]).aggregate([("rows", "sum"), ("n", "sum")])
    return list(zip(*(per[c].to_pylist() for c in ("outcome", "posted_date", "rows_sum", "n_sum"))))


def snapshot_counts(
    outcome_counts: list[tuple[str, dt.date | None, int, int]], run_date: dt.date
) -> dict:
    """The quality report of snapshot ``run_date`` from ``(outcome, posted_date, rows, n)``.

    Header repeats and duplicates count in every snapshot, and so do rows without a posted
    date; a row with a valid Posted date after the run date counts as ``after_run_date``
    whatever its other faults.
    """
    counts: dict[str, int] = defaultdict(int)
    for outcome, posted_date, rows, n in outcome_counts:
        if outcome == HEADER_REPEAT:
            counts[HEADER_REPEAT] += n
            continue
        counts[DUPLICATE] += n - rows
        if posted_date is not None and posted_date > run_date:
            counts[AFTER_RUN_DATE] += rows
        else:
            counts[outcome] += rows
    return quality_report(counts, run_date)


def quality_report(outcome_counts: dict[str, int], run_date: dt.date) -> dict:
    """The quality report of a run from its rows per outcome; ``input`` is the sum of the rest."""
    by_reason = {reason: int(outcome_counts.get(reason, 0)) for reason in REJECT_REASONS}
    report = {
        "run_date": run_date.isoformat(),
        "input": int(sum(outcome_counts.values())),
        HEADER_REPEAT: int(outcome_counts.get(HEADER_REPEAT, 0)),
        DUPLICATE: int(outcome_counts.get(DUPLICATE, 0)),
        AFTER_RUN_DATE: int(outcome_counts.get(AFTER_RUN_DATE, 0)),
        VALID: int(outcome_counts.get(VALID, 0)),
        "rejected": sum(by_reason.values()),
        "rejected_by_reason": by_reason,
    }
    parts = (HEADER_REPEAT, DUPLICATE, AFTER_RUN_DATE, VALID, "rejected")
    if report["input"] != sum(report[p] for p in parts):
        raise AssertionError(f"row counts do not add up: {report}")
    return report


def count_steps(grouped: pa.Table) -> pa.Table:
    """Each (month, state)'s count of valid sightings as it grew: ``month, state, since, until,
    sightings``, the count of the reports posted on or before ``since``, which holds until the
    next report of the same (month, state) was posted (``until``; null for the last).

    Drawn from the collected ``grouped`` frame (``transform_group_outcomes``): valid rows are
    counted per (posted date, month, state) once; snapshot D's count of a (month, state) is the
    step with ``since <= D < until`` (``counts_on``). The steps are few (posted dates are clipped
    to the run dates: at most one step per run date, month and state) whatever the input's
    size, and every run date's counts are drawn from them.
    """
    valid = grouped.filter(pc.equal(grouped["outcome"], VALID))
    per_day = (
        valid.group_by(["month", "state_code", "posted_date"])
        .aggregate([("rows", "sum")])
        .sort_by([("month", "ascending"), ("state_code", "ascending"),
                  ("posted_date", "ascending")])
    )  # fmt: skip
    size = per_day.num_rows
    month, state, since = (
        per_day[c].combine_chunks() for c in ("month", "state_code", "posted_date")
    )
    added = per_day["rows_sum"].to_numpy().astype(np.int64)
    # A series is one (month, state): where it starts, and each step's total within it.
    starts = np.ones(size, dtype=bool)
    if size > 1:
        same = pc.and_(
            pc.equal(month.slice(1), month.slice(0, size - 1)),
            pc.equal(state.slice(1), state.slice(0, size - 1)),
        )
        starts[1:] = ~same.to_numpy(zero_copy_only=False)
    running = np.cumsum(added)
    first = np.maximum.accumulate(np.where(starts, np.arange(size), 0))
    sightings = running - running[first] + added[first]
    follows = np.zeros(size, dtype=bool)  # the next step is of the same series
    follows[:-1] = ~starts[1:]
    following = since.take(pa.array(np.minimum(np.arange(1, size + 1), size - 1), pa.int64()))
    until = pc.if_else(pa.array(follows), following, pa.scalar(None, since.type))
    return pa.table(
        {"month": month, "state": state, "since": since, "until": until,
         "sightings": pa.array(sightings, pa.int64())}
    )  # fmt: skip


#: The columns of a snapshot's counts, as ``aggregated/date=D/`` holds them.
COUNT_COLUMNS = ["month", "state", "sightings"]


def counts_on(steps: pa.Table, day: dt.date) -> pa.Table:
    """Snapshot ``day``'s ``month, state, sightings``: the steps (``count_steps``) that
    hold on it."""
    holds = pc.and_kleene(
        pc.less_equal(steps["since"], pa.scalar(day, pa.date32())),
        pc.or_kleene(
            pc.is_null(steps["until"]), pc.greater(steps["until"], pa.scalar(day, pa.date32()))
        ),
    )
    return steps.filter(holds).select(COUNT_COLUMNS)


def load_counts(steps: pa.Table, run_dates: Iterable[dt.date], path: str) -> None:
    """``path/date=D/part-00000.parquet``: snapshot D's counts, for each of ``run_dates``.

    Written here, side by side, from the steps Spark collected: a ten-year backfill's distinct
    snapshots are millions of rows, which Spark took 7 s to join, sort and write through its
    commit protocol, and Arrow draws and writes in about one (a file per date, the same
    columns and types as before).
    """
    steps = steps.select(["since", "until", *COUNT_COLUMNS]).cast(
        pa.schema(
            [("since", pa.date32()), ("until", pa.date32()), ("month", pa.string()),
             ("state", pa.string()), ("sightings", pa.int64())]
        )
    )  # fmt: skip

    def parquet(day: dt.date) -> tuple[str, bytes]:
        buffer = pa.BufferOutputStream()
        pq.write_table(counts_on(steps, day), buffer)
        return f"{path}/date={day.isoformat()}/part-00000.parquet", buffer.getvalue().to_pybytes()

    write_side_by_side(parquet, sorted(set(run_dates)))


def rejected_rows(grouped: pa.Table, names: tuple[str, ...]) -> pa.Table:
    """The rejected rows of the collected ``grouped`` frame: their fields (``field(i)``),
    ``_record``, ``outcome`` (the reason) and ``posted_date``, for ``dated_rejects`` to date.
    ``_record`` is a ``columns`` reject's whole record as it came, empty for the others."""
    rejected = pc.is_in(grouped["outcome"], pa.array(REJECT_REASONS))
    kept = [*(field(i) for i in range(len(names))), RECORD, "outcome", "posted_date"]
    return pa.table([grouped[c].filter(rejected) for c in kept], names=kept)


def dated_rejects(rows: pa.Table, names: tuple[str, ...], run_dates: list[dt.date]) -> pa.Table:
    """The rejected ``rows`` (``rejected_rows``) under the source's header names,
    with ``_record``, ``reason`` and ``since`` (``YYYY-MM-DD``), sorted by ``since`` and reason.

    ``since`` is the first run date whose snapshot holds the row: the first one for a row
    without a posted date (a ``columns`` or ``posted`` reject), else the first on or after the
    posted date. Rows posted after every run date are in no snapshot and left out.

    The order is worked out on integers and every column taken once, from one chunk: Arrow
    takes from a column of many chunks (as Spark sends them) a hundred times slower (about
    four seconds for the 700,000 rejects of 10M generated rows).
    """
    rows = rows.combine_chunks()
    ordered = sorted(set(run_dates))
    days = pa.array(ordered, pa.date32()).cast(pa.int32()).to_numpy()
    posted = pc.fill_null(rows["posted_date"].cast(pa.date32()).cast(pa.int32()), int(days[0]))
    first = np.searchsorted(days, posted.to_numpy(), side="left")
    reason = pc.index_in(rows["outcome"], pa.array(sorted(REJECT_REASONS))).to_numpy()
    held = np.flatnonzero(first < len(ordered))
    order = pa.array(held[np.lexsort((reason[held], first[held]))])  # stable: by since, reason
    since = pa.array(ordered, pa.date32()).take(pa.array(first).take(order)).cast(pa.string())
    kept = [*(field(i) for i in range(len(names))), RECORD, "outcome"]
    return pa.table(
        [*(rows[c].take(order) for c in kept), since], names=[*names, RECORD, "reason", "since"]
    )


def load_rejects(dated: pa.Table, path: str) -> None:
    """``path/since=S/part-00000.csv``: the ``dated`` rejects (``dated_rejects``) of each
    ``since`` S, with a header, by reason.

    Written here, side by side: rejects are few, and Spark took seconds to find each row's date
    among thousands (a lambda per row and date) and to write a file per date through its
    commit protocol. The driver holds them all: about 170 bytes a reject on disk, a little
    more in memory (the real 2019 index: 13,794 rejects, 2.3 MB; a million, some 250 MB).
    """
    if not dated.num_rows:
        return
    since = dated["since"].combine_chunks()
    changes = pc.not_equal(since.slice(0, len(since) - 1), since.slice(1))
    starts = [0, *(np.flatnonzero(changes.to_numpy(zero_copy_only=False)) + 1)]
    bounds = [*starts, len(since)]

    def csv(span: tuple[int, int]) -> tuple[str, bytes]:
        start, stop = span
        buffer = io.BytesIO()
        pa_csv.write_csv(dated.slice(start, stop - start).drop_columns(["since"]), buffer)
        return f"{path}/since={since[start].as_py()}/part-00000.csv", buffer.getvalue()

    write_side_by_side(csv, list(zip(bounds[:-1], bounds[1:])))


def extract(spark: SparkSession, path: str) -> DataFrame:
    """The raw zone's records: Parquet, one string column per field, split across the cores."""
    schema = _local_string_schema(path)
    return (spark.read if schema is None else spark.read.schema(schema)).parquet(path)


def _local_string_schema(path: str) -> StructType | None:
    """The columns of a local Parquet file of strings, read from its footer here on the driver.

    Spark would start a job to read it (about a second on a cold JVM). None when the file is not
    local, pyarrow is missing, or a column is not a string: Spark then reads the schema itself.
    """
    local = jobfiles.local(path)
    if local is None or not os.path.isfile(local):
        return None
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return None
    found = pq.read_schema(local)
    if not all(pa.types.is_string(t) or pa.types.is_large_string(t) for t in found.types):
        return None
    return StructType([StructField(name, StringType()) for name in found.names])


def _json(document: dict) -> bytes:
    return json.dumps(document, indent=2, sort_keys=True).encode("utf-8")


def load_json(document: dict, path: str) -> None:
    """Write ``document`` to ``path`` as indented JSON."""
    jobfiles.write_bytes(path, _json(document))


def write_side_by_side(made: Callable[[T], tuple[str, bytes]], items: Iterable[T]) -> None:
    """The file ``made`` of each of ``items`` (its path and bytes), written by 8 threads: one
    small file per date is a request each on S3, and Arrow encodes without the GIL (a year of
    dates takes a second or two instead of ten)."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda item: jobfiles.write_bytes(*made(item)), items))


def is_connect(spark: SparkSession) -> bool:
    """Whether ``spark`` is a Spark Connect session (no driver JVM, no SparkContext here)."""
    return type(spark).__module__.startswith("pyspark.sql.connect")


def cores(spark: SparkSession) -> int:
    """Spark's default parallelism: the cores of the application's executors."""
    if not is_connect(spark):
        return spark.sparkContext.defaultParallelism
    said = spark.conf.get("spark.default.parallelism", None)  # the local product's server says
    if said and said.isdigit() and int(said) > 0:
        return int(said)
    # A range without a partition count is split by the default parallelism (one tiny job).
    parts = spark.range(0, 1 << 16).select(F.spark_partition_id().alias("part"))
    return parts.agg(F.max("part")).first()[0] + 1


#: Bytes of input per shuffle partition.
PARTITION_BYTES = 128 << 20


def _configured(spark: SparkSession, defaults: dict[str, str]) -> set[str]:
    """The settings among ``defaults`` (Spark's default values) that the user gave: luigi.cfg's
    ``[spark]`` for a new application; on Spark Connect, those set away from their default."""
    if is_connect(spark):  # the session's settings only
        return {key for key, default in defaults.items() if spark.conf.get(key) != default}
    conf = spark.sparkContext.getConf()
    return {key for key in defaults if conf.contains(key)}


#: Case mappings through ICU (Spark 4's default) or the JVM's own. ``upper`` and ``lower`` give the
#: same strings either way (Unicode's mappings, as Python's ``str.upper`` does; the JVM's take a
#: shortcut for ASCII), but ICU's cost half the classification's time on the 2019 index (1.1 s of
#: 2.2 s a task, seen in thread dumps): the job uses the JVM's unless told otherwise.
ICU_CASE_MAPPINGS = "spark.sql.icu.caseMappings.enabled"


def use_jvm_case_mappings(spark: SparkSession) -> None:
    if not _configured(spark, {ICU_CASE_MAPPINGS: "true"}):
        spark.conf.set(ICU_CASE_MAPPINGS, "false")


def size_shuffles(spark: SparkSession, nbytes: int) -> int:
    """Fit the shuffles to the input, unless luigi.cfg's ``[spark]`` settings say otherwise.

    Spark's default of 200 partitions turns a small input into hundreds of tiny tasks: use about
    one per 128 MB, and at least one per core. An input of at most one partition per core leaves
    adaptive execution nothing to coalesce or split, and its re-planning at every stage costs a
    cold JVM about 1.5 s (measured on the 2019 index): it is switched off for such inputs.
    """
    configured = _configured(
        spark, {"spark.sql.adaptive.enabled": "true", "spark.sql.shuffle.partitions": "200"}
    )
    count = cores(spark)
    if "spark.sql.adaptive.enabled" not in configured and nbytes <= count * PARTITION_BYTES:
        spark.conf.set("spark.sql.adaptive.enabled", "false")
    if "spark.sql.shuffle.partitions" in configured:
        return int(spark.conf.get("spark.sql.shuffle.partitions"))
    partitions = max(count, math.ceil(nbytes / PARTITION_BYTES))
    spark.conf.set("spark.sql.shuffle.partitions", str(partitions))
    return partitions


def run_group(
    spark: SparkSession,
    source: str,
    run_dates: list[dt.date],
    output: str,
    declared: tuple[Layout, ...] = (),
    by_text: bool = False,
    steps: Steps | None = None,
    partitions: int = 0,
) -> tuple[str, dict[str, dict], dict[str, str]]:
    """Classify one input once and write every run date's outputs: its layout, quality reports,
    and for each date the first date with the same snapshot (whose counts it shares).
    ``by_text``: find the distinct rows by their text (a small input), not by shared hashes.
    ``steps``: names each step's Spark jobs and reports their progress (``steps.py``).
    ``partitions``: of the shared hashes' shuffle (``hash_partitions``; 0: the session's)."""
    step = steps.step if steps is not None else (lambda name: contextlib.nullcontext())
    with step("read and pick the layout"):
        layout, names, rows = transform_select_columns(extract(spark, source), declared)
    with step("find the duplicates"):
        distinct, shared = distinct_rows(rows, by_text, partitions)
    # Classified once and folded into the small grouped frame, which the driver collects: every
    # output is drawn from it here, without a Spark job of its own (three jobs and a checkpoint
    # before, about a second of a cold run on the 2019 index).
    with step("classify"):
        grouped = transform_group_outcomes(
            transform_keep_reject_text(transform_classify(distinct, layout)), run_dates
        ).toArrow()
    if shared is not None:
        shared.unpersist()  # the checkpoint's blocks
    counts = outcome_counts(grouped)
    reports = {d.isoformat(): snapshot_counts(counts, d) for d in run_dates}
    empty = [d for d, report in reports.items() if report["input"] == 0]
    if empty:
        raise LayoutError(f"{source} holds no reports")
    firsts = first_of_equal_snapshots([posted for _, posted, _, _ in counts], run_dates)
    load_counts(count_steps(grouped), firsts.values(), f"{output}/aggregated")
    load_rejects(
        dated_rejects(rejected_rows(grouped, names), names, run_dates), f"{output}/rejects"
    )
    return layout.name, reports, {d.isoformat(): f.isoformat() for d, f in firsts.items()}


def first_of_equal_snapshots(
    posted: Iterable[dt.date | None], run_dates: list[dt.date]
) -> dict[dt.date, dt.date]:
    """Each run date, and the first of the run dates before it whose snapshot is the same.

    ``posted`` are the input's posted dates (clipped as ``transform_group_outcomes`` clips
    them). Two consecutive run dates hold the same snapshot when no report was posted after the
    first and on or before the second: the same counts, rejects and quality figures. Their
    counts are written once (NUFORC posts in batches: ten years of daily run dates of the 2019
    index are about 350 distinct snapshots), and each date's manifest names that file.
    """
    known = sorted({day for day in posted if day is not None})
    firsts: dict[dt.date, dt.date] = {}
    first = before = None
    for day in sorted(set(run_dates)):
        if first is None or bisect.bisect_right(known, day) != bisect.bisect_right(known, before):
            first = day
        firsts[day] = first
        before = day
    return firsts


def publishable(
    output: str,
    reports: dict[str, dict],
    layout_of: dict[str, str],
    firsts: dict[str, str],
) -> dict:
    """``_job.json``: for each run date its quality report and the files of its outputs (the
    counts of the first date with the same snapshot, ``firsts``)."""
    aggregated = defaultdict(list)
    for rel in jobfiles.list_files(f"{output}/aggregated"):
        aggregated[rel.split("/", 1)[0].removeprefix("date=")].append(f"aggregated/{rel}")
    rejects = [
        (rel.split("/", 1)[0].removeprefix("since="), f"rejects/{rel}")
        for rel in jobfiles.list_files(f"{output}/rejects")
    ]

    def report_rel(day: str) -> str:
        return f"reports/date={day}/quality.json"

    dates = {}
    for day, report in sorted(reports.items()):
        dates[day] = {
            "quality": report,
            "layout": layout_of[day],
            "files": {
                "aggregated": aggregated.get(firsts[day], []),
                "rejects": sorted(rel for since, rel in rejects if since <= day),
                "report": [report_rel(day)],
            },
        }
    write_side_by_side(
        lambda day: (f"{output}/{report_rel(day)}", _json(reports[day])), sorted(reports)
    )
    return {"format": 1, "dates": dates}


#: Local outputs without Hadoop's .crc files beside every file and folder: nothing reads them
#: (Parquet and the publisher check their own data), and each is one more file to create and,
#: without Hadoop's native library, one more ``chmod`` process to start. For local outputs
#: only: s3a buffers its uploads on local disk through ``FileSystem.getLocal``, which requires
#: the checksummed filesystem (a ClassCastException otherwise).
LOCAL_FILES = {"spark.hadoop.fs.file.impl": "org.apache.hadoop.fs.RawLocalFileSystem"}


def _snapshot(text: str) -> tuple[dt.date, str]:
    day, sep, path = text.partition("=")
    if not sep or not path:
        raise argparse.ArgumentTypeError(f"{text!r} is not DATE=INPUT")
    return dt.date.fromisoformat(day), path


def _layouts(text: str) -> tuple[Layout, ...]:
    try:
        return layouts.from_json(text)
    except (ValueError, layouts.DeclarationError) as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--snapshot", action="append", type=_snapshot, required=True, metavar="DATE=INPUT",
        help="a run date and the raw zone (Parquet) it reads; repeat for more dates",
    )  # fmt: skip
    parser.add_argument("--output", required=True, help="directory for this run's outputs")
    parser.add_argument(
        "--name", help="the application's name (default: the job and its run dates); its "
        "jobs are described as the job and its run dates, then the step",
    )  # fmt: skip
    parser.add_argument(
        "--progress", type=float, default=5.0, metavar="SECONDS",
        help="print a progress line at most this often while a step runs (0: never)",
    )  # fmt: skip
    parser.add_argument(
        "--layouts", type=_layouts, default=(), metavar="JSON",
        help="declared layouts besides the built-in ones, as JSON (spark_jobs/layouts.py to_json)",
    )  # fmt: skip
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    arrowpool.use_jemalloc()
    groups: dict[str, list[dt.date]] = defaultdict(list)
    for day, source in args.snapshot:
        groups[source].append(day)
    days = sorted(d for ds in groups.values() for d in ds)
    label = f"AggregateUFOsByState {days[0]}" + (
        f"..{days[-1]} ({len(days)} dates)" if len(days) > 1 else ""
    )
    builder = SparkSession.builder.appName(args.name or label)
    connect = "SPARK_REMOTE" in os.environ or "SPARK_CONNECT_MODE_ENABLED" in os.environ
    if jobfiles.local(args.output) is not None and not connect:
        configured = SparkConf()
        for key, value in LOCAL_FILES.items():
            if not configured.contains(key):
                builder = builder.config(key, value)
    spark = builder.getOrCreate()
    if connect:
        bound_retries(spark, CONNECT_RETRIES)
        live_ui = say_where(spark)
    else:
        live_ui = None
    finished = False
    try:
        steps = Steps(spark, label, connect, every=args.progress)
        sizes = {source: jobfiles.total_bytes([source]) for source in groups}
        size_shuffles(spark, sum(sizes.values()))
        use_jvm_case_mappings(spark)
        reports: dict[str, dict] = {}
        layout_of: dict[str, str] = {}
        firsts: dict[str, str] = {}
        for source, run_dates in groups.items():
            # A small input needs no hashes' shuffle, nor the cores it is sized by (on a Spark
            # Connect server that does not state them, a job of their own).
            small = sizes[source] <= SMALL_INPUT_BYTES
            partitions = 0 if small else hash_partitions(sizes[source], cores(spark))
            try:
                with steps:
                    layout, found, shared = run_group(
                        spark, source, sorted(set(run_dates)), args.output, args.layouts,
                        by_text=small, steps=steps, partitions=partitions,
                    )  # fmt: skip
            except LayoutError as err:
                # PySpark's driver output goes to stdout: say it on both, the publisher reads either.
                print(f"error: {source}: {err}", flush=True)
                print(f"error: {source}: {err}", file=sys.stderr, flush=True)
                return 2
            reports.update(found)
            layout_of.update(dict.fromkeys(found, layout))
            firsts.update(shared)
        job = publishable(args.output, reports, layout_of, firsts)
        job["application"] = spark.conf.get("spark.app.id", None)  # its history server page
        if connect:  # the run's statements and jobs: its session's page in the server's UI
            job["session"] = spark.session_id
            job["live_ui"] = live_ui
        load_json(job, f"{args.output}/_job.json")
        for day in sorted(reports):
            print(json.dumps(reports[day], sort_keys=True))
        finished = True
        return 0
    finally:
        if connect and not finished:
            bound_retries(spark, None)  # the server may be gone: stop without retrying
        spark.stop()


def say_where(spark: SparkSession) -> str | None:
    """On a Spark Connect server: print the session and the server's live UI (when its port was
    chosen: ``etl/tools/connect.py`` does), for the Luigi task to show and link; the UI."""
    port = spark.conf.get("spark.ui.port", None)
    host = os.environ.get("SPARK_REMOTE", "").removeprefix("sc://").split("/")[0].rsplit(":", 1)[0]
    ui = f"http://{host}:{port}" if port and port != "0" and host else ""
    print(f"session: {spark.session_id} {ui}".rstrip(), file=sys.stderr, flush=True)
    return ui or None


#: PySpark's client retries a lost Spark Connect server for ten minutes by default, silently: a
#: run whose server went away would hang that long. These retries (50 ms growing fourfold to
#: 10 s, 6 of them) give up after about 25 s, and ride out a server that only blinked.
CONNECT_RETRIES = {"max_retries": 6, "max_backoff": 10_000}


def bound_retries(spark: SparkSession, retries: dict | None) -> None:
    """Retry a Spark Connect session's calls as ``retries`` says (DefaultPolicy's arguments);
    None: never."""
    from pyspark.sql.connect.client.retries import DefaultPolicy

    spark.client.set_retry_policies([DefaultPolicy(**retries)] if retries is not None else [])


if __name__ == "__main__":
    sys.exit(main())
