"""The stack's servers on the several-hosts test's hosts (network.py), and what the test asks
of them: each server is the program the product or tests/cluster runs, started on its host's
address and on a fixed port, and waited for within a bound."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from etl.adapters.spark import QUICK_JIT
from etl.tools import connect, history
from tests.cluster.support import (
    START_TIMEOUT,
    spark_home,
    wait_until,
    write_luigid_config,
)
from tests.hosts.network import Host, kill_group
from tests.s3a import MotoS3, write_spark_conf_dir

# Fixed ports: every host is a fresh namespace, so none is taken, and they are the ports a
# deployment on several machines would open between them.
MOTO_PORT = 9000
POSTGRES_PORT = 5432
LUIGID_PORT = 8082
MASTER_PORT = 7077
MASTER_UI_PORT = 8080
HISTORY_PORT = 18080
WORKER_PORT = 7078
WORKER_UI_PORT = 8081
CONNECT_PORT = 15002
CONNECT_UI_PORT = 4041
DRIVER_UI_PORT = 4040
DRIVER_PORT = 7079
BLOCK_MANAGER_PORT = 7089

BUCKET = "ufo-hosts"
LAKE = f"s3://{BUCKET}/lake"
EVENTS = f"s3a://{BUCKET}/spark-events"

#: A worker that stops answering is noticed within seconds, not Spark's minutes: the master
#: drops a worker after ``spark.worker.timeout`` s without a heartbeat, and tells the driver its
#: executors are lost. Master and workers both need it: a worker sends its heartbeat every
#: quarter of *its own* setting (15 s by default, which a 10 s master takes for a lost worker).
WORKER_TIMEOUT_OPTS = "-Dspark.worker.timeout=10"
#: The JVMs that only coordinate (master, workers, history server) and the executors of these
#: short runs gain nothing from the optimizing JIT on two cores.
DAEMON_JAVA_OPTS = QUICK_JIT


def wait_on(host: Host, check: Callable[[], object], what: str, timeout: float, label: str):
    """wait_until, failing at once (with its log) if ``label``'s process has exited."""

    def alive_and_checked() -> object:
        process = host.processes[label]
        if process.poll() is not None:
            pytest.fail(
                f"{label} on {host.name} exited with {process.returncode}:\n{host.tail(label)}"
            )
        return check()

    return wait_until(alive_and_checked, what, timeout, host.log(label))


# --------------------------------------------------------------------------------------------
# The store: moto S3, PostgreSQL and luigid


def start_moto(host: Host) -> MotoS3:
    """moto's S3 server on the host's address, with the lake's bucket and the event log's
    directory marker (Spark refuses an event log directory that does not exist)."""
    process = host.start(
        "moto", [sys.executable, "-m", "moto.server", "-H", host.address, "-p", str(MOTO_PORT)],
        host.env(),
    )  # fmt: skip
    server = MotoS3(f"http://{host.address}:{MOTO_PORT}", process)
    wait_on(host, lambda: host.answers(MOTO_PORT), "moto's S3 server", START_TIMEOUT, "moto")

    def make_bucket() -> None:
        client = server.client()
        client.create_bucket(Bucket=BUCKET)
        client.put_object(Bucket=BUCKET, Key="spark-events/", Body=b"")

    host.call(make_bucket)
    return server


@dataclass
class Postgres:
    """PostgreSQL on the store host's address; its data directory is where ``postgres`` may
    enter (pytest's temporary directories are closed to it as root)."""

    host: Host
    directory: Path

    def url(self, database: str) -> str:
        return f"postgresql+psycopg2://postgres@{self.host.address}:{POSTGRES_PORT}/{database}"

    def create_database(self, name: str) -> str:
        import sqlalchemy as sa

        def create() -> None:
            admin = sa.create_engine(self.url("postgres"), isolation_level="AUTOCOMMIT")
            try:
                with admin.connect() as conn:
                    conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
            finally:
                admin.dispose()

        self.host.call(create)
        return self.url(name)

    def stop(self) -> None:
        # SIGINT: the fast shutdown (SIGTERM would wait for every client to leave).
        self.host.stop("postgres", signal.SIGINT)
        shutil.rmtree(self.directory, ignore_errors=True)


def start_postgres(host: Host) -> Postgres:
    """PostgreSQL on the host's address, open (trust) to the hosts' subnet only."""
    directory = Path(tempfile.mkdtemp(prefix=f"{host.netns}-pg-"))
    shutil.chown(directory, "postgres", "postgres")
    server = Postgres(host, directory)
    try:
        _start_postgres(server)
    except BaseException:
        server.stop()
        raise
    return server


def _start_postgres(server: Postgres) -> None:
    from etl.tools.localpg import _bin

    host, directory = server.host, server.directory
    data = directory / "data"
    subprocess.run(
        ["runuser", "-u", "postgres", "--", _bin("initdb"), "-D", str(data), "-U", "postgres",
         "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    with open(data / "pg_hba.conf", "a") as hba:
        hba.write(f"host all all {host.address.rsplit('.', 1)[0]}.0/24 trust\n")
    # setpriv execs postgres itself (runuser would stay between it and the signals).
    host.start(
        "postgres",
        ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--",
         _bin("postgres"), "-D", str(data), "-h", host.address, "-p", str(POSTGRES_PORT),
         "-k", str(directory)],
        host.env(),
    )  # fmt: skip
    wait_on(host, lambda: host.answers(POSTGRES_PORT), "PostgreSQL", START_TIMEOUT, "postgres")


def start_luigid(host: Host, history_url: str) -> str:
    """luigid on the host's address (tests/cluster's config: task history in PostgreSQL); the
    URL of its task list."""
    directory = host.directory / "luigid"
    (directory / "logs").mkdir(parents=True, exist_ok=True)
    config = directory / "luigid.cfg"
    write_luigid_config(config, history_url, {}, {"spark_applications": 1})
    host.start(
        "luigid",
        [sys.executable, "-m", "etl.worker.luigid_server", "--address", host.address,
         "--port", str(LUIGID_PORT), "--state-path", str(directory / "state.pickle"),
         "--logdir", str(directory / "logs")],
        host.env(LUIGI_CONFIG_PATH=str(config)),
    )  # fmt: skip
    url = f"http://{host.address}:{LUIGID_PORT}/api/task_list"
    wait_on(host, lambda: host.get_json(url), "luigid's /api/task_list", START_TIMEOUT, "luigid")
    return url


# --------------------------------------------------------------------------------------------
# Spark: master, workers, history server, Connect server


def master_url(master: Host) -> str:
    return f"spark://{master.address}:{MASTER_PORT}"


def master_state(master: Host) -> dict:
    return master.get_json(f"http://{master.address}:{MASTER_UI_PORT}/json/")


def start_master(host: Host) -> None:
    env = host.env(SPARK_MASTER_OPTS=WORKER_TIMEOUT_OPTS, SPARK_DAEMON_JAVA_OPTS=DAEMON_JAVA_OPTS)
    host.start(
        "master",
        [str(spark_home() / "bin" / "spark-class"), "org.apache.spark.deploy.master.Master",
         "--host", host.address, "--port", str(MASTER_PORT), "--webui-port", str(MASTER_UI_PORT)],
        env,
    )  # fmt: skip
    wait_on(host, lambda: master_state(host), "the Spark master", START_TIMEOUT, "master")


def start_worker(host: Host, master: Host) -> None:
    """A 1-core worker: each application gets one executor on it."""
    work = host.directory / "work"
    work.mkdir(exist_ok=True)
    host.start(
        "worker",
        [str(spark_home() / "bin" / "spark-class"), "org.apache.spark.deploy.worker.Worker",
         master_url(master), "--host", host.address, "--port", str(WORKER_PORT),
         "--webui-port", str(WORKER_UI_PORT), "--cores", "1", "--memory", "1g",
         "--work-dir", str(work)],
        host.env(SPARK_WORKER_OPTS=WORKER_TIMEOUT_OPTS, SPARK_DAEMON_JAVA_OPTS=DAEMON_JAVA_OPTS),
    )  # fmt: skip


def alive_workers(master: Host) -> set[str]:
    return {w["host"] for w in master_state(master)["workers"] if w["state"] == "ALIVE"}


def history_url(master: Host) -> str:
    return f"http://{master.address}:{HISTORY_PORT}"


def start_history(host: Host, jars: list[Path], s3a: dict[str, str]) -> None:
    """The product's history server command (etl/tools/history.py), reading the event logs on
    S3 through the stand-in S3A jars."""
    argv, extra = history.command(EVENTS, HISTORY_PORT, host.address)
    options = extra["SPARK_HISTORY_OPTS"] + "".join(
        f" -Dspark.hadoop.{k}={v}" for k, v in s3a.items()
    )
    env = host.env(
        **{
            **extra,
            "SPARK_HISTORY_OPTS": options,
            "SPARK_DAEMON_CLASSPATH": ":".join(str(j) for j in jars),
            "SPARK_DAEMON_JAVA_OPTS": DAEMON_JAVA_OPTS,
        }
    )
    host.start("history", argv, env)
    wait_on(
        host, lambda: history_apps(host) is not None, "the history server", START_TIMEOUT, "history"
    )


def history_apps(master: Host) -> list[dict]:
    return master.get_json(f"{history_url(master)}/api/v1/applications")


#: What every application on the cluster is given (spark-defaults.conf of the driver's host and
#: the Connect server's): one 1-core executor on each worker, both registered before the first
#: job, work split in enough tasks for both, and a lost executor noticed within seconds.
CLUSTER_CONF = {
    "spark.cores.max": "2",
    "spark.executor.cores": "1",
    "spark.executor.memory": "768m",
    "spark.scheduler.minRegisteredResourcesRatio": "1.0",
    # Bounded: a run after a worker host is lost goes on with the executor it has.
    "spark.scheduler.maxRegisteredResourcesWaitingTime": "20s",
    "spark.sql.shuffle.partitions": "4",
    # No waiting for a "local" executor: a stage's tasks go to both workers at once (the 3 s
    # default wait per stage was most of a small run's time).
    "spark.locality.wait": "0s",
    # Executors live for one short run (or idle on the Connect server): the quick JIT only.
    "spark.executor.extraJavaOptions": DAEMON_JAVA_OPTS,
    "spark.sql.files.maxPartitionBytes": "512k",
    # Adaptive execution would merge the small shuffle partitions into one task.
    "spark.sql.adaptive.coalescePartitions.enabled": "false",
    "spark.executor.heartbeatInterval": "2s",
    "spark.network.timeout": "20s",
    "spark.network.timeoutInterval": "2s",
    "spark.port.maxRetries": "4",
}


def spark_conf_dir(
    host: Host, jars: list[Path], endpoint: str, extra: dict[str, str] | None = None
) -> Path:
    """The host's SPARK_CONF_DIR: the stand-in S3A jars and moto, the cluster's settings and the
    driver on this host's address, on fixed ports."""
    conf = {
        **CLUSTER_CONF,
        # After write_spark_conf_dir's loopback lines: a properties file's last value wins.
        "spark.driver.host": host.address,
        "spark.driver.bindAddress": host.address,
        "spark.driver.port": str(DRIVER_PORT),
        "spark.blockManager.port": str(BLOCK_MANAGER_PORT),
        **(extra or {}),
    }
    return write_spark_conf_dir(host.directory / "conf", jars, endpoint, conf)


def connect_address(host: Host) -> str:
    return f"sc://{host.address}:{CONNECT_PORT}"


def start_connect(host: Host, master: Host, jars: list[Path], endpoint: str) -> str:
    """The product's Spark Connect server command (etl/tools/connect.py) on the cluster, its
    event log on S3; its address once it answers."""
    from etl.adapters import spark

    argv, extra = connect.command(
        CONNECT_PORT, host.address, EVENTS, CONNECT_UI_PORT, master=master_url(master)
    )
    conf_dir = spark_conf_dir(host, jars, endpoint)
    host.start("connect", argv, host.env(**extra, SPARK_CONF_DIR=str(conf_dir)))
    address = connect_address(host)
    wait_on(
        host,
        lambda: host.call(spark.connect_answers, address, 2, timeout=20),
        "the Spark Connect server",
        START_TIMEOUT * 2,
        "connect",
    )
    return address


# --------------------------------------------------------------------------------------------
# Runs from the driver host


def put_object(host: Host, moto: MotoS3, key: str, body: bytes) -> str:
    host.call(lambda: moto.client().put_object(Bucket=BUCKET, Key=key, Body=body), timeout=120)
    return f"s3://{BUCKET}/{key}"


def get_object(host: Host, moto: MotoS3, key: str) -> bytes | None:
    def get() -> bytes | None:
        client = moto.client()
        try:
            return client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        except client.exceptions.NoSuchKey:
            return None

    return host.call(get)


def list_keys(host: Host, moto: MotoS3, prefix: str) -> list[str]:
    def keys() -> list[str]:
        pages = (
            moto.client().get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
        )
        return sorted(o["Key"] for p in pages for o in p.get("Contents", []))

    return host.call(keys)


def wait_for_exit(process: subprocess.Popen, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.5)
    if process.poll() is None:
        kill_group(process)
        process.wait(10)
        pytest.fail(f"the run did not end within {timeout} s")
    return process.returncode
