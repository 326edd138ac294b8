"""Benchmark: the pipeline against baselines measured in the same run, as ratios.

    python bench/run.py [--source FILE] [--repeat 3] [--sizes 100000,1000000,10000000]
                        [--backfill 30,365] [--out .run/bench/results.json] [--no-make-up]
                                                                                (or: make bench)

Three measures, each against a baseline timed in the same run (these machines are noisy, so
only ratios within one run mean anything):

* daily latency: the whole chain (``TopStatesToDatabase`` on a fresh lake, local Spark, a private
  PostgreSQL) on the real 2019 index, cold (a new Spark application) and warm (against a Spark
  Connect server started here, as ``make up`` starts one), and warm as a user runs it after
  ``make up``, every service of the local product running (``bench/localproduct.py``; skipped
  with ``--no-make-up``), against a no-op ``spark-submit`` (JVM and SparkSession start-up: the
  floor of anything that starts Spark);
* scale, on generated files of each size (``python -m etl.tools.sample``): ``ReadUFOs`` +
  ``AggregateUFOsByState`` end to end against DuckDB computing the same data contract in SQL
  from the same CSV; ``ReadUFOs`` alone, its time and its process's peak memory;
  ``AggregateUFOsByState`` against DuckDB over the same raw-zone Parquet and against the
  plain-Python reference (``tests/reference.py``). DuckDB's figures, from the CSV and from the
  Parquet, must equal the pipeline's (a second independent check), or the benchmark fails;
* backfill: ``RangeDaily`` over 30, 365 and 3,652 (ten years of) run dates against one run
  date, with the database's and the lake's size after each, and producto's response time for
  the oldest and the newest date once ten years are loaded; and ``python -m etl.tools.rebuild``
  of the same dates from the lake into an empty database, against their backfill.

Prints a table and writes every timing and ratio as JSON.
"""

from __future__ import annotations

import argparse
import contextlib
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


def luigi(*args: str, env: dict, timeout: int = 7200) -> float:
    """Seconds ``python -m luigi --module etl ARGS --local-scheduler`` took; fails loudly."""
    return luigi_measured(*args, env=env, timeout=timeout)[0]


def luigi_measured(*args: str, env: dict, timeout: int = 7200) -> tuple[float, int]:
    """Seconds the run took and its process's peak memory (resident, bytes): with the local
    scheduler and one worker, Luigi runs the task in that process.

    The peak is the process's own high-water mark after it started Python (``VmHWM``), read
    while it runs: the kernel's ``ru_maxrss`` would also count this large process's pages,
    which the child shares between fork and exec.
    """
    start = time.perf_counter()
    peak = 0
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "luigi", "--module", "etl", *args, "--local-scheduler",
             "--no-lock"], env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=err,
        )  # fmt: skip
        while proc.poll() is None:
            peak = max(peak, _high_water_mark(proc.pid))
            if time.perf_counter() - start > timeout:
                proc.kill()
                raise SystemExit(f"luigi {' '.join(args)} took more than {timeout} s")
            time.sleep(0.05)
        took = time.perf_counter() - start
        if proc.returncode:
            err.seek(0)
            raise SystemExit(f"luigi {' '.join(args)} failed:\n{err.read().decode()[-3000:]}")
    return took, peak


def _high_water_mark(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:  # it has just ended
        pass
    return 0


@contextlib.contextmanager
def connect_server(tmp: Path):
    """A Spark Connect server on 127.0.0.1, as `make up` starts one: its address."""
    from etl.tools import connect
    from tests.support import free_port

    with connect.running(free_port(), tmp / "connect.log") as address:
        yield address


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


def published_aggregate(lake: Path, day: dt.date) -> tuple[dict, dict]:
    from etl.adapters.lake import LocalLake
    from etl.pipeline import ranking
    from etl.pipeline.targets import AggregateTarget

    aggregate = AggregateTarget(LocalLake(str(lake)), day)
    counts = {(month, state): n for month, state, n in ranking.rows(aggregate.load_counts())}
    quality = {k: v for k, v in aggregate.manifest()["quality"].items() if k != "run_date"}
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
            out[f"{label}_{name}"] = _timed(client, path)
    out["runs_page"] = _timed(client, "/api/v1/runs")
    out["runs_page"]["total"] = client.get("/api/v1/runs").json().get("total")
    return out


def _timed(client, path: str) -> dict:
    """The median time of 5 requests of ``path``, and the size of the answer."""
    times, size = [], 0
    for _ in range(5):
        start = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - start) * 1000)
        response.raise_for_status()
        size = len(response.content)
    return {"ms": median(times), "bytes": size}


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
    parser.add_argument("--no-make-up", dest="make_up", action="store_false",
                        help="skip the warm chain under make up (bench/localproduct.py)")  # fmt: skip
    args = parser.parse_args(argv)
    if not args.source.is_file():
        raise SystemExit(f"no source file {args.source}: give --source FILE (a NUFORC index)")

    from bench.contract import csv_records, duckdb_contract, parquet_records
    from bench.localproduct import warm_chain_under_make_up
    from bench.report import print_table
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
            # Daily latency, cold and warm, interleaved with its baseline.
            from etl.adapters import classarchive, spark

            # The archive's options and the shared Spark home they are valid for.
            archive_env = dict(
                base, **classarchive.driver_environment(spark.default_spark_submit())
            )
            archive = []
            if "SPARK_HOME" in archive_env:
                archive = classarchive.driver_java_options(spark.default_spark_submit())
            noop, noop_archive, chain, warm = [], [], [], []
            with connect_server(tmp) as remote:
                # One run first, untimed: the server's first query compiles its engine once.
                luigi("TopStatesToDatabase", "--date", str(RUN_DATE), "--force",
                      env=dict(base, UFO_STORAGE=str(tmp / "warmup"), UFO_SOURCE=str(args.source),
                               UFO_SPARK_REMOTE=remote))  # fmt: skip
                for i in range(args.repeat):
                    noop.append(noop_spark_submit(tmp, base))
                    if archive:
                        noop_archive.append(noop_spark_submit(tmp, archive_env, archive))
                    env = dict(
                        base, UFO_STORAGE=str(tmp / f"chain{i}"), UFO_SOURCE=str(args.source)
                    )
                    chain.append(luigi("TopStatesToDatabase", "--date", str(RUN_DATE), "--force",
                                       env=env))  # fmt: skip
                    env = dict(env, UFO_STORAGE=str(tmp / f"warm{i}"), UFO_SPARK_REMOTE=remote)
                    warm.append(luigi("TopStatesToDatabase", "--date", str(RUN_DATE), "--force",
                                      env=env))  # fmt: skip
                    print(f"round {i + 1}: no-op {noop[-1]:.1f} s, chain {chain[-1]:.1f} s cold, "
                          f"{warm[-1]:.1f} s warm", flush=True)  # fmt: skip
            results["daily"] = {"noop_spark_submit_s": noop, "chain_s": chain, "warm_chain_s": warm,
                                "ratio_chain_to_noop": median(chain) / median(noop),
                                "ratio_warm_chain_to_noop": median(warm) / median(noop),
                                "class_archive": bool(archive)}  # fmt: skip
            if args.make_up:  # the warm chain as a user runs it, on the local product
                made_up = warm_chain_under_make_up(tmp, args.source, RUN_DATE, args.repeat)
                results["daily"]["warm_chain_make_up_s"] = made_up
                results["daily"]["ratio_warm_make_up_to_noop"] = median(made_up) / median(noop)
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
                # On disk before anything is timed: the kernel throttles a writer while earlier
                # writes wait to be flushed, and ReadUFOs (which writes the lake's UTF-8 copy and
                # Parquet) took 11-24 s instead of 4.4 s just after the 1 GB file was written.
                os.sync()
                lake = tmp / f"scale{size}"
                env = dict(base, UFO_STORAGE=str(lake), UFO_SOURCE=str(src))
                read_s, read_peak = luigi_measured("ReadUFOs", "--date", str(RUN_DATE), env=env)
                spark_s = luigi("AggregateUFOsByState", "--date", str(RUN_DATE), env=env)
                parquet = raw_parquet(lake, RUN_DATE)
                start = time.perf_counter()
                dq, dcounts = duckdb_contract(parquet_records(parquet), RUN_DATE)
                duck_s = time.perf_counter() - start
                start = time.perf_counter()
                eq, ecounts = duckdb_contract(csv_records(str(src)), RUN_DATE)
                duck_csv_s = time.perf_counter() - start
                pq_, pcounts = published_aggregate(lake, RUN_DATE)
                if not (dq, dcounts) == (eq, ecounts) == (pq_, pcounts):
                    raise SystemExit(
                        f"DuckDB and the pipeline disagree at {size} rows:\n{dq}\n{eq}\n{pq_}"
                    )
                entry = {"bytes": src.stat().st_size, "read_ufos_s": read_s,
                         "read_ufos_peak_bytes": read_peak, "aggregate_s": spark_s,
                         "duckdb_s": duck_s, "duckdb_from_csv_s": duck_csv_s,
                         "ratio_aggregate_to_duckdb": spark_s / duck_s,
                         "ratio_end_to_end_to_duckdb": (read_s + spark_s) / duck_csv_s}  # fmt: skip
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
                if days > 1:  # the same dates rebuilt from the lake into an empty database
                    rebuilt_url = pg.create_database(f"rebuild{days}")
                    start = time.perf_counter()
                    subprocess.run([sys.executable, "-m", "etl.tools.rebuild"], check=True,
                                   env=dict(env, UFO_DATABASE_URL=rebuilt_url), cwd=REPO)  # fmt: skip
                    results["backfill"][days]["rebuild_s"] = time.perf_counter() - start
                    results["backfill"][days]["ratio_rebuild_to_backfill"] = (
                        results["backfill"][days]["rebuild_s"] / took
                    )
                print(f"backfill of {days} run date(s): {results['backfill'][days]}", flush=True)
            one = results["backfill"][1]["seconds"]
            for entry in results["backfill"].values():
                entry["ratio_to_one_date"] = entry["seconds"] / one
        finally:
            pg.discard()

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print_table(results)
    print(f"\nall figures: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
