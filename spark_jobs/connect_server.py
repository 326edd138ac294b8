"""A Spark Connect server whose sessions share the SQL engine's compiled code.

``make up`` runs it (``etl/tools/connect.py``), and so can anyone::

    spark-submit --conf spark.connect.grpc.binding.port=15002 spark_jobs/connect_server.py

It is Spark's own server (``SparkConnectPlugin``) in a PySpark driver that does nothing else,
started differently from Spark's ``SparkConnectServer`` in one respect: artifact isolation is
off, as in any PySpark application (PySpark turns it off by default).
``SparkConnectServer`` turns it on and gives every session, and every session's tasks on the
executors, a class loader of their own; Spark keeps the classes it generates for a query per
class loader, so every session compiled the pipeline's job's 45 classes again and ran them
cold: about 0.7 s of each warm run (measured). Here a session after the first compiles 2.

What sessions then share besides: a jar, file or class a session adds (``addArtifacts``) is
seen by the others. Each session keeps its own settings, temporary views and state. This
server is for one team's runs (``make up`` binds it to 127.0.0.1); a server shared by users who
must not see each other's artifacts is Spark's own ``SparkConnectServer``.

It runs until it is sent SIGTERM or SIGINT, then stops the server and its session (which writes
the end of the event log). A JVM stopped on its own (SIGTERM to its pid) stops the session as it
exits, and this driver follows it within ``WATCH_SECONDS``.
"""

from __future__ import annotations

import os
import signal
import threading

from pyspark import SparkConf
from pyspark.sql import SparkSession

PLUGIN = "org.apache.spark.sql.connect.SparkConnectPlugin"

#: Set on the session, whatever spark-submit was given: what makes this server share its code.
SETTINGS = {
    "spark.sql.artifact.isolation.enabled": "false",
    "spark.sql.artifact.isolation.alwaysApplyClassloader": "false",
}


#: How often the driver checks that the JVM that started it still runs.
WATCH_SECONDS = 2.0


def plugins(given: str) -> str:
    """``spark.plugins`` with the Spark Connect plugin added to those given (once)."""
    names = [name.strip() for name in given.split(",") if name.strip()]
    return ",".join(names if PLUGIN in names else [*names, PLUGIN])


def main() -> None:
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    given = SparkConf().get("spark.plugins", "")
    builder = SparkSession.builder.config("spark.plugins", plugins(given))
    for key, value in SETTINGS.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    print("Spark Connect server ready", flush=True)
    jvm = os.getppid()  # spark-submit's JVM started this driver
    while not stop.wait(WATCH_SECONDS):
        if os.getppid() != jvm:  # the JVM was stopped on its own: nothing left to stop here
            return
    try:
        session.stop()  # the server with it, and the event log's end written
    except Exception:  # noqa: BLE001 - the JVM, sent the same signal, may be gone already
        pass


if __name__ == "__main__":
    main()
