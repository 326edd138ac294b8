"""A Spark Connect server for the local product (``make up``): the warm Spark step.

``make up`` starts a Spark Connect server on 127.0.0.1:SPARK_CONNECT_PORT (15002 unless set),
in local mode with every core, and writes its address into ``.run/demo.env`` as
``UFO_SPARK_REMOTE``; the worker service it starts runs its AggregateUFOsByState steps against
it: no new driver JVM, a warm SQL engine whose sessions share the code it compiled
(``spark_jobs/connect_server.py``). It writes its event log where the demo's applications
do, so the history server lists it too. When it is stopped, runs go cold again (see
``spark_submit.py``).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.util import find_spec
from pathlib import Path
from urllib.parse import urlsplit

from etl.adapters import spark
from etl.errors import UfoError
from etl.tools.ports import free_port
from spark_jobs import CONNECT_SERVER


def check_local(remote: str | None) -> None:
    """Refuse a UFO_SPARK_REMOTE on another machine: `make up` would not start it there."""
    if remote and urlsplit(remote.replace("sc://", "http://", 1)).hostname not in (
        "127.0.0.1",
        "localhost",
    ):
        raise UfoError(
            f"UFO_SPARK_REMOTE={remote} is not on this machine: `make up` starts the Spark "
            "Connect server on 127.0.0.1 only; remove it from demo.env, or run that server "
            "yourself."
        )


def command(
    port: int, host: str, events: str | None, ui_port: int = 0, master: str = "local[*]"
) -> tuple[list[str], dict[str, str]]:
    """The server's command line and environment (event logs to ``events`` when given; its
    live UI on ``ui_port``, any free port when 0; its executors on ``master``: this machine's
    cores, or a cluster's)."""
    home = Path(find_spec("pyspark").origin).parent  # the pip package is a whole Spark
    conf = {
        "spark.connect.grpc.binding.address": host,
        "spark.connect.grpc.binding.port": str(port),
        # Not 4040, which the pipeline's own applications want. When it is given, a run on the
        # server reads it and says where the server's UI shows the run's jobs (its session).
        "spark.ui.port": str(ui_port),
        **(spark.event_log_conf(events) if events else {}),
    }
    cores = local_cores(master)
    if cores:
        # What Spark itself takes for a local master, said: a run then reads it from the
        # session's settings instead of asking it of a job (0.26 s a warm run, measured).
        conf["spark.default.parallelism"] = str(cores)
    argv = [str(home / "bin" / "spark-submit"), "--name", "Spark Connect server",
            "--master", master]  # fmt: skip
    for key, value in conf.items():
        argv += ["--conf", f"{key}={value}"]
    # The driver is this install's Python, which has PySpark.
    env = {"SPARK_HOME": str(home), "SPARK_LOCAL_IP": host, "PYSPARK_DRIVER_PYTHON": sys.executable}
    if cores:  # its Python workers (a run's UDFs: ReadUFOs on the cluster) are this install's
        env["PYSPARK_PYTHON"] = sys.executable
    return [*argv, str(CONNECT_SERVER)], env


def local_cores(master: str) -> int | None:
    """The cores of a local master (``local``, ``local[N]``, ``local[*]``, ``local[N,F]``) as
    Spark counts them; None for another master."""
    found = re.fullmatch(r"local(?:\[(\*|\d+)(?:,\s*\d+)?\])?", master.strip())
    if not found:
        return None
    if found.group(1) is None:
        return 1
    return (os.cpu_count() or 1) if found.group(1) == "*" else int(found.group(1))


def live_ui(log: Path) -> str | None:
    """The server's live UI, from its log (the line Spark writes as the UI starts)."""
    try:
        with open(log, "rb") as text:
            head = text.read(4 << 20).decode(errors="replace")
    except OSError:
        return None
    found = [spark.ui_address(line) for line in head.splitlines() if "Start Jetty" in line]
    return next((a for a in reversed(found) if a), None)


@contextmanager
def running(port: int, log: Path, timeout: float = 180) -> Iterator[str]:
    """A server on 127.0.0.1:``port`` for the body of the ``with`` (its output in ``log``), as
    `make up` starts one: its address once it answers; stopped afterwards."""
    argv, extra = command(port, "127.0.0.1", None, free_port("127.0.0.1"))
    address = f"sc://127.0.0.1:{port}"
    with open(log, "wb") as out:
        server = subprocess.Popen(argv, env=dict(os.environ, **extra), stdout=out,
                                  stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + timeout
        while not spark.connect_answers(address, timeout=1):
            if server.poll() is not None or time.monotonic() > deadline:
                raise UfoError(f"the Spark Connect server did not start; its log: {log}")
            time.sleep(0.5)
        yield address
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
