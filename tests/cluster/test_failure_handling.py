"""Failure handling against a real luigid: races, retries, disabling, exit codes, resource caps."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import time

import pytest
import sqlalchemy as sa

from tests import reference
from tests.cluster.support import (
    TASKS,
    cluster_env,
    expected_top_rows,
    loaded_top_rows,
    run_on,
    start_on,
    wait_until,
)
from tests.receivers import HttpSink

pytestmark = [pytest.mark.integration, pytest.mark.spark, pytest.mark.shared_data]

# Retcodes from luigi.cfg's [retcode] section.
TASK_FAILED = 30
NOT_RUN = 25
ALREADY_RUNNING = 10

SMALL_DATE = dt.date(2019, 3, 21)  # the newest reports in the file's head are posted 3/21/19


def ufo_runs(url: str) -> list[dt.date]:
    eng = sa.create_engine(url)
    try:
        with eng.connect() as conn:
            return [r[0] for r in conn.execute(sa.text("SELECT run_date FROM ufo_runs"))]
    finally:
        eng.dispose()


def running_intervals(luigid, family: str) -> dict[str, tuple[dt.datetime, dt.datetime]]:
    """run date -> (RUNNING, DONE) timestamps of a task family in luigid's task history."""
    starts: dict[str, dt.datetime] = {}
    out: dict[str, tuple[dt.datetime, dt.datetime]] = {}
    for _tid, fam, params, event, ts in luigid.history():
        if fam != family:
            continue
        if event == "RUNNING":
            starts[params["date"]] = ts
        elif event == "DONE":
            out[params["date"]] = (starts[params["date"]], ts)
    return out


@pytest.mark.timeout(420)
def test_two_workers_racing_on_one_date_run_each_task_once(
    spark_cluster, luigid, database_url, small_source, tmp_path
):
    env = cluster_env(tmp_path / "lake", database_url, small_source, spark_cluster)
    # --no-lock: two hosts, in effect. Without it the second process on this host is turned
    # away by Luigi's local pid lock before it ever asks luigid.
    args = ("TopStatesToDatabase", "--date", SMALL_DATE.isoformat(), "--no-lock")
    logs = [tmp_path / "worker-a.log", tmp_path / "worker-b.log"]
    workers = [start_on(luigid, *args, env=env, out=log) for log in logs]
    try:
        codes = [w.wait(timeout=360) for w in workers]
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
    outputs = [log.read_text(errors="replace") for log in logs]

    # Who runs what depends on timing: one worker may run ReadUFOs and the other the rest. A
    # worker that ran all its tasks exits 0; one that saw a task run by the other exits
    # already_running, or not_run for a task it had scheduled but the other ran. Never failed.
    assert set(codes) <= {0, ALREADY_RUNNING, NOT_RUN}, (codes, [o[-3000:] for o in outputs])
    assert codes != [0, 0], "both workers claim to have run the whole chain"
    for family in TASKS:
        events = luigid.events(family, SMALL_DATE)
        assert events.count("RUNNING") == 1 and events.count("DONE") == 1, (family, events)
    assert len(spark_cluster.completed_apps(f"AggregateUFOsByState {SMALL_DATE}")) == 1
    # Each task was run by exactly one of the two workers, by their own logs.
    for family in TASKS:
        ran = re.compile(rf"start: {family}\(date={SMALL_DATE}\)")
        assert sum(len(ran.findall(o)) for o in outputs) == 1, family
    assert ufo_runs(database_url) == [SMALL_DATE]
    expected = reference.classify(small_source.read_bytes(), SMALL_DATE)
    assert loaded_top_rows(database_url, SMALL_DATE) == expected_top_rows(expected)


@pytest.mark.timeout(240)
def test_failing_task_is_retried_then_disabled_and_exit_codes_say_so(
    luigid_factory, database_url, small_source, tmp_path
):
    luigid = luigid_factory(
        scheduler={
            "retry_delay": 3,
            "retry_count": 2,
            "disable_window": 600,
            "disable_persist": 600,
            "prune_on_get_work": True,
        }
    )
    source = tmp_path / "late" / "nuforc.csv"  # absent for now
    env = cluster_env(tmp_path / "lake", database_url, source, None)
    args = ("ReadUFOs", "--date", SMALL_DATE.isoformat())

    # A keep-alive worker fails, waits retry_delay, fails again and is then disabled: one
    # alert, sent once the scheduler's retries are over, not one per try.
    with HttpSink() as hook:
        env["UFO_ALERT_WEBHOOK"] = f"{hook.url}/hook"
        first = run_on(luigid, *args, "--worker-keep-alive", env=env, timeout=120)
        time.sleep(1)
    del env["UFO_ALERT_WEBHOOK"]
    assert first.returncode == TASK_FAILED, first.stderr[-3000:]
    assert "does not exist" in first.stderr
    [(_, alert)] = hook.posts
    [failure] = alert["alert"]["failures"]
    assert failure["what"] == "ReadUFOs" and "does not exist" in failure["reason"]
    events = [(ev, ts) for _t, fam, _p, ev, ts in luigid.history() if fam == "ReadUFOs"]
    runs = [ts for ev, ts in events if ev == "RUNNING"]
    assert [ev for ev, _ in events].count("FAILED") == 2 and len(runs) == 2, events
    assert (runs[1] - runs[0]).total_seconds() >= 3
    assert list(luigid.families("DISABLED")) == ["ReadUFOs"]

    # Disabled means disabled: even with the source back, a new run does not run the task.
    source.parent.mkdir()
    shutil.copyfile(small_source, source)
    blocked = run_on(luigid, *args, env=env, timeout=60)
    assert blocked.returncode == NOT_RUN, blocked.stderr[-3000:]
    assert not (tmp_path / "lake" / "raw").exists()
    assert luigid.events("ReadUFOs").count("RUNNING") == 2

    # An operator re-enables it (the button in luigid's UI); the next run succeeds.
    (task_id,) = luigid.families("DISABLED")["ReadUFOs"]
    luigid.api("re_enable_task", task_id=task_id)
    fixed = run_on(luigid, *args, env=env, timeout=60)
    assert fixed.returncode == 0, fixed.stderr[-3000:]
    assert list(luigid.families("DONE")) == ["ReadUFOs"]


@pytest.mark.timeout(180)
def test_kept_alive_worker_retries_until_the_late_source_appears(
    luigid_factory, database_url, small_source, tmp_path
):
    # ReadUFOs alone: the retry is the scheduler's business; Spark adds nothing here but time.
    luigid = luigid_factory(
        scheduler={"retry_delay": 5, "retry_count": 3, "prune_on_get_work": True}
    )
    source = tmp_path / "late" / "nuforc.csv"  # published late
    env = cluster_env(tmp_path / "lake", database_url, source, None)
    log = tmp_path / "worker.log"
    args = ("ReadUFOs", "--date", SMALL_DATE.isoformat(), "--worker-keep-alive")
    with HttpSink() as hook:  # a failure that the retry mends sends no alert
        env["UFO_ALERT_WEBHOOK"] = f"{hook.url}/hook"
        worker = start_on(luigid, *args, env=env, out=log)
        try:
            wait_until(lambda: "ReadUFOs" in luigid.families("FAILED"), "ReadUFOs to fail", 60)
            assert worker.poll() is None, "the kept-alive worker should wait for the retry"
            source.parent.mkdir()
            shutil.copyfile(small_source, source)
            code = worker.wait(timeout=120)
        finally:
            if worker.poll() is None:
                worker.kill()
        time.sleep(1)
    assert code == 0, log.read_text(errors="replace")[-4000:]
    assert hook.posts == []
    assert list(luigid.families("DONE")) == ["ReadUFOs"]
    events = [(ev, ts) for _t, fam, _p, ev, ts in luigid.history() if fam == "ReadUFOs"]
    names = [ev for ev, _ in events]
    assert names.count("FAILED") == 1 and names.count("RUNNING") == 2 and names[-1] == "DONE"
    failed_at = next(ts for ev, ts in events if ev == "FAILED")
    retried_at = [ts for ev, ts in events if ev == "RUNNING"][-1]
    assert (retried_at - failed_at).total_seconds() >= 5  # not before retry_delay
    lake = tmp_path / "lake"
    manifest = json.loads((lake / "raw" / f"date={SMALL_DATE}" / "_MANIFEST.json").read_text())
    [copy] = manifest["files"]["source"]
    assert (lake / copy).read_bytes() == small_source.read_bytes()  # UTF-8 already: unchanged


@pytest.mark.timeout(480)
def test_a_backfill_of_two_dates_runs_one_spark_application(
    spark_cluster, luigid, database_url, small_source, tmp_path
):
    dates = [dt.date(2019, 3, 19), dt.date(2019, 3, 20)]
    env = cluster_env(tmp_path / "lake", database_url, small_source, spark_cluster)
    started = time.time() * 1000
    # The backfill command of docs/how-to/backfill.md: RangeDaily over the two dates, two worker processes.
    result = run_on(
        luigid, "RangeDaily", "--of", "TopStatesToDatabase",
        "--start", dates[0].isoformat(), "--stop", (dates[-1] + dt.timedelta(days=1)).isoformat(),
        "--days-back", "100000", "--workers", "2",
        env=env, timeout=420,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]

    # Luigi hands the worker both dates as one batch: one Spark application covers them.
    apps = [a for a in spark_cluster.completed_apps() if a["starttime"] >= started]
    assert [a["name"] for a in apps] == [
        f"AggregateUFOsByState {dates[0]}..{dates[-1]} ({len(dates)} dates) "
        f"from {small_source.name} (file)"
    ], spark_cluster.state()

    assert sorted(ufo_runs(database_url)) == dates
    for d in dates:
        expected = reference.classify(small_source.read_bytes(), d)
        assert loaded_top_rows(database_url, d) == expected_top_rows(expected)
