"""Make the Spark driver's class archive: about 5 s off every spark-submit.

``python -m etl.tools.jvmcache`` makes the archive once per Spark and Java on this machine by
running the Spark job on a small generated sample (``make demo`` does it the first time). That
took 35 s on an idle 2-core machine and 99 s on a busy one: the estimate it prints is the last
build's time on this machine when there was one, and it ticks while it runs. Another install of
the same Spark (a second clone, a new virtualenv) finds the archive made and only matches itself
to it (under a second). ``etl/adapters/classarchive.py`` says what the archive is, why it is
shared that way, and when the driver uses it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from etl.adapters import source
from etl.adapters.classarchive import DriverArchive, cache_dir, driver_archive, prune
from etl.adapters.spark import default_spark_submit
from etl.tools import sample
from etl.tools.ticker import ticking
from spark_jobs import AGGREGATE_BY_STATE

#: Rows of the generated sample the archive is trained on (the job loads the classes it needs).
TRAINING_ROWS = 5000
#: The last build's seconds, beside the archives: the next build's estimate.
LAST_BUILD = "last-build-seconds"


def build(spark_submit: str, timeout: float = 600) -> Path:
    """Make this Spark and Java's archive (replacing any) from one run of the Spark job, in the
    shared Spark home it is valid for."""
    found = driver_archive(spark_submit)
    if found is None:
        raise RuntimeError("no java or no Spark jars found: install Java 17 and pyspark first")
    path = found.path
    with tempfile.TemporaryDirectory(prefix="ufo-jvm-") as tmp:
        work = Path(tmp)
        day = dt.date(2019, 3, 29)
        csv_path = work / "sample.csv"
        with open(csv_path, "w", encoding="utf-8", newline="") as out:
            sample.write(out, sample.generate(TRAINING_ROWS, day))
        source.ingest(str(csv_path), str(work / "source.csv"), str(work / "records.parquet"),
                      "training sample")  # fmt: skip
        partial = work / "archive.jsa"
        command = [
            spark_submit, "--master", "local[*]",
            "--driver-java-options", f"-XX:ArchiveClassesAtExit={partial}",
            str(AGGREGATE_BY_STATE),
            "--snapshot", f"{day}=file://{work / 'records.parquet'}",
            "--output", f"file://{work / 'out'}",
        ]  # fmt: skip
        env = dict(os.environ, PYSPARK_PYTHON=os.environ.get("PYSPARK_PYTHON", sys.executable),
                   SPARK_HOME=str(found.home))  # fmt: skip
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0 or not partial.is_file():
            tail = (done.stdout + done.stderr)[-2000:]
            raise RuntimeError(f"the training run failed (exit {done.returncode}):\n{tail}")
        # Moved in whole: a JVM starting meanwhile sees the old archive, or none, never half.
        staged = path.with_name(f".{path.name}.{os.getpid()}")
        shutil.move(partial, staged)
        os.replace(staged, path)
    prune(found)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spark-submit", default=None, help="spark-submit (default: pyspark's)")
    parser.add_argument(
        "--if-missing",
        action="store_true",
        help="do nothing when the archive exists; if it cannot be made, warn and exit 0 (Spark "
        "then starts without it)",
    )
    args = parser.parse_args(argv)
    spark_submit = args.spark_submit or default_spark_submit()
    try:
        found: DriverArchive | None = driver_archive(spark_submit)  # matched to this install
    except OSError as err:
        print(f"ufo: warning: no class archive: the cache cannot be written: {err}",
              file=sys.stderr)  # fmt: skip
        return 0 if args.if_missing else 1
    if args.if_missing and found is not None and found.path.is_file():
        return 0
    message = (
        "Making the Spark driver's class archive: once per Spark and Java on this machine, "
        f"{estimate(cache_dir())}; every later spark-submit starts about 5 s sooner"
    )
    started = time.monotonic()
    try:
        with ticking(message):
            built = build(spark_submit)
    except (RuntimeError, subprocess.TimeoutExpired) as err:
        level = "warning" if args.if_missing else "error"
        print(f"ufo: {level}: no class archive made: {err}", file=sys.stderr)
        return 0 if args.if_missing else 1
    seconds = time.monotonic() - started
    (cache_dir() / LAST_BUILD).write_text(f"{seconds:.0f}\n")
    size = built.stat().st_size >> 20
    print(f"Spark driver class archive: {built} ({size} MB, {seconds:.0f} s)")
    return 0


def estimate(cache: Path) -> str:
    """How long a build takes here: the last one's time on this machine, else the range seen."""
    try:
        last = int((cache / LAST_BUILD).read_text().strip())
    except (OSError, ValueError):
        last = None
    if last:
        return f"about {last} s (the last build on this machine), longer while it is busy"
    return "35 s on an idle 2-core machine, up to 100 s on a busy one"


if __name__ == "__main__":
    sys.exit(main())
