"""Spark's history server for the local product (``make up``): finished applications stay
browsable.

The demo's Spark applications write their event logs to ``UFO_SPARK_EVENTS`` (``make demo``
sets ``.run/spark-events``); the history server started here reads them and serves them on
127.0.0.1:SPARK_HISTORY_PORT only (18080 unless set; ``make up`` writes that address into
``demo.env`` as ``UFO_SPARK_HISTORY_URL``). Its cleaner keeps event logs for ``MAX_AGE`` and at
most ``MAX_APPLICATIONS`` applications.
"""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path
from urllib.parse import urlsplit

from etl.adapters import spark
from etl.errors import UfoError

MAX_AGE = "30d"
MAX_APPLICATIONS = 1000


def check_local(url: str | None) -> None:
    """Refuse a UFO_SPARK_HISTORY_URL on another machine: `make up` would not start it there."""
    if url and urlsplit(url).hostname not in ("127.0.0.1", "localhost"):
        raise UfoError(
            f"UFO_SPARK_HISTORY_URL={url} is not on this machine: `make up` starts the history "
            "server on 127.0.0.1 only; remove it from demo.env, or run that server yourself."
        )


def command(events: str, port: int, host: str) -> tuple[list[str], dict[str, str]]:
    """The history server's command line and environment, reading ``events``."""
    directory = spark.event_log_conf(events)["spark.eventLog.dir"]  # made if local
    home = Path(find_spec("pyspark").origin).parent  # the pip package is a whole Spark
    spark_class = home / "bin" / "spark-class"
    options = {
        "spark.history.fs.logDirectory": directory,
        "spark.history.ui.port": str(port),
        "spark.history.fs.update.interval": "5s",
        "spark.history.fs.cleaner.enabled": "true",
        "spark.history.fs.cleaner.maxAge": MAX_AGE,
        "spark.history.fs.cleaner.maxNum": str(MAX_APPLICATIONS),
    }
    env = {
        "SPARK_HOME": str(home),
        # Spark's web UIs bind to SPARK_LOCAL_IP (every interface without it).
        "SPARK_LOCAL_IP": host,
        "SPARK_HISTORY_OPTS": " ".join(f"-D{k}={v}" for k, v in options.items()),
        "SPARK_NO_DAEMONIZE": "1",
    }
    return [str(spark_class), "org.apache.spark.deploy.history.HistoryServer"], env
