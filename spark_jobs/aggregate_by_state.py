"""Count UFO sightings per (month, US state) from a raw NUFORC report index.

A standalone PySpark job: Luigi's ``AggregateUFOsByState`` submits it, and it runs the same
with plain spark-submit::

    spark-submit spark_jobs/aggregate_by_state.py \\
        --input lake/raw/date=2019-03-29/nuforc_reports.csv \\
        --run-date 2019-03-29 \\
        --output lake/aggregated/date=2019-03-29 \\
        --rejects lake/rejects/date=2019-03-29 \\
        --report lake/reports/date=2019-03-29/quality.json

The input is UTF-8 (``ReadUFOs`` transcodes on the way in). Outputs:

* ``--output``: CSV ``month,state,sightings`` (complete only with ``_SUCCESS``);
* ``--rejects``: CSV of every rejected row, its seven original fields and ``reason``;
* ``--report``: ``quality.json`` with the row counts, which add up to ``input``.

The data rules (README, "Data contract") are in ``transform_classify``; the transforms are pure
functions of their DataFrames and arguments.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

#: The NUFORC index header, in file order, and the column names used inside the job.
HEADER = ("Date / Time", "City", "State", "Shape", "Duration", "Summary", "Posted")
COLUMNS = ("date_time", "city", "state", "shape", "duration", "summary", "posted")

#: The 50 US states and DC.
US_STATES = frozenset(
    "AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH "
    "NJ NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY".split()
)

#: Row outcomes, in the order the rules are checked. Only the reasons in REJECT_REASONS are
#: rejects; header repeats, duplicates and later-posted reports are counted, not rejected.
HEADER_REPEAT = "header_repeat"
DUPLICATE = "duplicate"
AFTER_RUN_DATE = "after_run_date"
VALID = "valid"
REJECT_REASONS = ("posted", "sighting_date", "state")

_POSTED_RE = r"^(\d{1,2})/(\d{1,2})/(\d{2})$"
_SIGHTING_RE = r"^(\d{1,2})/(\d{1,2})/(\d{2})( (\d{1,2}):(\d{2}))?$"


class LayoutError(ValueError):
    """The input is not in the NUFORC index layout."""


def _normalise(name: str) -> str:
    return name.strip().lower()


def transform_select_columns(raw: DataFrame) -> DataFrame:
    """The seven NUFORC columns, renamed to COLUMNS, with missing values as empty strings.

    Header names are matched ignoring case and surrounding spaces; other columns are ignored.
    """
    by_name = {_normalise(c): c for c in raw.columns}
    missing = [h for h in HEADER if _normalise(h) not in by_name]
    if missing:
        raise LayoutError(
            "the input is not a NUFORC report index: missing column(s) "
            + ", ".join(repr(m) for m in missing)
            + f"; expected the header {','.join(HEADER)!r}"
        )
    return raw.select(
        *(
            F.coalesce(F.col(f"`{by_name[_normalise(h)]}`").cast("string"), F.lit("")).alias(c)
            for h, c in zip(HEADER, COLUMNS)
        )
    )


def _safe_date(year: Column, month: Column, day: Column) -> tuple[Column, Column]:
    """(is_valid, date) for integer year/month/day columns, without raising on bad values."""
    month_ok = month.between(1, 12)
    first = F.make_date(year, F.when(month_ok, month).otherwise(F.lit(1)), F.lit(1))
    valid = month_ok & (day >= 1) & (day <= F.dayofmonth(F.last_day(first)))
    return valid, F.when(valid, F.date_add(first, (day - 1).cast("int")))


def transform_classify(rows: DataFrame, run_date: dt.date) -> DataFrame:
    """Distinct rows with their multiplicity ``n``, ``outcome``, ``month`` and ``state_code``.

    ``outcome`` is the first rule a row fails (README, "Data contract"): ``header_repeat``,
    then (for the distinct row itself) ``posted``, ``after_run_date``, ``sighting_date``,
    ``state``, or ``valid``. The ``n - 1`` extra copies of a non-header row are duplicates.
    """
    distinct = rows.groupBy(*COLUMNS).agg(F.count(F.lit(1)).alias("n"))

    is_header = F.lit(True)
    for header, column in zip(HEADER, COLUMNS):
        is_header = is_header & (F.lower(F.trim(F.col(column))) == _normalise(header))

    posted = F.trim(F.col("posted"))
    posted_match = posted.rlike(_POSTED_RE)
    p_month = F.regexp_extract(posted, _POSTED_RE, 1).cast("int")
    p_day = F.regexp_extract(posted, _POSTED_RE, 2).cast("int")
    p_yy = F.regexp_extract(posted, _POSTED_RE, 3).cast("int")
    p_year = F.when(p_yy >= 70, p_yy + 1900).otherwise(p_yy + 2000)
    posted_valid, posted_date = _safe_date(p_year, p_month, p_day)
    posted_ok = posted_match & posted_valid

    sighting = F.trim(F.col("date_time"))
    s_match = sighting.rlike(_SIGHTING_RE)
    s_month = F.regexp_extract(sighting, _SIGHTING_RE, 1).cast("int")
    s_day = F.regexp_extract(sighting, _SIGHTING_RE, 2).cast("int")
    s_yy = F.regexp_extract(sighting, _SIGHTING_RE, 3).cast("int")
    has_time = F.regexp_extract(sighting, _SIGHTING_RE, 4) != ""
    s_hour = F.regexp_extract(sighting, _SIGHTING_RE, 5).cast("int")
    s_minute = F.regexp_extract(sighting, _SIGHTING_RE, 6).cast("int")
    # The latest century that does not put the sighting after the year it was posted.
    century = F.floor(p_year / 100).cast("int") * 100
    s_year = F.when(century + s_yy <= p_year, century + s_yy).otherwise(century + s_yy - 100)
    s_valid, s_date = _safe_date(s_year, s_month, s_day)
    time_ok = ~has_time | (s_hour.between(0, 24) & s_minute.between(0, 59))
    sighting_ok = s_match & s_valid & time_ok

    state_code = F.upper(F.trim(F.col("state")))
    state_ok = state_code.isin(*sorted(US_STATES))

    outcome = (
        F.when(is_header, F.lit(HEADER_REPEAT))
        .when(~posted_ok, F.lit("posted"))
        .when(posted_date > F.lit(run_date), F.lit(AFTER_RUN_DATE))
        .when(~sighting_ok, F.lit("sighting_date"))
        .when(~state_ok, F.lit("state"))
        .otherwise(F.lit(VALID))
    )
    return distinct.select(
        *COLUMNS,
        "n",
        outcome.alias("outcome"),
        F.when(outcome == VALID, F.date_format(s_date, "yyyy-MM")).alias("month"),
        F.when(outcome == VALID, state_code).alias("state_code"),
    )


def transform_count_by_month_state(classified: DataFrame) -> DataFrame:
    """Sightings per (month ``YYYY-MM``, state): each valid report counted once."""
    return (
        classified.where(F.col("outcome") == VALID)
        .groupBy("month", F.col("state_code").alias("state"))
        .agg(F.count(F.lit(1)).alias("sightings"))
        .orderBy("month", "state")
    )


def transform_rejects(classified: DataFrame) -> DataFrame:
    """Every rejected row: its seven fields under the original header names and its reason."""
    return classified.where(F.col("outcome").isin(*REJECT_REASONS)).select(
        *(F.col(c).alias(h) for c, h in zip(COLUMNS, HEADER)), F.col("outcome").alias("reason")
    )


def transform_outcome_counts(classified: DataFrame) -> DataFrame:
    """Input rows per outcome, duplicates included: ``outcome, rows``."""
    header = F.col("outcome") == HEADER_REPEAT
    per_row = classified.select(
        F.col("outcome"),
        F.when(header, F.col("n")).otherwise(F.lit(1)).alias("rows"),
    )
    duplicates = classified.where(~header & (F.col("n") > 1)).select(
        F.lit(DUPLICATE).alias("outcome"), (F.col("n") - 1).alias("rows")
    )
    return per_row.unionByName(duplicates).groupBy("outcome").agg(F.sum("rows").alias("rows"))


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


def extract(spark: SparkSession, path: str) -> DataFrame:
    """The raw report index as strings, quoted commas and newlines honoured."""
    return (
        spark.read.option("header", True)
        .option("multiLine", True)
        .option("escape", '"')
        .option("encoding", "UTF-8")
        .option("inferSchema", False)
        .option("enforceSchema", False)
        .option("mode", "PERMISSIVE")
        .csv(path)
    )


def _filesystem(spark: SparkSession, path: str):
    jvm = spark.sparkContext._jvm
    target = jvm.org.apache.hadoop.fs.Path(path)
    return target.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), target


def load_csv(spark: SparkSession, df: DataFrame, path: str) -> None:
    """One CSV file with a header under ``path``, with ``_SUCCESS``, replacing what was there.

    Written complete beside the old output (under ``_staging/``, which Spark's partition
    discovery ignores), then swapped in: a reader sees the old output or the new one, never a
    half-written mix.
    """
    parent, name = path.rstrip("/").rsplit("/", 1)
    staging = f"{parent}/_staging/{name}"
    (
        df.coalesce(1)
        .write.mode("overwrite")
        .option("header", True)
        .option("escape", '"')
        # Spark's CSV writer trims fields by default; rejects must keep them as they came.
        .option("ignoreLeadingWhiteSpace", False)
        .option("ignoreTrailingWhiteSpace", False)
        .csv(staging)
    )
    fs, final = _filesystem(spark, path)
    _, staged = _filesystem(spark, staging)
    fs.delete(final, True)
    if not fs.rename(staged, final):
        raise OSError(f"could not move {staging} to {path}")


def load_json(spark: SparkSession, document: dict, path: str) -> None:
    """Write ``document`` to ``path`` through Hadoop's FileSystem (local or s3a), replacing it."""
    fs, target = _filesystem(spark, path)
    stream = fs.create(target, True)
    try:
        stream.write(bytearray(json.dumps(document, indent=2, sort_keys=True).encode("utf-8")))
    finally:
        stream.close()


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", required=True, help="raw report index (UTF-8 CSV)")
    parser.add_argument("--run-date", required=True, type=dt.date.fromisoformat)
    parser.add_argument("--output", required=True, help="directory for month,state,sightings")
    parser.add_argument("--rejects", required=True, help="directory for the rejected rows")
    parser.add_argument("--report", required=True, help="path of quality.json")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    spark = SparkSession.builder.appName(f"AggregateUFOsByState {args.run_date}").getOrCreate()
    try:
        raw = extract(spark, args.input)
        try:
            rows = transform_select_columns(raw)
        except LayoutError as err:
            print(f"error: {args.input}: {err}", file=sys.stderr)
            return 2
        classified = transform_classify(rows, args.run_date).cache()
        counts = {r["outcome"]: r["rows"] for r in transform_outcome_counts(classified).collect()}
        report = quality_report(counts, args.run_date)
        if report["input"] == 0:
            print(f"error: {args.input}: the file holds no reports", file=sys.stderr)
            return 2
        # The aggregate is written last: its _SUCCESS flag marks the whole step complete.
        load_csv(spark, transform_rejects(classified), args.rejects)
        load_json(spark, report, args.report)
        load_csv(spark, transform_count_by_month_state(classified), args.output)
        print(json.dumps(report, sort_keys=True))
        return 0
    finally:
        spark.stop()


if __name__ == "__main__":
    sys.exit(main())
