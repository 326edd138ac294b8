"""luigid's task history tells what its task list shows, for the dates of a batch too.

Against a real luigid (``python -m etl.worker.luigid_server``, the entry point every luigid of
the product runs) with its history in the session's PostgreSQL. A backfill of ReadUFOs (no
Spark, no database: batched over its dates as every task of the pipeline is) ends each date's
row DONE with the worker's host; one without its source ends each FAILED. A worker that takes
a batch and vanishes is played through luigid's own JSON API, as Luigi's worker calls it.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest
import sqlalchemy as sa

from etl.tools import sample
from tests.cluster.support import LOOPBACK, cluster_env, run_on, wait_until
from tests.support import REPO, free_port

pytestmark = [pytest.mark.integration]

START, STOP = dt.date(2019, 3, 20), dt.date(2019, 3, 24)  # four run dates
TASK_FAILED = 30  # luigi.cfg [retcode]


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "index.csv"
    with open(path, "w", encoding="utf-8", newline="") as out:
        sample.write(out, sample.generate(300, until=STOP, seed=5))
    return path


def rows(luigid, family: str) -> dict[str, tuple[str | None, list[str]]]:
    """task id -> (host, events in order) of every history row of ``family``."""
    eng = sa.create_engine(luigid.history_url)
    try:
        with eng.connect() as conn:
            found = conn.execute(
                sa.text(
                    "SELECT t.task_id, t.host, e.event_name FROM tasks t "
                    "JOIN task_events e ON e.task_id = t.id WHERE t.name = :family "
                    "ORDER BY e.ts, e.id"
                ),
                {"family": family},
            ).all()
    finally:
        eng.dispose()
    out: dict[str, tuple[str | None, list[str]]] = {}
    for task_id, host, event in found:
        out.setdefault(task_id, (host, []))[1].append(event)
    return out


def per_date(luigid, status: str, family: str = "ReadUFOs") -> dict[str, str]:
    """date -> task id of the one-date tasks luigid lists with ``status``."""
    return {
        t["params"]["date"]: task_id
        for task_id, t in luigid.tasks(status).items()
        if t["name"] == family and ".." not in t["params"]["date"]
    }


def backfill(luigid, env):
    return run_on(
        luigid, "RangeDaily", "--of", "ReadUFOs", "--start", START.isoformat(),
        "--stop", STOP.isoformat(), "--days-back", "36500", env=env,
    )  # fmt: skip


def test_a_backfill_ends_each_dates_history_done_with_its_host(luigid, tmp_path, source):
    env = cluster_env(tmp_path / "lake", "postgresql://unused@127.0.0.1:1/x", source, None)
    result = backfill(luigid, env)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    dates = per_date(luigid, "DONE")
    assert sorted(dates) == [str(START + dt.timedelta(days=n)) for n in range(4)]
    history = rows(luigid, "ReadUFOs")
    # The batch task's own row and one row per date, under the ids luigid lists.
    [batch] = [tid for tid in history if tid not in dates.values()]
    assert set(history) == {batch, *dates.values()}
    for task_id in [batch, *dates.values()]:
        host, events = history[task_id]
        assert host, (task_id, history[task_id])  # the worker's host, not None
        assert events[-2:] == ["RUNNING", "DONE"], (task_id, events)


def test_a_failed_backfill_ends_each_dates_history_failed(luigid, tmp_path):
    missing = tmp_path / "absent.csv"
    env = cluster_env(tmp_path / "lake", "postgresql://unused@127.0.0.1:1/x", missing, None)
    result = backfill(luigid, env)
    assert result.returncode == TASK_FAILED, (result.stdout + result.stderr)[-3000:]
    dates = per_date(luigid, "FAILED")
    assert len(dates) == 4
    history = rows(luigid, "ReadUFOs")
    for task_id in dates.values():
        host, events = history[task_id]
        assert host and events[-2:] == ["RUNNING", "FAILED"], (task_id, history[task_id])


def test_a_batch_whose_worker_vanishes_goes_back_to_pending_then_fails(luigid_factory):
    luigid = luigid_factory(scheduler={"worker_disconnect_delay": 1})
    worker, family = "Worker(test, host=batch-host)", "Nightly"
    luigid.api("add_task_batcher", worker=worker, task_family=family, batched_args=["date"])
    ids = [f"{family}_2019_03_2{n}" for n in range(3)]
    for n, task_id in enumerate(ids):
        luigid.api("add_task", worker=worker, task_id=task_id, family=family,
                   params={"date": f"2019-03-2{n}"}, batchable=True, status="PENDING")  # fmt: skip
    handed = luigid.api("get_work", worker=worker, host="batch-host", current_tasks=[])
    assert sorted(handed["batch_task_ids"]) == ids
    # Not claimed by the next get_work: back to the pool, and handed out again.
    again = luigid.api("get_work", worker=worker, host="batch-host", current_tasks=[])
    assert sorted(again["batch_task_ids"]) == ids
    luigid.api("add_task", worker=worker, task_id=f"{family}_batch", family=family,
               params={"date": "2019-03-20,2019-03-21,2019-03-22"}, status="RUNNING",
               batch_id=again["batch_id"])  # fmt: skip
    time.sleep(1.5)  # the worker sends nothing more: luigid's prune finds it gone
    luigid.api("prune")
    assert sorted(per_date(luigid, "FAILED", family).values()) == ids
    history = rows(luigid, family)
    for task_id in ids:
        assert history[task_id] == (
            "batch-host",
            ["PENDING", "RUNNING", "PENDING", "RUNNING", "FAILED"],
        ), task_id
    assert history[f"{family}_batch"] == ("batch-host", ["RUNNING", "FAILED"])


def test_luigid_logs_its_requests_to_its_log_file_and_nothing_to_stdout(tmp_path):
    port, log, pidfile = free_port(), tmp_path / "logs" / "luigid.log", tmp_path / "luigid.pid"
    (tmp_path / "luigid.cfg").write_text("")
    with (tmp_path / "out").open("w") as out, (tmp_path / "err").open("w") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "etl.worker.luigid_server", "--address", LOOPBACK,
             "--port", str(port), "--state-path", str(tmp_path / "state.pickle"),
             "--log-file", str(log), "--pidfile", str(pidfile)],
            cwd=tmp_path, stdout=out, stderr=err,
            env=dict(os.environ, LUIGI_CONFIG_PATH=str(tmp_path / "luigid.cfg"),
                     PYTHONPATH=str(REPO)),
        )  # fmt: skip
    try:
        url = f"http://{LOOPBACK}:{port}/api/task_list"

        def answers() -> bool:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.status == 200

        wait_until(answers, "luigid's /api/task_list", 60, log)
        assert pidfile.read_text().strip() == str(process.pid)
        wait_until(lambda: "GET /api/task_list" in log.read_text(), "the request's log line", 10)
        assert "Scheduler starting up" in log.read_text()
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
    assert "Scheduler instance shutting down" in log.read_text()
    assert not pidfile.exists()
    assert (tmp_path / "out").read_text() == ""
    assert (tmp_path / "err").read_text() == ""
