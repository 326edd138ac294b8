"""The several-hosts stack for the module: namespaces, bridge and every server, torn down
(processes killed, namespaces deleted) whatever happens. Its helpers are in support.py."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cluster.support import START_TIMEOUT, head_of_file, wait_until
from tests.hosts import support as hs
from tests.hosts.network import Host, Network
from tests.s3a import MotoS3, require_stand_in_jars, s3a_settings
from tests.support import REAL_2019, REPO, shared_file

SMALL_RECORDS = 3000


@dataclass
class Stack:
    """The hosts and what runs on them."""

    network: Network
    moto: MotoS3
    postgres: hs.Postgres
    database_url: str
    jars: list[Path]
    small: Path  # the test's copies of the sources it uploaded (for the reference)
    big: Path

    def __getitem__(self, name: str) -> Host:
        return self.network[name]

    @property
    def driver(self) -> Host:
        return self.network["driver"]

    @property
    def master(self) -> Host:
        return self.network["master"]

    def source(self, path: Path) -> str:
        return f"s3://{hs.BUCKET}/incoming/{path.name}"

    def driver_env(self, source: Path, **extra: str) -> dict[str, str]:
        """A pipeline run's environment on the driver host: every service by its address."""
        driver = self.driver
        conf_dir = hs.spark_conf_dir(
            driver, self.jars, self.moto.endpoint, {"spark.ui.enabled": "true"}
        )
        env = driver.env(
            **self.moto.env(),
            UFO_STORAGE=hs.LAKE,
            UFO_SOURCE=self.source(source),
            UFO_DATABASE_URL=self.database_url,
            SPARK_MASTER=hs.master_url(self.master),
            SPARK_CONF_DIR=str(conf_dir),
            UFO_SPARK_EVENTS=hs.EVENTS,
            UFO_SPARK_HISTORY_URL=hs.history_url(self.master),
            UFO_SPARK_UI_PORT=str(hs.DRIVER_UI_PORT),
            UFO_LOG_DIR=str(driver.directory / "logs"),
            UFO_JVM_CACHE=str(driver.directory / "jvm"),
            LUIGI_CONFIG_PATH=str(REPO / "luigi.cfg"),
        )
        for name in ("UFO_LOCAL_SCHEDULER", "UFO_SPARK_REMOTE", "SPARK_REMOTE"):
            env.pop(name, None)
        env.update(extra)
        return env

    def scheduler_args(self) -> list[str]:
        return ["--scheduler-host", self["store"].address, "--scheduler-port", str(hs.LUIGID_PORT)]

    def luigi_argv(self, date: dt.date) -> list[str]:
        """The chain for ``date``, through luigid on the store host."""
        return [sys.executable, "-m", "luigi", "--module", "etl", "TopStatesToDatabase",
                "--date", date.isoformat(), *self.scheduler_args(), "--no-lock"]  # fmt: skip


def _check_can_run() -> None:
    if os.geteuid() != 0:
        pytest.skip("the several-hosts test makes network namespaces: it needs root")
    if shutil.which("ip") is None:
        pytest.skip("the several-hosts test needs iproute2's `ip` (network namespaces)")


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    _check_can_run()
    jars = require_stand_in_jars()
    real = shared_file(REAL_2019.name)
    sources = tmp_path_factory.mktemp("sources")
    small = head_of_file(real, sources / "nuforc_head.csv", SMALL_RECORDS)
    network = Network.create(tmp_path_factory.mktemp("hosts"))
    store = network["store"]
    postgres: list[hs.Postgres] = []  # once started: stopped even if the rest fails
    try:
        moto = hs.start_moto(store)
        with ThreadPoolExecutor(2) as pool:  # the store's servers and the cluster's at once
            cluster = pool.submit(_start_cluster, network, jars, moto)
            postgres.append(hs.start_postgres(store))
            hs.start_luigid(store, postgres[0].create_database("luigid_history"))
            database_url = postgres[0].create_database("ufo")
            driver = network["driver"]
            for path in (small, real):
                hs.put_object(driver, moto, f"incoming/{path.name}", path.read_bytes())
            cluster.result()
        yield Stack(network, moto, postgres[0], database_url, jars, small, real)
    finally:
        _stop(network, postgres[0] if postgres else None)


def _start_cluster(network: Network, jars: list[Path], moto: MotoS3) -> None:
    """The master, both workers (ALIVE at the master) and the history server."""
    master = network["master"]
    hs.start_master(master)
    for name in ("worker1", "worker2"):
        hs.start_worker(network[name], master)
    hs.start_history(master, jars, s3a_settings(moto.endpoint))
    workers = {network["worker1"].address, network["worker2"].address}
    wait_until(
        lambda: hs.alive_workers(master) >= workers,
        "both workers ALIVE at the master",
        START_TIMEOUT,
        master.log("master"),
    )


def _stop(network: Network, postgres: hs.Postgres | None) -> None:
    """Gently where it matters (luigid writes its state, PostgreSQL shuts down cleanly), then
    every process and namespace of the network, whatever is left."""
    for name in ("connect", "luigid"):
        host = network["connect" if name == "connect" else "store"]
        try:
            host.stop(name, timeout=15)
        except (OSError, subprocess.SubprocessError):
            pass
    try:
        if postgres is not None:
            postgres.stop()
    finally:
        network.destroy()
