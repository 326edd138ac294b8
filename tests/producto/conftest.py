"""Fixtures of producto's tests: the app over a loaded database, and a real server process."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

import pytest

from tests.conftest import REPO, free_port, new_database

# Two hand-made run dates, for behaviour that does not need the real data.
SMALL_OLD = dt.date(2020, 1, 31)
SMALL_NEW = dt.date(2020, 2, 29)


@pytest.fixture(scope="session", autouse=True)
def _postgres_can_reach_its_directory(tmp_path_factory):
    """As root, pytest's temporary directories are 0700 and the ``postgres`` user cannot reach
    the data directory ``LocalPostgres`` makes inside them. Let others traverse (not list) them.
    """
    base = tmp_path_factory.getbasetemp()
    if os.geteuid() == 0:
        for directory in (base.parent, base):
            directory.chmod(directory.stat().st_mode | 0o111)


@pytest.fixture(scope="session")
def small_db(postgres) -> str:
    """A database with two small hand-written runs, loaded by the pipeline's own load step."""
    from etl.db import RunResults, load_run

    url = new_database(postgres, "producto_small")
    quality = {
        "input": 10, "header_repeat": 1, "duplicate": 1, "after_run_date": 1, "valid": 5,
        "rejected": 2, "rejected_by_reason": {"posted": 0, "sighting_date": 1, "state": 1},
    }  # fmt: skip
    for run_date, ca in ((SMALL_OLD, 3), (SMALL_NEW, 4)):
        load_run(
            url,
            RunResults(
                run_date=run_date,
                source="hand-written",
                quality=quality,
                top=[("all", 1, "CA", ca), ("all", 2, "WA", 1), ("2019-07", 1, "CA", ca)],
                counts=[("all", "CA", ca), ("all", "WA", 1), ("2019-07", "CA", ca)],
            ),
        )
    return url


@dataclass
class Server:
    """A running ``python -m producto`` process."""

    url: str
    process: subprocess.Popen


def start_server(database_url: str, log_path) -> Server:
    port = free_port()
    env = dict(os.environ, PRODUCTO_DATABASE_URL=database_url)
    env.pop("UFO_DATABASE_URL", None)
    log = open(log_path, "w")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(
        [sys.executable, "-m", "producto", "--host", "127.0.0.1", "--port", str(port)],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return Server(url, process)
        except (urllib.error.URLError, ConnectionError):
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"producto did not start: {log_path.read_text()[-3000:]}")
        time.sleep(0.2)


def stop_server(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


@pytest.fixture(scope="session")
def real_server(real_run, tmp_path_factory):
    """``python -m producto`` on a free loopback port, over the real run's database."""
    server = start_server(real_run.database_url, tmp_path_factory.mktemp("producto") / "log")
    yield server
    stop_server(server)


@pytest.fixture
def empty_server(database_url, tmp_path):
    """``python -m producto`` over a database the pipeline never loaded."""
    server = start_server(database_url, tmp_path / "log")
    yield server
    stop_server(server)
