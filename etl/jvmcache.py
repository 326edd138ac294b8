"""A class archive for the Spark driver's JVM: about 5 s off every spark-submit.

Before it does any work, a Spark driver loads and verifies some 25,000 classes from Spark's
jars: most of the 5 s a no-op spark-submit takes here, and a quarter of a daily
AggregateUFOsByState. Java (13 and later) can keep those classes, parsed and verified, in an
archive that later JVMs map at start (application class-data sharing, ``-XX:SharedArchiveFile``).

``python -m etl.jvmcache`` makes the archive once per Spark and Java installation by running
the Spark job on a small generated sample (about 40 s; ``make demo`` does it the first time).
AggregateUFOsByState then starts its driver with it whenever one exists for the installed Spark
and Java. An archive Java cannot use (another Java build, changed jars) is ignored by Java
itself, and the job runs as it would without one. ``UFO_JVM_ARCHIVE=off`` turns it off.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from etl import sample, source

#: Rows of the generated sample the archive is trained on (the job loads the classes it needs).
TRAINING_ROWS = 5000
#: Archives kept in the cache, the newest first (each about 160 MB).
KEEP_ARCHIVES = 3


def cache_dir() -> Path:
    """Where archives are kept: ``$UFO_JVM_CACHE``, or ``~/.cache/ufo-pipeline/jvm``."""
    configured = os.environ.get("UFO_JVM_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "ufo-pipeline" / "jvm"


def enabled() -> bool:
    return os.environ.get("UFO_JVM_ARCHIVE", "on").strip().lower() not in (
        "off",
        "0",
        "false",
        "no",
    )


def java_binary() -> str | None:
    """The ``java`` spark-submit starts: ``$JAVA_HOME/bin/java``, else the first on PATH."""
    home = os.environ.get("JAVA_HOME")
    if home and os.path.isfile(os.path.join(home, "bin", "java")):
        return os.path.realpath(os.path.join(home, "bin", "java"))
    found = shutil.which("java")
    return os.path.realpath(found) if found else None


def spark_jars(spark_submit: str) -> Path | None:
    """The jars folder of the Spark that ``spark_submit`` runs: beside its ``bin``, else
    ``$SPARK_HOME``'s, else pip's pyspark's (whose ``spark-submit`` script finds it so too)."""
    candidates = [Path(os.path.realpath(spark_submit)).parent.parent / "jars"]
    if os.environ.get("SPARK_HOME"):
        candidates.append(Path(os.environ["SPARK_HOME"]) / "jars")
    try:
        import pyspark

        candidates.append(Path(pyspark.__file__).parent / "jars")
    except ImportError:
        pass
    return next((c for c in candidates if c.is_dir()), None)


def fingerprint(spark_submit: str) -> str | None:
    """What an archive is valid for: this Java binary and these Spark jars (names, sizes, times).

    None when either cannot be found: no archive is used or made then.
    """
    java, jars = java_binary(), spark_jars(spark_submit)
    if java is None or jars is None:
        return None
    digest = hashlib.sha256()
    for path in [Path(java), *sorted(jars.iterdir())]:
        stat = path.stat()
        digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def archive_path(spark_submit: str) -> Path | None:
    found = fingerprint(spark_submit)
    return None if found is None else cache_dir() / f"spark-driver-{found}.jsa"


def driver_java_options(spark_submit: str) -> list[str]:
    """The driver's JVM options that map the archive, when there is one for this installation."""
    if not enabled():
        return []
    path = archive_path(spark_submit)
    if path is None or not path.is_file():
        return []
    return [f"-XX:SharedArchiveFile={path}"]


def build(spark_submit: str, timeout: float = 600) -> Path:
    """Make this installation's archive (replacing any) from one run of the Spark job."""
    from etl.tasks import SPARK_JOB

    path = archive_path(spark_submit)
    if path is None:
        raise RuntimeError("no java or no Spark jars found: install Java 17 and pyspark first")
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ufo-jvm-") as tmp:
        work = Path(tmp)
        day = dt.date(2019, 3, 29)
        csv_path = work / "sample.csv"
        with open(csv_path, "w", encoding="utf-8", newline="") as out:
            sample.write(out, sample.generate(TRAINING_ROWS, day))
        with open(work / "source.csv", "w", encoding="utf-8", newline="") as copy:
            source.ingest(str(csv_path), copy, str(work / "records.parquet"), "training sample")
        partial = work / "archive.jsa"
        command = [
            spark_submit, "--master", "local[*]",
            "--driver-java-options", f"-XX:ArchiveClassesAtExit={partial}",
            str(SPARK_JOB),
            "--snapshot", f"{day}=file://{work / 'records.parquet'}",
            "--output", f"file://{work / 'out'}",
        ]  # fmt: skip
        env = dict(os.environ, PYSPARK_PYTHON=os.environ.get("PYSPARK_PYTHON", sys.executable))
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0 or not partial.is_file():
            tail = (done.stdout + done.stderr)[-2000:]
            raise RuntimeError(f"the training run failed (exit {done.returncode}):\n{tail}")
        # Moved in whole: a JVM starting meanwhile sees the old archive, or none, never half.
        staged = path.with_name(f".{path.name}.{os.getpid()}")
        shutil.move(partial, staged)
        os.replace(staged, path)
    prune(path)
    return path


def prune(current: Path) -> None:
    """Remove the archives beside ``current`` but the newest ``KEEP_ARCHIVES - 1``: those of
    earlier installations (an upgraded Spark or Java) go, while one machine may still run the
    pipeline from more than one virtualenv (each its own archive)."""
    others = sorted(
        (p for p in current.parent.glob("spark-driver-*.jsa") if p != current),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for old in others[KEEP_ARCHIVES - 1 :]:
        old.unlink(missing_ok=True)


def default_spark_submit() -> str:
    found = shutil.which(
        "spark-submit",
        path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    )
    if found:
        return found
    import pyspark  # the pip package ships spark-submit

    return str(Path(pyspark.__file__).parent / "bin" / "spark-submit")


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
    path = archive_path(spark_submit)
    if args.if_missing and path is not None and path.is_file():
        return 0
    if path is not None:
        print("Making the Spark driver's class archive (once per Spark and Java install, ~40 s)")
    started = time.monotonic()
    try:
        built = build(spark_submit)
    except (RuntimeError, subprocess.TimeoutExpired) as err:
        level = "warning" if args.if_missing else "error"
        print(f"ufo: {level}: no class archive made: {err}", file=sys.stderr)
        return 0 if args.if_missing else 1
    size = built.stat().st_size >> 20
    print(f"Spark driver class archive: {built} ({size} MB, {time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
