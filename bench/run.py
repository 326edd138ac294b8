"""Benchmark: the pipeline against baselines measured in the same run, as ratios.

    python bench/run.py [--source FILE] [--repeat 3]        (or: make bench)

Times, each ``--repeat`` times, medians reported:

* ``spark_submit_noop``: a spark-submit of an application that does nothing (JVM start-up);
* ``chain``: the whole chain (ReadUFOs -> ... -> TopStatesToDatabase), forced, on the file,
  local Spark, a private PostgreSQL;
* ``python_reference``: the same aggregation by a single process in plain Python (the test
  suite's independent reading of the data contract);
* ``duckdb_scan``: DuckDB reading the same CSV and counting reports per state (a floor for a
  single-process engine; not the full contract).

Timings are for comparison within one run only: these machines are noisy.
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


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def spark_submit() -> str:
    from etl.tasks import AggregateUFOsByState

    return AggregateUFOsByState(date=RUN_DATE).spark_submit


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "latest.json")
    args = parser.parse_args(argv)
    if not args.source.is_file():
        print(
            f"bench: no source file {args.source}: give --source (e.g. from python -m etl.sample)",
            file=sys.stderr,
        )
        return 2

    from etl.localpg import LocalPostgres
    from tests import reference

    env = dict(os.environ, SPARK_LOCAL_IP="127.0.0.1", PYSPARK_PYTHON=sys.executable)
    work = Path(tempfile.mkdtemp(prefix="ufo-bench-"))
    server = LocalPostgres(work / "postgres").start()
    env.update(UFO_SOURCE=str(args.source), UFO_STORAGE=str(work / "lake"), UFO_DATABASE_URL=server.url,
               SPARK_MASTER="local[*]")  # fmt: skip
    data = args.source.read_bytes()

    def noop():
        subprocess.run([spark_submit(), "--master", "local[1]", str(REPO / "bench" / "noop_app.py")],
                       env=env, check=True, capture_output=True)  # fmt: skip

    def chain():
        subprocess.run([sys.executable, "-m", "luigi", "--module", "etl", "TopStatesToDatabase",
                        "--date", RUN_DATE.isoformat(), "--local-scheduler", "--no-lock", "--force-upstream"],
                       env=env, cwd=REPO, check=True, capture_output=True)  # fmt: skip

    def python_reference():
        reference.classify(data, RUN_DATE).top_ten()

    def duckdb_scan():
        import duckdb

        duckdb.sql(
            "SELECT upper(trim(State)) AS state, count(*) FROM read_csv(?, all_varchar=true, header=true, "
            "quote='\"', escape='\"', strict_mode=false) GROUP BY 1",
            params=[str(args.source)],
        ).fetchall()

    cases = {
        "spark_submit_noop": noop,
        "chain": chain,
        "python_reference": python_reference,
        "duckdb_scan": duckdb_scan,
    }
    times: dict[str, list[float]] = {name: [] for name in cases}
    try:
        for i in range(args.repeat):  # interleaved, so drift hits every case alike
            for name, fn in cases.items():
                times[name].append(timed(fn))
                print(f"  round {i + 1}: {name:<18} {times[name][-1]:7.2f} s", flush=True)
    finally:
        server.stop()
    median = {name: statistics.median(values) for name, values in times.items()}
    ratios = {
        "chain / spark_submit_noop": median["chain"] / median["spark_submit_noop"],
        "chain / python_reference": median["chain"] / median["python_reference"],
        "python_reference / duckdb_scan": median["python_reference"] / median["duckdb_scan"],
    }
    print(
        f"\nsource: {args.source} ({len(data):,} bytes), {args.repeat} rounds, {os.cpu_count()} cores"
    )
    for name, value in median.items():
        print(f"  median {name:<18} {value:7.2f} s")
    for name, value in ratios.items():
        print(f"  ratio  {name:<32} {value:6.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {"source": str(args.source), "times": times, "median": median, "ratios": ratios},
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
