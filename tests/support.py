"""Helpers shared by the test folders: paths, the real data, ports, pipeline runs, databases, S3.

Plain functions and constants only; the fixtures are in the conftest.py files.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import os
import select
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from etl.tools.ports import free_port  # noqa: F401  (the tests' ports: outside the ephemeral range)

REPO = Path(__file__).resolve().parent.parent
SHARED_UFO = REPO.parent / "shared" / "data" / "ufo"
REAL_2019 = SHARED_UFO / "nuforc_index_2019-03-21.csv"
REAL_RUN_DATE = dt.date(2019, 3, 29)

#: A layout the code has never seen, declared as a user would (ISO dates and times, a country
#: column with two names for the US): the declared-layout tests share it.
DECLARED_LAYOUT = """
[layouts.reports-db]
title = "Our reports database"
columns = ["report_id", "observed_at", "region", "nation", "entered_on"]
posted = { column = "entered_on", format = "YYYY-MM-DD", time = true }
sighting = { column = "observed_at", format = "YYYY-MM-DD" }
state = { column = "region", country = "nation", countries = ["USA", "United States"] }
"""


def shared_file(name: str) -> Path:
    """A real NUFORC file from ../shared, or skip the test saying why."""
    path = SHARED_UFO / name
    if not path.is_file():
        pytest.skip(f"needs the real NUFORC data in {SHARED_UFO} (absent on this machine)")
    return path


class Terminal:
    """``argv`` in a pseudo-terminal of its own, as a user runs it in a shell: lines typed into
    it, its output read as it comes (bounded in time), and the process ended on close."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path = REPO):
        import pty

        self.output = b""
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child
            os.chdir(cwd)
            os.execvpe(argv[0], argv, env)

    def type(self, *lines: str) -> None:
        for line in lines:
            os.write(self.fd, line.encode() + b"\n")

    def send(self, data: bytes) -> None:
        os.write(self.fd, data)

    def read(self, timeout: float, until: bytes | None = None) -> str:
        """Read until the terminal closes, ``until`` appears in the whole output, or
        ``timeout`` seconds pass; the whole output so far."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not (until and until in self.output):
            if not select.select([self.fd], [], [], 0.5)[0]:
                continue
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:  # the terminal closed: the process has exited
                break
            if not chunk:
                break
            self.output += chunk
        return self.output.decode(errors="replace")

    def close(self, wait: float = 0) -> int | None:
        """The process's exit status if it ends by itself within ``wait`` seconds; else it is
        killed (None)."""
        status = None
        if self.pid:
            deadline = time.monotonic() + wait
            done, code = os.waitpid(self.pid, os.WNOHANG)
            while not done and time.monotonic() < deadline:
                time.sleep(0.1)
                done, code = os.waitpid(self.pid, os.WNOHANG)
            if done:
                status = code
            else:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            self.pid = 0
        with contextlib.suppress(OSError):
            os.close(self.fd)
        return status

    def __enter__(self) -> Terminal:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def have(command: str) -> bool:
    return shutil.which(command) is not None


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


_db_numbers = itertools.count()


def new_database(postgres, name: str | None = None) -> str:
    """Create an empty database on the session's server (the ``postgres`` fixture); its URL."""
    import sqlalchemy as sa

    name = name or f"test_{os.getpid()}_{next(_db_numbers)}"
    server = postgres.url.rsplit("/", 1)[0]
    admin = sa.create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return f"{server}/{name}"


# --- the lake on S3: a moto server on 127.0.0.1 (the ``s3_endpoint`` and ``s3`` fixtures) ---

BUCKET = "ufo-lake"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def s3_env(
    endpoint: str, database_url: str | None, source: str | None, storage=f"s3://{BUCKET}/lake"
):
    """The environment of a pipeline run (or a worker) whose lake is on the moto server."""
    return pipeline_env(storage, database_url, source, AWS_ENDPOINT_URL=endpoint, **CREDENTIALS)


def write_aggregate_lake(lake: Path, date: str = "2019-03-29") -> None:
    """A lake with one published aggregate, as the pipeline lays it out (an attempt's file named
    by the date's manifest): WA 5 + 4 = 9 and CA 7 sightings, for the PySpark shell tests."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    part = f"_attempts/a/aggregated/date={date}/part-0.parquet"
    (lake / part).parent.mkdir(parents=True)
    counts = {"month": ["2019-01", "2019-02", "2019-02"], "state": ["WA", "CA", "WA"]}
    pq.write_table(pa.table({**counts, "sightings": pa.array([5, 7, 4], pa.int64())}), lake / part)
    manifest = lake / f"aggregated/date={date}/_MANIFEST.json"
    manifest.parent.mkdir(parents=True)
    manifest.write_text(json.dumps({"files": {"aggregated": [part]}}))


def path_without_virtualenv(path: str) -> str:
    """``path`` (a PATH value) without this repository's virtualenv: as a user who never
    activated it."""
    return os.pathsep.join(
        p for p in path.split(os.pathsep) if not p.startswith(str(REPO / ".venv"))
    )


def demo_env(run_dir: Path) -> dict[str, str]:
    """demo.env as bash reads it with ``set -a; . .run/demo.env; set +a``."""
    out = subprocess.run(
        ["bash", "-c", f"set -a; . {shlex.quote(str(run_dir / 'demo.env'))}; set +a; env -0"],
        env={"PATH": os.environ["PATH"]}, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return dict(item.split("=", 1) for item in out.split("\0") if "=" in item)
