"""The data contract in DuckDB SQL, the benchmark's second, independent implementation.

The index layout's rules 3-10 (docs/reference/data-contract.md) over the raw zone's Parquet,
or over the source CSV read by DuckDB itself (the end-to-end baseline). The benchmark stops when DuckDB's
figures differ from the pipeline's.
"""

from __future__ import annotations

import datetime as dt

WS = " \t\r\n\f\v"
COLUMNS = ("Date / Time", "City", "State", "Shape", "Duration", "Summary", "Posted")


def parquet_records(path: str) -> str:
    """The raw zone's Parquet as the contract's input relation."""
    return f"read_parquet('{path}')"


def csv_records(path: str) -> str:
    """The source CSV itself as the contract's input relation: DuckDB's own parallel CSV
    reader, every field text (an empty one empty, not NULL), no record of the wrong width."""
    columns = ", ".join(f"'{c}': 'VARCHAR'" for c in COLUMNS)
    return (f"(SELECT *, '' AS _record FROM read_csv('{path}', header = true, delim = ',', "
            f"quote = '\"', escape = '\"', columns = {{{columns}}}, allow_quoted_nulls = false, "
            f"nullstr = chr(0), parallel = true))")  # fmt: skip


def duckdb_contract(relation: str, run_date: dt.date) -> tuple[dict, dict]:
    """The data contract (index layout, rules 3-10) in DuckDB SQL over ``relation`` (the raw
    zone's records, ``parquet_records`` or ``csv_records``): (quality, {(month, state): n})."""
    import duckdb

    ws = "".join(f"chr({ord(c)})" if i == 0 else f" || chr({ord(c)})" for i, c in enumerate(WS))
    sql = f"""
    WITH src AS (
      SELECT "Date / Time" AS w, "City" AS c, "State" AS s, "Shape" AS sh, "Duration" AS du,
             "Summary" AS su, "Posted" AS p, "_record" AS rec FROM {relation}),
    d AS (SELECT w, c, s, sh, du, su, p, rec, count(*) AS n FROM src GROUP BY ALL),
    t AS (
      SELECT n, rec <> '' AS ragged,
        lower(trim(w, {ws})) = 'date / time' AND lower(trim(c, {ws})) = 'city'
          AND lower(trim(s, {ws})) = 'state' AND lower(trim(sh, {ws})) = 'shape'
          AND lower(trim(du, {ws})) = 'duration' AND lower(trim(su, {ws})) = 'summary'
          AND lower(trim(p, {ws})) = 'posted' AS is_header,
        regexp_extract(trim(p, {ws}), '^(\\d{{1,2}})/(\\d{{1,2}})/(\\d{{2}})$', ['m', 'd', 'y']) AS pp,
        regexp_extract(trim(w, {ws}), '^(\\d{{1,2}})/(\\d{{1,2}})/(\\d{{2}})(?: (\\d{{1,2}}):(\\d{{2}}))?$',
                       ['m', 'd', 'y', 'h', 'mi']) AS ss,
        upper(trim(s, {ws})) AS code
      FROM d),
    y AS (
      SELECT *, CASE WHEN pp.y = '' THEN NULL WHEN TRY_CAST(pp.y AS INTEGER) >= 70 THEN 1900 + TRY_CAST(pp.y AS INTEGER)
                     ELSE 2000 + TRY_CAST(pp.y AS INTEGER) END AS py
      FROM t),
    dates AS (
      SELECT *,
        CASE WHEN py IS NOT NULL AND TRY_CAST(pp.m AS INTEGER) BETWEEN 1 AND 12 AND TRY_CAST(pp.d AS INTEGER) BETWEEN 1 AND
             day(last_day(make_date(py, TRY_CAST(pp.m AS INTEGER), 1))) THEN make_date(py, TRY_CAST(pp.m AS INTEGER), TRY_CAST(pp.d AS INTEGER)) END
          AS posted_date,
        CASE WHEN ss.y = '' OR py IS NULL THEN NULL
             WHEN (py // 100) * 100 + TRY_CAST(ss.y AS INTEGER) <= py THEN (py // 100) * 100 + TRY_CAST(ss.y AS INTEGER)
             ELSE (py // 100) * 100 + TRY_CAST(ss.y AS INTEGER) - 100 END AS sy
      FROM y),
    sighted AS (
      SELECT *,
        CASE WHEN sy IS NOT NULL AND TRY_CAST(ss.m AS INTEGER) BETWEEN 1 AND 12 AND TRY_CAST(ss.d AS INTEGER) BETWEEN 1 AND
             day(last_day(make_date(sy, TRY_CAST(ss.m AS INTEGER), 1)))
             AND (ss.h = '' OR (TRY_CAST(ss.h AS INTEGER) BETWEEN 0 AND 24 AND TRY_CAST(ss.mi AS INTEGER) BETWEEN 0 AND 59))
             THEN make_date(sy, TRY_CAST(ss.m AS INTEGER), TRY_CAST(ss.d AS INTEGER)) END AS sighting_date
      FROM dates),
    o AS (
      SELECT n, code, sighting_date,
        CASE WHEN is_header THEN 'header_repeat'
             WHEN ragged THEN 'columns'
             WHEN posted_date IS NULL THEN 'posted'
             WHEN posted_date > DATE '{run_date}' THEN 'after_run_date'
             WHEN sighting_date IS NULL THEN 'sighting_date'
             WHEN code NOT IN ({", ".join(f"'{s}'" for s in sorted(_states()))}) THEN 'state'
             ELSE 'valid' END AS outcome
      FROM sighted)
    SELECT outcome, strftime(sighting_date, '%Y-%m') AS month, code,
           count(*) AS rows, sum(n) AS n
    FROM o GROUP BY ALL
    """
    counts: dict[str, int] = {}
    by_month_state: dict[tuple[str, str], int] = {}
    for outcome, month, code, rows, n in duckdb.sql(sql).fetchall():
        if outcome == "header_repeat":
            counts[outcome] = counts.get(outcome, 0) + n
            continue
        counts["duplicate"] = counts.get("duplicate", 0) + n - rows
        counts[outcome] = counts.get(outcome, 0) + rows
        if outcome == "valid":
            by_month_state[(month, code)] = rows
    reasons = {r: counts.get(r, 0) for r in ("columns", "posted", "sighting_date", "state")}
    quality = {
        "input": sum(counts.values()),
        **{k: counts.get(k, 0) for k in ("header_repeat", "duplicate", "after_run_date", "valid")},
        "rejected": sum(reasons.values()),
        "rejected_by_reason": reasons,
    }
    return quality, by_month_state


def _states() -> frozenset[str]:
    from spark_jobs.layouts import US_STATES

    return US_STATES
