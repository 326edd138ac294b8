"""How the worker service runs its daily schedule: output logged live, and a bounded time.

The scheduled run is the real ``python -m luigi --module etl TopStatesToDatabase`` command,
started by the real service; the test hook of tests/worker/support.py (a ``sitecustomize`` on
the run's PYTHONPATH) makes it hang, fork a stand-in for spark-submit, or end at once as a
stand-in for the pipeline, so that these tests need neither Spark nor a database.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from zoneinfo import ZoneInfo

from etl.worker.schedule import DailySchedule
from tests.support import pipeline_env
from tests.worker.support import (
    LiveWorker,
    alive,
    hook_pids,
    kill_all,
    lake_with_source,
    run_hook,
    wait_until,
)

ERROR_LINE = re.compile(r" ufo\.worker\[\d+\]: ufo: error: ")


def scheduled_env(tmp_path, *switches: str):
    """(requests folder, hook folder, env) for a service whose schedule is due at once."""
    requests, src = lake_with_source(tmp_path)
    hook, hook_env = run_hook(tmp_path, *switches)
    env = pipeline_env(
        str(requests.parent), None, str(src), UFO_LOCAL_SCHEDULER="1",
        UFO_SCHEDULE_TIME="00:00", UFO_TIMEZONE="UTC", **hook_env,
    )  # fmt: skip
    return requests, hook, env


def test_a_scheduled_runs_output_is_logged_while_it_runs(tmp_path):
    """The hook holds the run after its first line, then ends it as a stand-in for the pipeline."""
    _, hook, env = scheduled_env(tmp_path, "hang", "exit")

    live = LiveWorker(env, "--poll", "0.2")
    try:
        line = wait_until(
            lambda: live.line_with("| HOOK-HANGING"), "the scheduled run's first line", 60,
            live.proc,
        )  # fmt: skip
        assert re.search(r"schedule \d{4}-\d{2}-\d{2} \| HOOK-HANGING$", line), line
        [run] = hook_pids(hook, "run")
        assert alive(run)  # the line came while the run was still going
        assert live.line_with("schedule: the run for") is None
        (hook / "release").touch()
        done = wait_until(
            lambda: live.line_with("schedule: the run for", "is done (exit code 0)"),
            "the scheduled run's end", 60, live.proc,
        )  # fmt: skip
    finally:
        (hook / "release").touch()
        live.kill()
        kill_all(hook_pids(hook, "run"))
    day = line.split("schedule ", 1)[1].split(" ", 1)[0]
    assert f"the run for {day} is done" in done
    assert live.line_with(f"schedule {day} | HOOK-RELEASED")
    running = [ln for ln in live.lines if "schedule: running " in ln]
    assert len(running) == 1 and f"TopStatesToDatabase --local-scheduler --date {day}" in running[0]


def test_a_scheduled_run_that_times_out_is_killed_and_the_service_goes_on(tmp_path):
    """The hook makes the scheduled run hang with a grandchild (a stand-in for spark-submit);
    later runs end at once, as a stand-in for the pipeline."""
    requests, hook, env = scheduled_env(tmp_path, "hang", "grandchild", "exit")

    live = LiveWorker(env, "--poll", "0.2", "--timeout", "3")
    try:
        error = wait_until(
            lambda: live.line_with("ufo: error: schedule:"), "the timeout's error line", 60,
            live.proc,
        )  # fmt: skip
        runs, grandchildren = hook_pids(hook, "run"), hook_pids(hook, "grandchild")
        assert len(runs) == 1 and len(grandchildren) == 1
        assert not any(alive(pid) for pid in runs + grandchildren)
        # The service goes on: it takes the next request, and stays up.
        (requests / "after.yaml").write_text("task: ReadUFOs\nparams: {date: 2019-03-29}\n")
        wait_until(
            lambda: (requests / "after.done.yaml").exists(), "the next request", 60, live.proc
        )
        assert live.proc.poll() is None
    finally:
        live.kill()
        kill_all(hook_pids(hook, "grandchild") + hook_pids(hook, "run"))
    day = re.search(r"the run for (\S+) timed out after 3 s and was stopped", error).group(1)
    assert live.line_with(f"schedule {day} | HOOK-HANGING")
    assert "--timeout" in error and f"params: {{date: {day}}}" in error
    assert "goes on tomorrow after 00:00 UTC" in error
    assert [ln for ln in live.lines if ERROR_LINE.search(ln)] == [error]  # one line says it
    # It is not tried again the same day.
    assert len([ln for ln in live.lines if "schedule: running " in ln]) == 1


def test_after_a_timed_out_run_the_schedule_runs_the_next_day(tmp_path, monkeypatch, caplog):
    """The first run hangs (the hook); the next day's ends at once, a stand-in for the pipeline."""
    hook, hook_env = run_hook(tmp_path, "hang", "exit")
    for name, value in hook_env.items():
        monkeypatch.setenv(name, value)
    schedule = DailySchedule(dt.time(2, 0), ZoneInfo("UTC"), ["--local-scheduler"], timeout=2)
    first_day = dt.datetime(2026, 11, 22, 3, 0, tzinfo=dt.UTC)

    caplog.set_level(logging.INFO, logger="ufo.worker")
    try:
        timed_out = schedule.run_if_due(first_day)
        again = schedule.run_if_due(first_day + dt.timedelta(hours=12))
        next_day = schedule.run_if_due(first_day + dt.timedelta(days=1))
    finally:
        kill_all(hook_pids(hook, "run"))

    assert timed_out is not None and timed_out.timed_out and timed_out.exit_code != 0
    assert again is None
    assert next_day is not None and not next_day.timed_out and next_day.exit_code == 0
    errors = [r.getMessage() for r in caplog.records if r.getMessage().startswith("ufo: error:")]
    assert len(errors) == 1
    assert errors[0].startswith("ufo: error: schedule: the run for 2026-11-21 timed out after 2 s")
    messages = [r.getMessage() for r in caplog.records]
    assert "schedule 2026-11-21 | HOOK-HANGING" in messages
    assert "schedule: the run for 2026-11-22 is done (exit code 0)" in messages
