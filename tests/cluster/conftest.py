"""Fixtures of the cluster tests: a real Spark standalone cluster and a real luigid, as local
processes on 127.0.0.1 (the helpers that drive them are in support.py).

The fast integration layer without Docker: the master, one worker and luigid are the same
programs the compose environment runs, started here from the venv (the pyspark package ships
``spark-class`` and the jars). luigid records its task history in the session's PostgreSQL.
Everything is stopped at the end: the Spark daemons and luigid with SIGTERM (luigid writes its
state then), SIGKILL only if they do not stop in time.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.cluster.support import (
    LOOPBACK,
    SMALL_RECORDS,
    START_TIMEOUT,
    Luigid,
    SparkCluster,
    head_of_file,
    spark_env,
    spark_home,
    start_luigid,
    stop_process,
    wait_until,
)
from tests.support import REAL_2019, free_port, new_database, shared_file


@pytest.fixture(scope="session")
def postgres():
    """The session's PostgreSQL, in a directory the ``postgres`` user can reach.

    Overrides tests/conftest.py's fixture for this directory: as root, pytest's base temporary
    directory is mode 0700, so the server (run as ``postgres``) cannot reach a data directory
    below it. A directory made directly in /tmp and handed to ``postgres`` can be reached.
    """
    from etl.errors import DatabaseError
    from etl.tools.localpg import LocalPostgres, _bin

    try:
        _bin("initdb")
    except DatabaseError as err:
        pytest.skip(str(err))
    directory = Path(tempfile.mkdtemp(prefix="ufo-cluster-pg-"))
    server = LocalPostgres(directory)
    try:
        yield server.start()
    finally:
        server.discard()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def spark_cluster(tmp_path_factory) -> Iterator[SparkCluster]:
    """A real Spark standalone master and one 1-core worker for the session."""
    directory = tmp_path_factory.mktemp("spark-cluster")
    cluster = SparkCluster(port=free_port(), webui_port=free_port(), directory=directory)
    spark_class = str(spark_home() / "bin" / "spark-class")
    env = spark_env()
    # The applications' defaults, as a deployment's spark-defaults.conf would give them: a
    # 1-core cluster gains nothing from 200 shuffle partitions, and the driver stays on loopback.
    cluster.conf_dir.mkdir()
    (cluster.conf_dir / "spark-defaults.conf").write_text(
        "spark.sql.shuffle.partitions 4\n"
        f"spark.driver.host {LOOPBACK}\n"
        f"spark.driver.bindAddress {LOOPBACK}\n"
        "spark.ui.showConsoleProgress false\n"
    )
    master_log = directory / "master.log"
    worker_log = directory / "worker.log"
    try:
        with master_log.open("w") as log:
            cluster.processes.append(
                subprocess.Popen(
                    [spark_class, "org.apache.spark.deploy.master.Master", "--host", LOOPBACK,
                     "--port", str(cluster.port), "--webui-port", str(cluster.webui_port)],
                    env=env, cwd=directory, stdout=log, stderr=subprocess.STDOUT,
                )
            )  # fmt: skip
        wait_until(cluster.state, "the Spark master's JSON API", START_TIMEOUT, master_log)
        work_dir = directory / "work"
        work_dir.mkdir()
        with worker_log.open("w") as log:
            cluster.processes.append(
                subprocess.Popen(
                    [spark_class, "org.apache.spark.deploy.worker.Worker", cluster.master_url,
                     "--host", LOOPBACK, "--port", str(free_port()), "--webui-port", str(free_port()),
                     "--cores", "1", "--memory", "1g", "--work-dir", str(work_dir)],
                    env=env, cwd=directory, stdout=log, stderr=subprocess.STDOUT,
                )
            )  # fmt: skip
        wait_until(
            cluster.alive_workers, "an ALIVE worker at the Spark master", START_TIMEOUT, worker_log
        )
        yield cluster
    finally:
        for process in reversed(cluster.processes):
            stop_process(process)


@pytest.fixture
def luigid_factory(tmp_path, postgres) -> Iterator[Callable[..., Luigid]]:
    """Start luigids with given ``[scheduler]``/``[resources]`` settings; all stopped afterwards."""
    started: list[Luigid] = []

    def factory(scheduler: dict | None = None, resources: dict | None = None) -> Luigid:
        history = new_database(postgres)
        server = start_luigid(tmp_path / f"luigid-{len(started)}", history, scheduler, resources)
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()


@pytest.fixture
def luigid(luigid_factory) -> Luigid:
    """A fresh luigid with the production-like defaults and ``spark_applications = 1``."""
    return luigid_factory()


@pytest.fixture(scope="session")
def small_source(tmp_path_factory) -> Path:
    """The first few thousand records of the real 2019 NUFORC file (skips when it is absent)."""
    real = shared_file(REAL_2019.name)
    return head_of_file(
        real, tmp_path_factory.mktemp("small-source") / "nuforc_head.csv", SMALL_RECORDS
    )
