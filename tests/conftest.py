"""Shared fixtures: real PostgreSQL, a local SparkSession, the real data, one real pipeline run."""

from __future__ import annotations

import datetime as dt
import itertools
import os
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_UFO = REPO.parent / "shared" / "data" / "ufo"
REAL_2019 = SHARED_UFO / "nuforc_index_2019-03-21.csv"
REAL_RUN_DATE = dt.date(2019, 3, 29)

# Every server a test starts binds to loopback; Spark too.
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")


def shared_file(name: str) -> Path:
    """A real NUFORC file from ../shared, or skip the test saying why."""
    path = SHARED_UFO / name
    if not path.is_file():
        pytest.skip(f"needs the real NUFORC data in {SHARED_UFO} (absent on this machine)")
    return path


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (nothing listens on it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pipeline_env(storage: str, database_url: str | None, source: str | None, **extra) -> dict:
    """The environment of a pipeline run: this process's, plus the pipeline's settings."""
    env = dict(os.environ)
    env.update(UFO_STORAGE=storage, SPARK_MASTER="local[2]", SPARK_LOCAL_IP="127.0.0.1")
    for name, value in (("UFO_DATABASE_URL", database_url), ("UFO_SOURCE", source)):
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    env.update(extra)
    return env


def run_luigi(
    *args: str, env: dict, cwd: Path = REPO, timeout: int = 600
) -> subprocess.CompletedProcess:
    """``python -m luigi --module etl ARGS`` as a user runs it.

    ``--no-lock``: tests run the same command lines at once in separate lakes, which Luigi's
    one-process-per-command-line lock would refuse.
    """
    return subprocess.run(
        [sys.executable, "-m", "luigi", "--module", "etl", *args, "--no-lock"],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


@pytest.fixture(scope="session")
def postgres(tmp_path_factory):
    """A real PostgreSQL server for the session (private, on 127.0.0.1)."""
    from etl.errors import DatabaseError
    from etl.localpg import LocalPostgres, _bin

    try:
        _bin("initdb")
    except DatabaseError as err:
        pytest.skip(str(err))
    server = LocalPostgres(tmp_path_factory.mktemp("postgres")).start()
    yield server
    server.stop()


_db_numbers = itertools.count()


def new_database(postgres, name: str | None = None) -> str:
    """Create an empty database on the session's server; its URL."""
    import sqlalchemy as sa

    name = name or f"test_{os.getpid()}_{next(_db_numbers)}"
    server = postgres.url.rsplit("/", 1)[0]
    admin = sa.create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return f"{server}/{name}"


@pytest.fixture
def database_url(postgres) -> str:
    """A new, empty database on the session's server."""
    return new_database(postgres)


@pytest.fixture(scope="session")
def spark():
    """A local SparkSession for the transform unit tests."""
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("ufo-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .getOrCreate()
    )
    yield session
    session.stop()


@dataclass(frozen=True)
class PipelineRun:
    """One finished run of the whole chain: where its outputs are."""

    storage: Path
    database_url: str
    run_date: dt.date
    source: Path
    result: subprocess.CompletedProcess


@pytest.fixture(scope="session")
def real_run(tmp_path_factory, postgres) -> PipelineRun:
    """The whole chain once, on the real 2019 NUFORC file, local Spark, the session's database."""
    source = shared_file(REAL_2019.name)
    url = new_database(postgres, "real_run")
    storage = tmp_path_factory.mktemp("real-lake")
    env = pipeline_env(str(storage), url, str(source))
    result = run_luigi(
        "TopStatesToDatabase", "--date", REAL_RUN_DATE.isoformat(), "--local-scheduler", env=env
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return PipelineRun(storage, url, REAL_RUN_DATE, source, result)


@pytest.fixture(scope="session")
def real_expected():
    """The independent computation of the 2019 file's results for the real run's date."""
    from tests import reference

    return reference.classify(shared_file(REAL_2019.name).read_bytes(), REAL_RUN_DATE)


def have(command: str) -> bool:
    return shutil.which(command) is not None
