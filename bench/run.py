"""Benchmark: the pipeline against baselines measured in the same run, as ratios.

    python bench/run.py [--source FILE] [--repeat 3] [--sizes 100000,1000000,10000000]
                        [--backfill 30,365] [--out .run/bench/results.json]     (or: make bench)

Three measures, each against a baseline timed in the same run (these machines are noisy, so
only ratios within one run mean anything):

* daily latency: the whole chain (``TopStatesToDatabase`` on a fresh lake, local Spark, a private
  PostgreSQL) on the real 2019 index, against a no-op ``spark-submit`` (JVM and SparkSession
  start-up: the floor of anything that starts Spark);
* scale: ``AggregateUFOsByState`` on generated files of each size (``python -m etl.tools.sample``),
  against DuckDB computing the same data contract in SQL over the same raw-zone Parquet, and the
  plain-Python reference (``tests/reference.py``) over the CSV. DuckDB's figures must equal the
  pipeline's (a second independent check), or the benchmark fails;
* backfill: ``RangeDaily`` over 30, 365 and 3,652 (ten years of) run dates against one run
  date, with the database's and the lake's size after each, and producto's response time for
  the oldest and the newest date once ten years are loaded.

Prints a table and writes every timing and ratio as JSON.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

DEFAULT_SOURCE = REPO.parent / "shared" / "data" / "ufo" / "nuforc_index_2019-03-21.csv"
RUN_DATE = dt.date(2019, 3, 29)
WS = " \t\r\n\f\v"


def luigi(*args: str, env: dict, timeout: int = 7200) -> float:
    """Seconds ``python -m luigi --module etl ARGS --local-scheduler`` took; fails loudly."""
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "luigi", "--module", "etl", *args, "--local-scheduler", "--no-lock"],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    took = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"luigi {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return took


def noop_spark_submit(tmp: Path, env: dict, java_options: list[str] = ()) -> float:
    """Seconds of a spark-submit that starts a SparkSession and stops it: plain, or with
    ``java_options`` for its driver (the class archive the pipeline's own runs use)."""
    app = tmp / "noop.py"
    app.write_text(
        "from pyspark.sql import SparkSession\n"
        "SparkSession.builder.appName('noop').getOrCreate().stop()\n"
    )
    from etl.pipeline import AggregateUFOsByState

    submit = AggregateUFOsByState(date=RUN_DATE).spark_submit
    start = time.perf_counter()
    options = ["--driver-java-options", " ".join(java_options)] if java_options else []
    subprocess.run([submit, "--master", "local[*]", *options, str(app)], env=env, check=True,
                   capture_output=True, timeout=600)  # fmt: skip
    return time.perf_counter() - start


def duckdb_contract(parquet: str, run_date: dt.date) -> tuple[dict, dict]:
    """The data contract (index layout, rules 3-10) in DuckDB SQL: (quality, {(month, state): n})."""
    import duckdb

    ws = "".join(f"chr({ord(c)})" if i == 0 else f" || chr({ord(c)})" for i, c in enumerate(WS))
    sql = f"""
    WITH src AS (
      SELECT "Date / Time" AS w, "City" AS c, "State" AS s, "Shape" AS sh, "Duration" AS du,
             "Summary" AS su, "Posted" AS p, "_record" AS rec FROM read_parquet('{parquet}')),
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


def published_aggregate(lake: Path, day: dt.date) -> tuple[dict, dict]:
    from etl.adapters.lake import LocalLake
    from etl.pipeline import ranking
    from etl.pipeline.targets import AggregateTarget

    aggregate = AggregateTarget(LocalLake(str(lake)), day)
    counts = {(month, state): n for month, state, n in ranking.rows(aggregate.load_counts())}
    quality = {k: v for k, v in aggregate.quality().items() if k != "run_date"}
    return quality, counts


def raw_parquet(lake: Path, day: dt.date) -> str:
    manifest = json.loads((lake / f"raw/date={day}/_MANIFEST.json").read_text())
    return str(lake / manifest["files"]["records"][0])


def database_bytes(url: str) -> int:
    """The database's size on disk (tables, indexes, TOAST), after a VACUUM."""
    import sqlalchemy as sa

    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text("VACUUM"))
        size = conn.execute(sa.text("SELECT pg_database_size(current_database())")).scalar_one()
    engine.dispose()
    return int(size)


def lake_bytes(root: Path) -> int:
    """The lake's bytes on disk, each file once however many names (hard links) it has."""
    seen: dict[tuple[int, int], int] = {}
    for path in root.rglob("*"):
        if path.is_file():
            st = path.stat()
            seen[(st.st_dev, st.st_ino)] = st.st_size
    return sum(seen.values())


def producto_timings(url: str, oldest: dt.date) -> dict:
    """Milliseconds (median of 5) and bytes of producto's answers for the oldest and the newest
    run date, and of a page of the run list, in process (the app and its queries; no network)."""
    from fastapi.testclient import TestClient

    from producto.app import create_app
    from producto.settings import Settings

    client = TestClient(create_app(Settings(url)))
    out = {}
    for label, day in (("oldest", oldest), ("newest", RUN_DATE)):
        for name, path in (
            ("top_states", f"/api/v1/runs/{day}/top-states"),
            ("state_sightings", f"/api/v1/runs/{day}/state-sightings?period=all"),
            ("rejects", f"/api/v1/runs/{day}/rejects?limit=10"),
            ("page", f"/?run_date={day}"),
        ):
            times, size = [], 0
            for _ in range(5):
                start = time.perf_counter()
                response = client.get(path)
                times.append((time.perf_counter() - start) * 1000)
                response.raise_for_status()
                size = len(response.content)
            out[f"{label}_{name}"] = {"ms": median(times), "bytes": size}
    response = client.get("/api/v1/runs")
    out["runs_page"] = {"bytes": len(response.content), "total": response.json().get("total")}
    return out


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sizes", default="100000,1000000,10000000")
    parser.add_argument("--backfill", default="30,365,3652")
    parser.add_argument("--reference-max", type=int, default=1_000_000,
                        help="largest size the plain-Python reference is timed on")  # fmt: skip
    parser.add_argument("--out", type=Path, default=REPO / ".run" / "bench" / "results.json")
    args = parser.parse_args(argv)
    if not args.source.is_file():
        raise SystemExit(f"no source file {args.source}: give --source FILE (a NUFORC index)")

    from etl.tools import sample
    from etl.tools.localpg import LocalPostgres
    from tests import reference

    results: dict = {"machine": os.uname().nodename, "cpus": os.cpu_count(), "when":
                     dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="ufo-bench-") as tmp_name:
        tmp = Path(tmp_name)
        pg = LocalPostgres(tmp / "pg").start()
        base = dict(os.environ, SPARK_MASTER="local[*]", SPARK_LOCAL_IP="127.0.0.1",
                    UFO_DATABASE_URL=pg.url)  # fmt: skip
        base.pop("UFO_LOG_DIR", None)
        # spark-submit finds Spark through the python on PATH: this interpreter's, with pyspark.
        base["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), base.get("PATH", "")])
        base.setdefault("PYSPARK_PYTHON", sys.executable)
        try:
            # Daily latency, interleaved with its baseline.
            from etl.adapters import spark

            archive = spark.driver_java_options(spark.default_spark_submit())
            noop, noop_archive, chain = [], [], []
            for i in range(args.repeat):
                noop.append(noop_spark_submit(tmp, base))
                if archive:
                    noop_archive.append(noop_spark_submit(tmp, base, archive))
                env = dict(base, UFO_STORAGE=str(tmp / f"chain{i}"), UFO_SOURCE=str(args.source))
                chain.append(luigi("TopStatesToDatabase", "--date", str(RUN_DATE), "--force",
                                   env=env))  # fmt: skip
                print(f"round {i + 1}: no-op {noop[-1]:.1f} s, chain {chain[-1]:.1f} s", flush=True)
            results["daily"] = {"noop_spark_submit_s": noop, "chain_s": chain,
                                "ratio_chain_to_noop": median(chain) / median(noop),
                                "class_archive": bool(archive)}  # fmt: skip
            if noop_archive:
                results["daily"]["noop_with_class_archive_s"] = noop_archive
                results["daily"]["ratio_chain_to_noop_with_class_archive"] = median(chain) / median(
                    noop_archive
                )

            # Scale.
            results["scale"] = {}
            for size in [int(s) for s in args.sizes.split(",") if s]:
                src = tmp / f"sample_{size}.csv"
                with open(src, "w", encoding="utf-8", newline="") as out:
                    sample.write(out, sample.generate(size, until=RUN_DATE, seed=size % 997))
                lake = tmp / f"scale{size}"
                env = dict(base, UFO_STORAGE=str(lake), UFO_SOURCE=str(src))
                read_s = luigi("ReadUFOs", "--date", str(RUN_DATE), env=env)
                spark_s = luigi("AggregateUFOsByState", "--date", str(RUN_DATE), env=env)
                parquet = raw_parquet(lake, RUN_DATE)
                start = time.perf_counter()
                dq, dcounts = duckdb_contract(parquet, RUN_DATE)
                duck_s = time.perf_counter() - start
                pq_, pcounts = published_aggregate(lake, RUN_DATE)
                if (dq, dcounts) != (pq_, pcounts):
                    raise SystemExit(
                        f"DuckDB and the pipeline disagree at {size} rows:\n{dq}\n{pq_}"
                    )
                entry = {"bytes": src.stat().st_size, "read_ufos_s": read_s,
                         "aggregate_s": spark_s, "duckdb_s": duck_s,
                         "ratio_aggregate_to_duckdb": spark_s / duck_s}  # fmt: skip
                if size <= args.reference_max:
                    start = time.perf_counter()
                    expected = reference.classify(src.read_bytes(), RUN_DATE)
                    entry["python_reference_s"] = time.perf_counter() - start
                    entry["ratio_aggregate_to_python"] = spark_s / entry["python_reference_s"]
                    assert {k: pq_[k] for k in expected.quality()} == expected.quality()
                results["scale"][size] = entry
                print(f"{size} rows: {entry}", flush=True)

            # Backfill: one run date, then N, each into a fresh lake and database.
            results["backfill"] = {}
            for days in [1] + [int(d) for d in args.backfill.split(",") if d]:
                start_day = RUN_DATE - dt.timedelta(days=days - 1)
                url = pg.create_database(f"backfill{days}")
                env = dict(base, UFO_STORAGE=str(tmp / f"backfill{days}"),
                           UFO_SOURCE=str(args.source), UFO_DATABASE_URL=url)  # fmt: skip
                took = luigi("RangeDaily", "--of", "TopStatesToDatabase", "--start", str(start_day),
                             "--stop", str(RUN_DATE + dt.timedelta(days=1)), "--days-back", "36500",
                             "--task-limit", str(days + 1), env=env)  # fmt: skip
                results["backfill"][days] = {
                    "seconds": took,
                    "database_bytes": database_bytes(url),
                    "lake_bytes": lake_bytes(tmp / f"backfill{days}"),
                }
                if days > 365:
                    results["backfill"][days]["producto"] = producto_timings(url, start_day)
                print(f"backfill of {days} run date(s): {results['backfill'][days]}", flush=True)
            one = results["backfill"][1]["seconds"]
            for entry in results["backfill"].values():
                entry["ratio_to_one_date"] = entry["seconds"] / one
        finally:
            pg.stop()

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print_table(results)
    print(f"\nall figures: {args.out}")
    return 0


def print_table(results: dict) -> None:
    daily = results["daily"]
    print("\n| measure | time | baseline | ratio |\n|---|---|---|---|")
    print(f"| chain on the real 2019 file / no-op spark-submit | {median(daily['chain_s']):.1f} s "
          f"| {median(daily['noop_spark_submit_s']):.1f} s | {daily['ratio_chain_to_noop']:.2f} |")  # fmt: skip
    if "noop_with_class_archive_s" in daily:
        print(f"| the same / no-op spark-submit with the class archive | {median(daily['chain_s']):.1f} s "
              f"| {median(daily['noop_with_class_archive_s']):.1f} s "
              f"| {daily['ratio_chain_to_noop_with_class_archive']:.2f} |")  # fmt: skip
    for size, e in results["scale"].items():
        print(f"| AggregateUFOsByState, {int(size):,} rows / DuckDB, same contract | "
              f"{e['aggregate_s']:.1f} s | {e['duckdb_s']:.2f} s | {e['ratio_aggregate_to_duckdb']:.1f} |")  # fmt: skip
        if "python_reference_s" in e:
            print(f"| AggregateUFOsByState, {int(size):,} rows / plain Python | {e['aggregate_s']:.1f} s "
                  f"| {e['python_reference_s']:.1f} s | {e['ratio_aggregate_to_python']:.2f} |")  # fmt: skip
    one = (
        results["backfill"]["1"]["seconds"]
        if "1" in results["backfill"]
        else results["backfill"][1]["seconds"]
    )
    for days, e in results["backfill"].items():
        if int(days) > 1:
            print(f"| RangeDaily over {days} run dates / one run date | {e['seconds']:.1f} s "
                  f"| {one:.1f} s | {e['ratio_to_one_date']:.2f} |")  # fmt: skip
    print("\n| run dates loaded | database | lake |\n|---|---|---|")
    for days, e in results["backfill"].items():
        if "database_bytes" in e:
            print(
                f"| {days} | {e['database_bytes'] / 1e6:.1f} MB | {e['lake_bytes'] / 1e6:.1f} MB |"
            )
    for days, e in results["backfill"].items():
        for name, t in e.get("producto", {}).items():
            print(
                f"| producto after {days} dates: {name} | {t.get('ms', 0):.1f} ms | {t['bytes']:,} bytes |"
            )


if __name__ == "__main__":
    sys.exit(main())
