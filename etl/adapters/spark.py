"""How the pipeline starts Spark: the spark-submit to run, the driver's class archive and JIT.

Before it does any work, a Spark driver loads and verifies some 25,000 classes from Spark's
jars: most of the 5 s a no-op spark-submit takes here, and a quarter of a daily
AggregateUFOsByState. Java (13 and later) can keep those classes, parsed and verified, in an
archive that later JVMs map at start (application class-data sharing, ``-XX:SharedArchiveFile``).
``python -m etl.tools.jvmcache`` makes one per Spark and Java installation; the driver is
started with it whenever one exists for the installed Spark and Java (and UFO_JVM_ARCHIVE is
not ``off``). An archive Java cannot use (another Java build, changed jars) is ignored by Java
itself, and the job runs as it would without one.

A driver that works briefly (a small input, or executors of its own doing the work) is started
with the quick JIT only (``QUICK_JIT``); luigi.cfg's ``[spark] driver-java-options`` come after
it and win.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from pathlib import Path
from urllib.parse import urlsplit

from etl.settings import setting


def default_spark_submit() -> str:
    found = shutil.which(
        "spark-submit",
        path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    )
    if found:
        return found
    import pyspark  # the pip package ships spark-submit

    return str(Path(pyspark.__file__).parent / "bin" / "spark-submit")


def cache_dir() -> Path:
    """Where archives are kept (UFO_JVM_CACHE)."""
    return setting("jvm_cache")


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


#: The driver's JIT for a brief run: the quick compiler (C1) only. A JVM that lives a few seconds
#: gains nothing from the optimizing compiler (C2) but its cost: on two cores its compiler threads
#: took half the CPU of a cold Spark step on the 2019 index (26 s of CPU; 14 s without them, and
#: 3.5 s less wall time). A driver that works through millions of rows itself (a local master on
#: a large input) keeps both: C2's code runs them faster.
QUICK_JIT = "-XX:TieredStopAtLevel=1"


def driver_java_options(spark_submit: str) -> list[str]:
    """The driver's JVM options that map the archive, when there is one for this installation."""
    if not setting("jvm_archive"):
        return []
    path = archive_path(spark_submit)
    if path is None or not path.is_file():
        return []
    return [f"-XX:SharedArchiveFile={path}"]


#: An application's event log is rolled into files of this size, so that a long one stays
#: readable and the history server's cleaner can drop old parts.
EVENT_LOG_FILE_SIZE = "64m"


def event_log_conf(where: str) -> dict[str, str]:
    """``spark.eventLog.*`` settings for event logs under ``where`` (a directory, a ``file:``
    URI, or a URI such as ``s3a://bucket/spark-events``); a local directory is made first,
    since Spark refuses to start without it."""
    if "://" not in where and not where.startswith("file:"):
        path = Path(where).expanduser().resolve()
        path.mkdir(parents=True, exist_ok=True)
        where = path.as_uri()
    elif where.startswith("file:"):
        Path(urlsplit(where).path).mkdir(parents=True, exist_ok=True)
    return {
        "spark.eventLog.enabled": "true",
        "spark.eventLog.dir": where,
        "spark.eventLog.rolling.enabled": "true",
        "spark.eventLog.rolling.maxFileSize": EVENT_LOG_FILE_SIZE,
    }


def history_page(history_url: str, application_id: str) -> str:
    """The history server's page of one application."""
    return f"{history_url.rstrip('/')}/history/{application_id}/jobs/"


#: Seconds to wait for a Spark Connect server to accept a connection before running cold.
CONNECT_PROBE_TIMEOUT = 3.0


def connect_answers(remote: str, timeout: float = CONNECT_PROBE_TIMEOUT) -> bool:
    """Whether the Spark Connect server at ``remote`` (``sc://host:port``) accepts connections."""
    import socket

    address = urlsplit(remote.split(";", 1)[0].replace("sc://", "http://", 1))
    try:
        with socket.create_connection((address.hostname, address.port or 15002), timeout):
            return True
    except OSError:  # refused, unknown host (a compose profile that is off), timed out
        return False
