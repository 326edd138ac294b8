"""A running request's log in the lake before it ends, and its tasks' Spark output beside it.

The runs are stand-ins (a ``sitecustomize`` on the run's PYTHONPATH, as in ``support``): one
that hangs until released, and one that prints a task's start, keeps a spark-submit's output
where the pipeline keeps it (``$UFO_SPARK_LOG_DIR``, the run's own folder) and waits, so that neither Spark nor a
database is needed.
"""

from __future__ import annotations

import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from etl.adapters.lake import open_lake
from etl.worker.request_states import RequestStates
from tests.support import pipeline_env
from tests.worker.support import LiveWorker, lake_with_source, run_hook, wait_until

SECRET = "wJalrXUtnFEMI-test-secret-value"

_SPARK_HOOK = '''\
"""Test hook: a run that starts a Spark task, keeps its output, and ends when released."""
import os, sys, time
from pathlib import Path

_dir = os.environ.get("UFO_TEST_HOOK_DIR")
if _dir and sys.orig_argv[1:3] == ["-m", "luigi"]:
    _dir = Path(_dir)
    _spark = Path(os.environ["UFO_SPARK_LOG_DIR"])
    (_dir / "log-dir").write_text(str(_spark))
    print("start: ReadUFOs(date=2019-03-29)", flush=True)
    print("done: ReadUFOs(date=2019-03-29) in 0.1 s -> lake", flush=True)
    print("start: AggregateUFOsByState(date=2019-03-29)", flush=True)
    _spark.mkdir(parents=True, exist_ok=True)
    (_spark / "AggregateUFOsByState_2019_03_29_ab12.20190329T060000.7.log").write_text(
        "==== stdout ====\\nclassified 1 row\\n==== stderr ====\\nINFO key=%s\\n"
        % os.environ["AWS_SECRET_ACCESS_KEY"]
    )
    _end = time.monotonic() + 60
    while not (_dir / "release").exists() and time.monotonic() < _end:
        time.sleep(0.1)
    print("done: AggregateUFOsByState(date=2019-03-29) in 2.0 s -> lake", flush=True)
    sys.stdout.flush()
    os._exit(0)
'''


def test_a_running_requests_log_is_in_the_lake_before_its_result(tmp_path):
    requests, src = lake_with_source(tmp_path)
    (requests / "slow.yaml").write_text("task: ReadUFOs\nparams: {date: 2019-03-29}\n")
    hook, hook_env = run_hook(tmp_path, "hang")
    env = pipeline_env(str(requests.parent), None, str(src), UFO_LOCAL_SCHEDULER="1",
                       UFO_PROGRESS_SECONDS="2", **hook_env)  # fmt: skip

    live = LiveWorker(env, "--once")
    try:
        wait_until(lambda: live.line_with("HOOK-HANGING"), "the run's first line", 30, live.proc)
        started = time.monotonic()
        log = requests / "slow.log"
        wait_until(lambda: log.exists() and "HOOK-HANGING" in log.read_text(),
                   "the live log in the lake", 15, live.proc)  # fmt: skip
        assert time.monotonic() - started < 10  # within seconds of its first line
        assert (requests / "slow.yaml").exists()  # still running: no result yet
        assert not (requests / "slow.done.yaml").exists()
        assert not (requests / "slow.error.yaml").exists()
        (hook / "release").touch()
        code = live.wait(timeout=120)
    finally:
        (hook / "release").touch()
        live.kill()
    assert code == 0, live.output[-3000:]
    final = (requests / "slow.log").read_text()
    assert "HOOK-HANGING" in final and "HOOK-RELEASED" in final  # the whole log at the end
    assert (requests / "slow.done.yaml").exists()
    assert not (requests / "slow.spark.log").exists()  # no spark-submit ran
    assert "could not be uploaded" not in live.output


@pytest.mark.parametrize("own_log_dir", [True, False], ids=["worker-log-dir", "no-log-dir"])
def test_a_runs_spark_output_is_kept_beside_its_log(tmp_path, own_log_dir):
    requests, src = lake_with_source(tmp_path)
    (requests / "agg.yaml").write_text("task: AggregateUFOsByState\nparams: {date: 2019-03-29}\n")
    hook, hook_env = run_hook(tmp_path, text=_SPARK_HOOK)
    env = pipeline_env(str(requests.parent), None, str(src), UFO_LOCAL_SCHEDULER="1",
                       UFO_PROGRESS_SECONDS="2", AWS_SECRET_ACCESS_KEY=SECRET, **hook_env)  # fmt: skip
    logs = tmp_path / "worker-logs"
    if own_log_dir:
        env["UFO_LOG_DIR"] = str(logs)
        (logs / "spark").mkdir(parents=True)
        # Another run's output in the worker's folder, written while this one runs (a
        # replica sharing the volume): never this request's.
        other = logs / "spark" / "ReadUFOs_2019_03_28_cd34.20190328T060000.5.log"
    else:
        env.pop("UFO_LOG_DIR", None)

    live = LiveWorker(env, "--once")
    try:
        log = requests / "agg.log"
        wait_until(lambda: log.exists() and "AggregateUFOsByState" in log.read_text(),
                   "the live log in the lake", 30, live.proc)  # fmt: skip
        # What the console reads: the request runs, and its live log names the task running.
        states = RequestStates(open_lake(str(requests.parent)), ZoneInfo("UTC"))
        running = [s for s in states.all() if s.status == "running"]
        assert [s.name for s in running] == ["agg.yaml"]
        assert states.with_task_now(running[0]).task_now == "AggregateUFOsByState(date=2019-03-29)"
        assert not (requests / "agg.spark.log").exists()  # kept when the run ends
        if own_log_dir:
            other.write_text("another run's output\n")
        (hook / "release").touch()
        code = live.wait(timeout=120)
    finally:
        (hook / "release").touch()
        live.kill()
    assert code == 0, live.output[-3000:]
    given = Path((hook / "log-dir").read_text())
    # The run's own folder, in the request's temporary folder, gone with it.
    assert given.name == "spark" and given.parent.name.startswith("ufo-request-")
    assert not given.exists()
    if own_log_dir:  # kept in the worker's folder too, as a run outside the worker keeps it
        kept = logs / "spark" / "AggregateUFOsByState_2019_03_29_ab12.20190329T060000.7.log"
        assert "classified 1 row" in kept.read_text()
    spark = (requests / "agg.spark.log").read_text()
    assert spark.startswith("==== AggregateUFOsByState_2019_03_29_ab12.20190329T060000.7.log (")
    assert "classified 1 row" in spark and "INFO key=REDACTED" in spark
    assert SECRET not in spark and SECRET not in (requests / "agg.log").read_text()
    assert "another run's output" not in spark
    assert "done: AggregateUFOsByState" in (requests / "agg.log").read_text()
