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

from tests.producto.support import (
    MIXED_COUNTS,
    MIXED_REAL,
    MIXED_REJECTS,
    MIXED_SAMPLE,
    REAL_SOURCE,
    SAMPLE_SOURCE,
    SMALL_NEW,
    SMALL_OLD,
)
from tests.support import REAL_2019, REAL_RUN_DATE, REPO, free_port, new_database


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
    """Two small hand-written runs in the tables as the pipeline made them before ``layout``
    and ``reject_samples`` (plain SQL: the pipeline's load step is being changed meanwhile).
    """
    import json

    import sqlalchemy as sa

    url = new_database(postgres, "producto_small")
    reasons = json.dumps({"posted": 0, "sighting_date": 1, "state": 1})
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        create_tables(conn, layout=False, rejects=False)
        for run_date, ca in ((SMALL_OLD, 3), (SMALL_NEW, 4)):
            conn.execute(
                sa.text(
                    "INSERT INTO ufo_runs VALUES (:d, '2020-03-01T12:00:00+00', 'hand-written',"
                    " 10, 1, 1, 1, 5, 2, CAST(:reasons AS jsonb))"
                ),
                {"d": run_date, "reasons": reasons},
            )
            rows = [("all", 1, "CA", ca), ("all", 2, "WA", 1), ("2019-07", 1, "CA", ca)]
            conn.execute(
                sa.text("INSERT INTO top_states VALUES (:d, :p, :r, :s, :n)"),
                [{"d": run_date, "p": p, "r": r, "s": st, "n": n} for p, r, st, n in rows],
            )
            conn.execute(
                sa.text("INSERT INTO state_sightings VALUES (:d, :p, :s, :n)"),
                [{"d": run_date, "p": p, "s": st, "n": n} for p, _, st, n in rows],
            )
    engine.dispose()
    return url


def create_tables(conn, layout: bool, rejects: bool) -> None:
    """The product tables from the loader's own schema (``etl.adapters.database.schema``), as a
    database of an earlier schema version has them when ``layout`` (``ufo_runs.layout``, version
    2; ``ufo_runs.checks``, version 5, goes with it) or ``rejects`` (``reject_samples``,
    version 3) is False."""
    import sqlalchemy as sa

    from etl.adapters.database import schema

    tables = [schema.top_states, schema.state_sightings]
    schema.ufo_runs.create(conn)
    schema.public.create_all(conn, tables=tables + ([schema.reject_samples] if rejects else []))
    if not layout:
        conn.execute(sa.text("ALTER TABLE ufo_runs DROP COLUMN layout, DROP COLUMN checks"))


@pytest.fixture(scope="session")
def mixed_db(postgres) -> str:
    """Real data with a redacted source and stored rejects, and a newer generated sample."""
    import json

    import sqlalchemy as sa

    url = new_database(postgres, "producto_mixed")
    engine = sa.create_engine(url)
    run_sql = sa.text(
        "INSERT INTO ufo_runs VALUES (:d, '2021-07-01T08:00:00+00', :source, :input, 1, 1, 0,"
        " :input - 6, 4,"
        " CAST(:reasons AS jsonb), :layout)"
    )
    with engine.begin() as conn:
        create_tables(conn, layout=True, rejects=True)
        conn.execute(run_sql, {"d": MIXED_REAL, "source": REAL_SOURCE, "layout": "export", "input": 20,
                               "reasons": json.dumps({"state": 3, "sighting_date": 1})})  # fmt: skip
        conn.execute(run_sql, {"d": MIXED_SAMPLE, "source": SAMPLE_SOURCE, "layout": None, "input": 40,
                               "reasons": json.dumps({"state": 4})})  # fmt: skip
        for run_date in (MIXED_REAL, MIXED_SAMPLE):
            conn.execute(
                sa.text("INSERT INTO state_sightings VALUES (:d, :p, :s, :n)"),
                [{"d": run_date, "p": p, "s": s, "n": n} for p, s, n in MIXED_COUNTS],
            )
            ranked = {}
            for p, s, n in sorted(MIXED_COUNTS, key=lambda c: (c[0], -c[2], c[1])):
                ranked.setdefault(p, []).append((s, n))
            conn.execute(
                sa.text("INSERT INTO top_states VALUES (:d, :p, :r, :s, :n)"),
                [{"d": run_date, "p": p, "r": i + 1, "s": s, "n": n}
                 for p, rows in ranked.items() for i, (s, n) in enumerate(rows)],
            )  # fmt: skip
        conn.execute(
            sa.text("INSERT INTO reject_samples VALUES (:d, :reason, :row, CAST(:fields AS json))"),
            [{"d": MIXED_REAL, "reason": r, "row": n, "fields": json.dumps(f)}
             for r, n, f in MIXED_REJECTS],
        )  # fmt: skip
    engine.dispose()
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


@pytest.fixture(scope="session")
def mixed_server(mixed_db, tmp_path_factory):
    """``python -m producto`` over the mixed database."""
    server = start_server(mixed_db, tmp_path_factory.mktemp("producto-mixed") / "log")
    yield server
    stop_server(server)


@pytest.fixture
def empty_server(database_url, tmp_path):
    """``python -m producto`` over a database the pipeline never loaded."""
    server = start_server(database_url, tmp_path / "log")
    yield server
    stop_server(server)


@dataclass(frozen=True)
class LoadedRun:
    """A run date loaded into a database of the session's server."""

    database_url: str
    run_date: dt.date


@pytest.fixture(scope="session")
def real_run(postgres, real_expected) -> LoadedRun:
    """The real 2019 file's figures for 2019-03-29, as the independent ``tests.reference``
    computes them, in the product tables (with layout and stored rejects), by plain SQL.

    This overrides the suite's pipeline run for producto's tests: the app is checked against
    known figures without a Spark run (the pipeline is checked against the same reference in
    tests/pipeline), so these tests neither wait for Spark nor break while the pipeline
    changes.
    """
    import csv
    import json

    import sqlalchemy as sa

    url = new_database(postgres, "producto_real")
    quality = real_expected.quality()
    periods = ["all", *real_expected.months()]
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        create_tables(conn, layout=True, rejects=True)
        conn.execute(
            sa.text(
                "INSERT INTO ufo_runs VALUES (:d, now(), :source, :input, :header_repeat,"
                " :duplicate, :after_run_date, :valid, :rejected, CAST(:reasons AS jsonb), 'index')"
            ),
            {**quality, "d": REAL_RUN_DATE, "source": str(REAL_2019),
             "reasons": json.dumps(quality["rejected_by_reason"])},
        )  # fmt: skip
        for period in periods:
            month = None if period == "all" else period
            conn.execute(
                sa.text("INSERT INTO state_sightings VALUES (:d, :p, :s, :n)"),
                [{"d": REAL_RUN_DATE, "p": period, "s": s, "n": n}
                 for s, n in real_expected.totals(month).items()],
            )  # fmt: skip
            conn.execute(
                sa.text("INSERT INTO top_states VALUES (:d, :p, :r, :s, :n)"),
                [{"d": REAL_RUN_DATE, "p": period, "r": i + 1, "s": s, "n": n}
                 for i, (s, n) in enumerate(real_expected.top_ten(month))],
            )  # fmt: skip
        # As the loader stores them: objects under the source's own header names, in order.
        with open(REAL_2019, encoding="utf-8", newline="") as handle:
            names = next(csv.reader(handle))
        conn.execute(
            sa.text("INSERT INTO reject_samples VALUES (:d, :reason, :n, CAST(:fields AS json))"),
            [{"d": REAL_RUN_DATE, "reason": reason, "n": i + 1,
              "fields": json.dumps(dict(zip(names, row)))}
             for i, (row, reason) in enumerate(real_expected.rejects)],
        )  # fmt: skip
    engine.dispose()
    return LoadedRun(url, REAL_RUN_DATE)
