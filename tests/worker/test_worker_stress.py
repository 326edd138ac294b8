"""The worker under stress: half-written requests, SIGTERM mid-run, and what `make stop` leaves.

The runs here are stand-ins (the run hook of ``tests/worker/support.py``): no Spark, no database.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest
import yaml

from etl.adapters.lake import open_lake
from etl.worker import service
from etl.worker.service import RequestRunner
from tests.support import REPO, pipeline_env
from tests.worker.support import (
    LiveWorker,
    alive,
    hook_pids,
    kill_all,
    lake_with_source,
    run_hook,
    wait_until,
)


def runner(requests) -> RequestRunner:
    return RequestRunner(open_lake(str(requests.parent)), ["--local-scheduler"], "test:1")


def test_a_half_written_request_waits_and_is_run_once_whole(tmp_path, monkeypatch):
    requests, src = lake_with_source(tmp_path)
    monkeypatch.setenv("UFO_STORAGE", str(requests.parent))
    path = requests / "reload.yaml"
    path.write_text("task: TopStatesToDatabase\n")  # the first line, the rest still to come
    old = time.time() - 25
    os.utime(path, (old, old))

    first = runner(requests).run_pending()
    assert (first.waiting, first.done, first.failed) == (["reload.yaml"], [], [])
    assert path.read_text() == "task: TopStatesToDatabase\n"  # untouched, no result, no claim
    assert sorted(p.name for p in requests.iterdir()) == [".claims", "reload.yaml"]
    assert list((requests / ".claims").iterdir()) == []

    # Never completed: after INCOMPLETE_WAIT it ends as an error that says how to write one.
    monkeypatch.setattr(service, "INCOMPLETE_WAIT", 10.0)
    second = runner(requests).run_pending()
    assert second.failed == ["reload.yaml"]
    result = yaml.safe_load((requests / "reload.error.yaml").read_text())
    assert "incomplete after 10 s: the request has no params" in result["error"]
    assert "rename it into requests/" in result["error"]


def test_a_file_still_being_written_is_left_for_the_next_look(tmp_path, monkeypatch):
    requests, _src = lake_with_source(tmp_path)
    monkeypatch.setenv("UFO_STORAGE", str(requests.parent))
    path = requests / "growing.yaml"
    path.write_text("task: ReadUFOs\n")
    stop = threading.Event()

    def keep_writing() -> None:
        while not stop.wait(0.2):
            with open(path, "a") as out:
                out.write("# more\n")

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        outcome = runner(requests).run_pending()
    finally:
        stop.set()
        writer.join()
    assert outcome.waiting == ["growing.yaml"] and not outcome.failed and not outcome.done
    assert not (requests / "growing.error.yaml").exists()


def test_a_request_handled_by_another_worker_during_the_wait_is_not_being_written(
    tmp_path, monkeypatch
):
    requests, _src = lake_with_source(tmp_path)
    monkeypatch.setenv("UFO_STORAGE", str(requests.parent))
    path = requests / "fresh.yaml"
    path.write_text("task: ReadUFOs\nparams: {date: 2019-03-29}\n")  # young: the worker waits
    # The other worker, meanwhile, runs it and removes it.
    remover = threading.Timer(0.3, path.unlink)
    remover.start()
    try:
        outcome = runner(requests).run_pending()
    finally:
        remover.join()
    assert (outcome.waiting, outcome.done, outcome.failed) == ([], [], [])


def test_hidden_files_are_being_written_and_left_alone(tmp_path, monkeypatch):
    requests, _src = lake_with_source(tmp_path)
    monkeypatch.setenv("UFO_STORAGE", str(requests.parent))
    (requests / ".reload.yaml").write_text("task: ReadUFOs\n")
    assert runner(requests).pending() == []


def test_sigterm_stops_the_run_with_all_its_processes_and_the_request_runs_again(tmp_path):
    requests, src = lake_with_source(tmp_path)
    (requests / "slow.yaml").write_text("task: ReadUFOs\nparams: {date: 2019-03-29}\n")
    hook, hook_env = run_hook(tmp_path, "hang", "grandchild")  # spark-submit's stand-in too
    env = pipeline_env(str(requests.parent), None, str(src), UFO_LOCAL_SCHEDULER="1", **hook_env)

    worker = LiveWorker(env, "--poll", "0.5")  # the service, not --once
    try:
        wait_until(lambda: worker.line_with("HOOK-HANGING"), "the run", proc=worker.proc)
        started = time.monotonic()
        worker.proc.send_signal(signal.SIGTERM)
        code = worker.wait(timeout=60)
        took = time.monotonic() - started
    finally:
        worker.kill()
        kill_all(hook_pids(hook, "run") + hook_pids(hook, "grandchild"))

    assert code == 0 and took < 20, (code, took, worker.output[-2000:])
    assert worker.line_with("SIGTERM: stopping its run")
    assert worker.line_with("slow.yaml", "left to run again")
    # No process of the run outlives the worker: no late load, no second run of the request.
    assert not any(alive(p) for p in hook_pids(hook, "run") + hook_pids(hook, "grandchild"))
    assert sorted(p.name for p in requests.iterdir() if p.is_file()) == ["slow.yaml"]
    assert list((requests / ".claims").iterdir()) == []

    # The next worker runs it, once: its run was stopped before it ended.
    result = subprocess.run(
        [sys.executable, "-m", "etl.worker", "--once"],
        env={k: v for k, v in env.items() if k != "UFO_TEST_HOOK_DIR"},
        cwd=REPO, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (requests / "slow.done.yaml").exists() and not (requests / "slow.yaml").exists()


@pytest.fixture
def run_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("UFO_RUN_DIR", str(tmp_path / ".run"))
    return tmp_path / ".run"


def test_stop_finds_and_stops_a_run_the_worker_left(run_dir):
    from etl.tools import localstack, orphans

    marker = {orphans.MARKER: str(run_dir.resolve())}
    orphan = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)"],
        env=dict(os.environ, **marker), start_new_session=True,
    )  # fmt: skip
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        wait_until(lambda: orphan.pid in orphans.leftover_runs(run_dir), "the orphan to be seen")
        assert other.pid not in orphans.leftover_runs(run_dir)  # only this run directory's
        assert any("a pipeline run of the worker" in n for n in localstack.running())
        assert localstack.main(["check-stopped"]) == 1  # make clean refuses
        localstack.stop()
        orphan.wait(timeout=30)
        assert orphans.leftover_runs(run_dir) == [] and localstack.main(["check-stopped"]) == 0
        assert other.poll() is None
    finally:
        for proc in (orphan, other):
            proc.kill()
            proc.wait()


def test_up_refuses_a_bad_setting_or_one_port_for_two_before_starting_anything(
    run_dir, monkeypatch, capsys
):
    from etl.tools import localstack
    from tests.support import free_port

    # The ports as `make up` passes them: PORT, LUIGID_PORT, ... in the environment.
    monkeypatch.setenv("SPARK_HISTORY_PORT", str(free_port()))
    monkeypatch.setenv("SPARK_CONNECT_PORT", str(free_port()))
    monkeypatch.delenv("PROXY_USERS", raising=False)
    monkeypatch.setenv("PORT", "8090")
    monkeypatch.setenv("LUIGID_PORT", "8090")
    assert localstack.main(["up"]) == 1
    assert "PORT and LUIGID_PORT are both 8090" in capsys.readouterr().err

    run_dir.mkdir()
    (run_dir / "demo.env").write_text(f"UFO_STORAGE={run_dir / 'lake'}\n")
    monkeypatch.setenv("UFO_SCHEDULE_TIME", "25:99")
    monkeypatch.setenv("PORT", str(free_port()))
    monkeypatch.setenv("LUIGID_PORT", str(free_port()))
    assert localstack.main(["up"]) == 1
    err = capsys.readouterr().err
    assert "nothing started: UFO_SCHEDULE_TIME='25:99'" in err and "HH:MM" in err
    assert localstack.running() == [] and not (run_dir / "pids").exists()
