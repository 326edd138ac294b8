"""Rebuilding the product database from the lake: ``python -m etl.tools.rebuild``.

The expected rows are those the pipeline loaded, dumped before the database is dropped; the
rebuild must give them back row for row, without Spark, and go on where a killed one stopped.
"""

from __future__ import annotations

import datetime as dt
import signal
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa

from etl.adapters.lake import LocalLake
from etl.tools import sample
from tests.pipeline.support import put_aggregate
from tests.support import REPO, pipeline_env, run_luigi

pytestmark = pytest.mark.integration

#: Every public table and view, and the internal digests, as a reader sees them.
DUMPS = {
    "top_states": "SELECT run_date, period, rank, state, sightings FROM top_states",
    "state_sightings": "SELECT run_date, period, state, sightings FROM state_sightings",
    "reject_samples": "SELECT run_date, reason, row_number, fields::text FROM reject_samples",
    # finished_at is when the date was loaded: a rebuild loads it anew
    "ufo_runs": "SELECT run_date, source, input, header_repeat, duplicate, after_run_date, "
    "valid, rejected, rejected_by_reason::text, layout, checks::text FROM ufo_runs",
    "ufo_snapshot_digests": "SELECT run_date, table_name, digest FROM ufo_snapshot_digests",
    "ufo_schema": "SELECT version FROM ufo_schema",
}


def dump(url: str) -> dict[str, list[tuple]]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        found = {name: sorted(map(tuple, conn.execute(sa.text(sql)).all()), key=repr)
                 for name, sql in DUMPS.items()}  # fmt: skip
    engine.dispose()
    return found


def recreate(url: str) -> None:
    """Drop the database and create it again, empty."""
    server, name = url.rsplit("/", 1)
    admin = sa.create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()


def rebuild_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "etl.tools.rebuild", *args]


def rebuild(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(rebuild_command(*args), env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=900)  # fmt: skip


@pytest.mark.spark
def test_the_database_rebuilt_from_the_lake_equals_what_the_pipeline_loaded(tmp_path, database_url):
    days = [dt.date(2019, 3, 1) + dt.timedelta(days=3 * n) for n in range(8)]
    source = tmp_path / "index.csv"
    with open(source, "w", encoding="utf-8", newline="") as out:
        sample.write(out, sample.generate(3000, until=days[-1], seed=11, start=days[0] - dt.timedelta(days=40)))  # fmt: skip
    env = pipeline_env(str(tmp_path / "lake"), database_url, str(source), UFO_REJECT_ROWS="5")
    started = time.monotonic()
    loaded = run_luigi("TopStatesToDatabase", "--date", ",".join(map(str, days)),
                       "--local-scheduler", env=env, timeout=900)  # fmt: skip
    backfill = time.monotonic() - started
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    before = dump(database_url)
    assert {r[0] for r in before["ufo_runs"]} == set(days)
    assert before["reject_samples"] and before["top_states"]

    recreate(database_url)
    started = time.monotonic()
    done = rebuild(env)
    rebuilt = time.monotonic() - started
    assert done.returncode == 0, done.stderr[-3000:]
    assert "rebuild: 8 published run date(s)" in done.stdout and "8 to load" in done.stdout
    assert "rebuild: 8 of 8 dates loaded" in done.stdout
    assert dump(database_url) == before
    print(f"backfill of {len(days)} dates {backfill:.1f} s, rebuild {rebuilt:.1f} s")
    assert rebuilt < backfill

    again = rebuild(env)  # idempotent: nothing to do
    assert again.returncode == 0 and "0 to load" in again.stdout
    reloaded = rebuild(env, "--reload")
    assert reloaded.returncode == 0 and "8 to load" in reloaded.stdout
    assert dump(database_url) == before
    # The lake's manifests name files of the sizes they recorded.
    check = subprocess.run([sys.executable, "-m", "etl.tools.lake", "check"], env=env, cwd=REPO,
                           capture_output=True, text=True, timeout=120)  # fmt: skip
    assert check.returncode == 0, check.stderr
    assert "16 manifests" in check.stdout


def test_a_killed_rebuild_goes_on_where_it_stopped(tmp_path, database_url):
    """Many run dates (aggregates written by hand, no Spark), each its own snapshot."""
    lake = LocalLake(str(tmp_path / "lake"))
    days = [dt.date(2018, 1, 1) + dt.timedelta(days=n) for n in range(400)]
    for n, day in enumerate(days):
        put_aggregate(lake, day, 1_000 + 3 * (n // 2), 10)  # two dates a snapshot
    env = pipeline_env(str(tmp_path / "lake"), database_url, None, UFO_REJECT_ROWS="0")
    started = time.monotonic()
    loaded = run_luigi("TopStatesToDatabase", "--date", f"{days[0]}..{days[-1]}",
                       "--local-scheduler", env=env, timeout=900)  # fmt: skip
    load_seconds = time.monotonic() - started
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    before = dump(database_url)
    assert len(before["ufo_runs"]) == len(days)

    recreate(database_url)
    process = subprocess.Popen(rebuild_command(), env=env, cwd=REPO, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)  # fmt: skip
    for line in process.stdout:
        if "rebuild: 80 of 400 dates loaded" in line:
            process.send_signal(signal.SIGKILL)
            break
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        partial = conn.execute(sa.text("SELECT count(*) FROM ufo_runs")).scalar()
    engine.dispose()
    assert 80 <= partial < len(days)

    started = time.monotonic()
    resumed = rebuild(env)
    assert resumed.returncode == 0, resumed.stdout[-3000:]
    assert f"{partial} already loaded, {len(days) - partial} to load" in resumed.stdout
    assert dump(database_url) == before
    recreate(database_url)
    started = time.monotonic()
    assert rebuild(env).returncode == 0
    print(f"{len(days)} dates: loaded by the pipeline in {load_seconds:.1f} s, "
          f"rebuilt in {time.monotonic() - started:.1f} s")  # fmt: skip
    assert dump(database_url) == before
