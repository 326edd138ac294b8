"""The daily schedule's runs leave their results in the lake, as run requests do.

The schedule is the real ``DailySchedule`` (and, once, the real service) starting the real
``python -m luigi --module etl TopStatesToDatabase`` command; a test hook (a ``sitecustomize``
on the run's PYTHONPATH, as in tests/worker/support.py) makes that run print the lines the test
gives and exit with the test's code, or hang, so that no Spark or pipeline runs. The results
are read back by the real readers: ``RequestStates``, ``RunDatesView``, ``ops.look`` and the
worker's requests loop.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import threading
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa
import yaml

from etl.adapters.database import Loader
from etl.adapters.lake import open_lake
from etl.worker import ops
from etl.worker.request_states import RequestStates
from etl.worker.requests import check_audit, parse_request
from etl.worker.rundates_view import RunDatesView
from etl.worker.schedule import DailySchedule
from etl.worker.service import RequestRunner
from tests.receivers import HttpSink
from tests.support import pipeline_env
from tests.worker.support import LiveWorker, lake_with_source, run_hook, wait_until

UTC = ZoneInfo("UTC")
AT = dt.time(6, 0)
BY = "the daily schedule"
SECRET = "Pa55-of-the-db"
NAME = re.compile(r"schedule-(\d{4}-\d{2}-\d{2})-(\d{8}T\d{6}Z)-[0-9a-f]{6}")

_HOOK = '''\
"""Test hook: a luigi run prints the lines of $UFO_TEST_RUN_DIR/outcome after its first (the
exit code, or "hang"), then exits with that code."""
import os, sys, time
from pathlib import Path

_dir = os.environ.get("UFO_TEST_RUN_DIR")
if _dir and sys.orig_argv[1:3] == ["-m", "luigi"]:
    _code, *_lines = Path(_dir, "outcome").read_text().splitlines()
    print(*_lines, sep="\\n", flush=True)
    if _code == "hang":
        time.sleep(60)
    os._exit(int(_code))
'''


def runs_end(tmp_path: Path, monkeypatch, code: str, *lines: str) -> None:
    """Make each run started from now on print ``lines``, then exit with ``code``."""
    hook = tmp_path / "hook"
    if not hook.exists():
        hook.mkdir()
        (hook / "sitecustomize.py").write_text(_HOOK)
        path = os.pathsep.join(filter(None, [str(hook), os.environ.get("PYTHONPATH")]))
        monkeypatch.setenv("PYTHONPATH", path)
        monkeypatch.setenv("UFO_TEST_RUN_DIR", str(hook))
    (hook / "outcome").write_text("\n".join((code, *lines)) + "\n")


def at(day: str, hour: int = 7) -> dt.datetime:
    """A time on ``day`` (UTC), after the schedule's 06:00 when hour > 6."""
    return dt.datetime.combine(dt.date.fromisoformat(day), dt.time(hour), dt.UTC)


def results(requests: Path) -> dict[str, str]:
    """The files of ``requests/`` by name (no hidden ones), with their text."""
    if not requests.is_dir():
        return {}
    return {p.name: p.read_text() for p in requests.iterdir() if p.is_file()}


def one_result(requests: Path, day: str, status: str) -> tuple[str, dict, str]:
    """(stem, record, log text) of the one scheduled run for ``day`` that ended ``status``."""
    [name] = [n for n in results(requests) if n.startswith(f"schedule-{day}-")
              and n.endswith(f".{status}.yaml")]  # fmt: skip
    stem = name[: -len(f".{status}.yaml")]
    log = (requests / f"{stem}.log").read_text()
    return stem, yaml.safe_load((requests / name).read_text()), log


def insert_load(url: str, day: str, finished_at: str) -> None:
    """The ``ufo_runs`` row of a load of ``day`` that finished at ``finished_at`` (SQL)."""
    with Loader(url):  # the schema, migrated
        pass
    with sa.create_engine(url).begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO ufo_runs (run_date, finished_at, source, input, header_repeat, "
                "duplicate, after_run_date, valid, rejected, rejected_by_reason, layout) VALUES "
                "(:day, :finished, 'file:///data/index.csv', 3, 0, 0, 0, 2, 1, '{}'::jsonb, "
                "'index')"
            ),
            {"day": day, "finished": finished_at},
        )


def next_second() -> None:
    """Wait for the clock's next second: results are ordered by their finish, in seconds."""
    time.sleep(1.05 - time.time() % 1)


def test_a_scheduled_run_that_succeeds_leaves_its_result_and_log(tmp_path, monkeypatch):
    monkeypatch.setenv("PGPASSWORD", SECRET)  # a credential of the worker's: never in a log
    runs_end(tmp_path, monkeypatch, "0", "HOOK loading 2019-03-29", f"HOOK password {SECRET}")
    lake = open_lake(str(tmp_path / "lake"))
    schedule = DailySchedule(AT, UTC, ["--local-scheduler"], lake=lake, worker_id="host:1:abc")

    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    run = schedule.run_if_due(at("2019-03-30"))
    after = dt.datetime.now(dt.UTC)

    assert run is not None and run.exit_code == 0
    requests = tmp_path / "lake" / "requests"
    stem, record, log = one_result(requests, "2019-03-29", "done")
    assert sorted(results(requests)) == [f"{stem}.done.yaml", f"{stem}.log"]
    stamp = dt.datetime.strptime(NAME.fullmatch(stem).group(2), "%Y%m%dT%H%M%SZ")
    assert before <= stamp.replace(tzinfo=dt.UTC) <= after
    assert record["status"] == "done" and record["exit_code"] == 0 and "error" not in record
    assert record["worker"] == "host:1:abc"
    assert check_audit("requested_by", record["requested_by"]) == BY
    assert record["requested_at"] == "2019-03-30T06:00:00+00:00"  # when it became due
    started = dt.datetime.fromisoformat(record["started"])
    assert before <= started <= dt.datetime.fromisoformat(record["finished"]) <= after
    request = parse_request(record["request"])  # the request it amounts to, as a worker reads it
    assert (request.task, request.params) == ("TopStatesToDatabase", {"date": "2019-03-29"})
    assert request.audit == {"requested_by": BY, "requested_at": record["requested_at"]}
    assert "HOOK loading 2019-03-29" in log.splitlines()
    assert "HOOK password" in log and SECRET not in log

    # Whatever reads results sees it as a request's.
    [state] = RequestStates(lake, UTC).all(at("2019-03-30", 8).timestamp())
    assert (state.name, state.status, state.task) == (f"{stem}.yaml", "done", "TopStatesToDatabase")
    assert state.dates == {dt.date(2019, 3, 29)}
    assert (state.requested_by, state.worker) == (BY, "host:1:abc")
    assert ops.look(lake, f"{stem}.yaml") == ("done", record)


def test_a_failed_night_is_failed_with_its_reason_not_missing(tmp_path, monkeypatch, database_url):
    lake = open_lake(str(tmp_path / "lake"))
    reason = "ufo: error: TopStatesToDatabase(date=2019-03-28): the source is gone"
    runs_end(tmp_path, monkeypatch, "30", "HOOK starting", reason, "HOOK summary")
    first = DailySchedule(AT, UTC, ["--local-scheduler"], lake=lake, worker_id="host:1:abc")
    failed = first.run_if_due(at("2019-03-29"))
    assert failed.exit_code == 30

    requests = tmp_path / "lake" / "requests"
    stem, record, log = one_result(requests, "2019-03-28", "error")
    assert (record["status"], record["exit_code"], record["error"]) == ("error", 30, reason)
    assert record["requested_by"] == BY
    assert log.splitlines() == ["HOOK starting", reason, "HOOK summary"]

    # 03-27: failed by the schedule, then loaded by its next run (another replica's, later).
    runs_end(tmp_path, monkeypatch, "30", reason.replace("03-28", "03-27"))
    DailySchedule(AT, UTC, ["--local-scheduler"], lake=lake).run_if_due(at("2019-03-28"))
    insert_load(database_url, "2019-03-27", "2000-01-01T00:00:00Z")  # an earlier load
    next_second()
    runs_end(tmp_path, monkeypatch, "0", "HOOK loaded")
    again = DailySchedule(AT, UTC, ["--local-scheduler"], lake=lake).run_if_due(at("2019-03-28", 9))
    assert again.exit_code == 0

    view = RunDatesView(lake, database_url, UTC, AT)
    page = view.page(dt.date(2019, 3, 26), dt.date(2019, 3, 28), now=at("2019-03-29", 8))
    by_date = {d.date.isoformat(): d for d in page.dates}
    assert {day: d.state for day, d in by_date.items()} == {
        "2019-03-28": "failed",
        "2019-03-27": "loaded",  # its failure was mended by the later run
        "2019-03-26": "missing",  # due, and no run of it ended: the schedule never ran it
    }
    assert by_date["2019-03-28"].reason == reason
    assert by_date["2019-03-28"].request.name == f"{stem}.yaml"
    assert by_date["2019-03-28"].request.requested_by == BY
    assert by_date["2019-03-28"].request.worker == "host:1:abc"


def test_a_timed_out_run_leaves_its_error_and_a_stopped_one_nothing(tmp_path, monkeypatch):
    lake = open_lake(str(tmp_path / "lake"))
    requests = tmp_path / "lake" / "requests"
    runs_end(tmp_path, monkeypatch, "hang", "HOOK hanging")
    hung = DailySchedule(AT, UTC, ["--local-scheduler"], timeout=1, lake=lake)
    assert hung.run_if_due(at("2019-03-30")).timed_out

    _stem, record, log = one_result(requests, "2019-03-29", "error")
    assert record["error"].startswith("ufo: error: schedule: the run for 2019-03-29 timed out")
    assert "after 1 s" in record["error"] and record["exit_code"] != 0
    assert log.splitlines() == ["HOOK hanging"]

    # The worker is stopping: its run is stopped, and leaves nothing (it runs again later).
    stopping = threading.Event()
    stopping.set()
    stopped = DailySchedule(AT, UTC, ["--local-scheduler"], stopping=stopping, lake=lake)
    before = results(requests)
    assert stopped.run_if_due(at("2019-03-31")).stopped
    assert results(requests) == before


def test_the_requests_loop_leaves_the_schedules_results_alone(tmp_path, monkeypatch):
    lake = open_lake(str(tmp_path / "lake"))
    requests = tmp_path / "lake" / "requests"
    runs_end(tmp_path, monkeypatch, "0", "HOOK done")
    DailySchedule(AT, UTC, ["--local-scheduler"], lake=lake).run_if_due(at("2019-03-30"))
    runs_end(tmp_path, monkeypatch, "30", "ufo: error: HOOK failed")
    DailySchedule(AT, UTC, ["--local-scheduler"], lake=lake).run_if_due(at("2019-03-31"))
    left = results(requests)
    assert sorted(n.rsplit(".", 2)[-2] for n in left if n.endswith(".yaml")) == ["done", "error"]
    assert len(left) == 4  # and their two logs

    runner = RequestRunner(lake, ["--local-scheduler"], "host:2:def")
    assert runner.pending() == []
    outcome = runner.run_pending()
    assert (outcome.done, outcome.failed, outcome.waiting) == ([], [], [])
    assert results(requests) == left
    assert not (requests / ".claims").exists()


def test_a_lake_that_fails_loses_the_record_not_the_schedule(tmp_path, monkeypatch, caplog):
    requests = tmp_path / "lake" / "requests"
    requests.parent.mkdir()
    requests.write_text("not a folder")  # every write under it fails
    lake = open_lake(str(tmp_path / "lake"))
    reason = "ufo: error: TopStatesToDatabase(date=2019-03-29): HOOK failed"
    runs_end(tmp_path, monkeypatch, "30", reason)
    caplog.set_level(logging.INFO, logger="ufo.worker")
    with HttpSink() as sink:
        monkeypatch.setenv("UFO_ALERT_WEBHOOK", f"{sink.url}/hook")
        schedule = DailySchedule(AT, UTC, ["--local-scheduler"], lake=lake)
        failed = schedule.run_if_due(at("2019-03-30"))
        [(_path, post)] = sink.wait_for(1)

        assert failed.exit_code == 30 and failed.reason == reason
        logged = caplog.messages
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        [warning] = [r.getMessage() for r in warnings if "could not be written" in r.getMessage()]
        assert "the run for 2019-03-29" in warning and str(requests) in warning
        assert f"schedule: the run for 2019-03-29 failed (exit code 30): {reason}" in logged
        # The alert goes as before, and the schedule goes on: the next day runs, and once the
        # lake is back its result is there.
        assert post["alert"]["failures"][0]["reason"] == reason
        requests.unlink()
        runs_end(tmp_path, monkeypatch, "0", "HOOK done")
        assert schedule.run_if_due(at("2019-03-30", 20)) is None  # once a day
        assert schedule.run_if_due(at("2019-03-31")).exit_code == 0
    _stem, record, _log = one_result(requests, "2019-03-30", "done")
    assert record["status"] == "done"


def test_the_service_leaves_its_scheduled_runs_result_under_its_own_id(tmp_path):
    requests, src = lake_with_source(tmp_path)
    _hook, hook_env = run_hook(tmp_path, "exit")  # the run ends at once, done
    env = pipeline_env(
        str(requests.parent), None, str(src), UFO_LOCAL_SCHEDULER="1",
        UFO_SCHEDULE_TIME="00:00", UFO_TIMEZONE="UTC", **hook_env,
    )  # fmt: skip
    live = LiveWorker(env, "--poll", "0.2")
    try:
        done = wait_until(
            lambda: [p for p in requests.glob("schedule-*.done.yaml")], "the scheduled run's result",
            60, live.proc,
        )  # fmt: skip
        watching = wait_until(lambda: live.line_with("worker ", " watching "), "the start line")
        left = results(requests)
        time.sleep(1)  # five more looks of the requests loop
        assert results(requests) == left and live.proc.poll() is None
    finally:
        live.kill()
    [path] = done
    record = yaml.safe_load(path.read_text())
    worker_id = watching.split("worker ", 1)[1].split(" watching ", 1)[0]
    assert record["worker"] == worker_id and record["requested_by"] == BY
    yesterday = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    assert NAME.fullmatch(path.name.removesuffix(".done.yaml")).group(1) == yesterday.isoformat()
    assert path.with_name(path.name.replace(".done.yaml", ".log")).exists()
    assert not (requests / ".claims").exists()


def test_a_run_luigid_gave_to_another_replica_leaves_nothing_and_alerts_nobody(
    tmp_path, monkeypatch, caplog
):
    """Two replicas' schedules ask for the same date: luigid runs it on one, and the other's
    run ends with Luigi's already_running code (luigi.cfg's [retcode], 10). That one is no
    failure: no result (the replica that runs it writes one), no alert. A failed run (30), on
    the same schedule's next day, is alerted as ever: the alert path works here."""
    lake = open_lake(str(tmp_path / "lake"))
    requests = tmp_path / "lake" / "requests"
    caplog.set_level(logging.INFO, logger="ufo.worker")
    with HttpSink() as sink:
        monkeypatch.setenv("UFO_ALERT_WEBHOOK", f"{sink.url}/hook")
        schedule = DailySchedule(AT, UTC, ["--local-scheduler"], lake=lake)
        runs_end(tmp_path, monkeypatch, "10", "HOOK run by another worker")
        assert schedule.run_if_due(at("2019-03-30")).exit_code == 10
        assert results(requests) == {}
        assert "schedule: the run for 2019-03-29 is another worker's" in caplog.text
        assert "failed" not in caplog.text
        runs_end(tmp_path, monkeypatch, "30", "ufo: error: HOOK failed")
        assert schedule.run_if_due(at("2019-03-31")).exit_code == 30
        [(_path, post)] = sink.wait_for(1)  # the failure's alert only
        assert post["alert"]["failures"][0]["dates"] == ["2019-03-30"]
        time.sleep(0.5)
        assert len(sink.posts) == 1
    [name] = [n for n in results(requests) if n.endswith(".yaml")]
    assert name.startswith("schedule-2019-03-30-") and name.endswith(".error.yaml")
