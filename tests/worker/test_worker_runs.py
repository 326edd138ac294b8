"""How the worker runs a request: which scheduler, live output, and a bounded time."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator

import pytest
import yaml

from tests.support import REPO, free_port, pipeline_env
from tests.worker.support import (
    LiveWorker,
    alive,
    hook_pids,
    kill_all,
    lake_with_source,
    run_hook,
    wait_until,
)


def worker(env: dict, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """``python -m etl.worker --once ARGS`` with no scheduler chosen by the environment."""
    env = {k: v for k, v in env.items() if k != "UFO_LOCAL_SCHEDULER"}
    return subprocess.run(
        [sys.executable, "-m", "etl.worker", "--once", *args],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def test_the_local_scheduler_is_chosen_on_the_command_line(tmp_path):
    requests, src = lake_with_source(tmp_path)
    (requests / "r.yaml").write_text("task: ReadUFOs\nparams: {date: 2019-03-29}\n")

    result = worker(pipeline_env(str(requests.parent), None, str(src)), "--local-scheduler")

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "--local-scheduler" in next(
        ln for ln in result.stdout.splitlines() if ": running " in ln
    )
    assert "no luigid" not in result.stdout  # no scheduler to look for
    assert (requests / "r.done.yaml").exists()


def test_a_missing_luigid_is_said_at_start_up(tmp_path):
    requests, src = lake_with_source(tmp_path)
    port = free_port()  # nothing listens there
    env = pipeline_env(str(requests.parent), None, str(src))

    started = time.monotonic()
    result = worker(env, "--scheduler-host", "127.0.0.1", "--scheduler-port", str(port))

    assert result.returncode == 0  # nothing to do
    assert time.monotonic() - started < 30
    lines = [ln for ln in result.stdout.splitlines() if "no luigid" in ln]
    assert len(lines) == 1, result.stdout
    assert f"no luigid answers at http://127.0.0.1:{port}/" in lines[0]
    assert "--local-scheduler" in lines[0]

    # Without flags, the address comes from luigi.cfg's [core] section.
    config = tmp_path / "luigi.cfg"
    config.write_text(f"[core]\nscheduler_host = 127.0.0.1\nscheduler_port = {port}\n")
    result = worker(dict(env, LUIGI_CONFIG_PATH=str(config)))
    assert f"no luigid answers at http://127.0.0.1:{port}/" in result.stdout


@pytest.fixture
def luigid(tmp_path) -> Iterator[int]:
    """A real luigid on a free loopback port, with no configuration of its own; its port."""
    port = free_port()
    home = tmp_path / "luigid"
    home.mkdir()
    (home / "luigid.cfg").write_text("")
    proc = subprocess.Popen(
        [sys.executable, "-m", "etl.worker.luigid_server", "--address", "127.0.0.1",
         "--port", str(port), "--state-path", str(home / "state.pickle"), "--logdir", str(home)],
        cwd=home, env=dict(os.environ, LUIGI_CONFIG_PATH=str(home / "luigid.cfg"),
                           PYTHONPATH=str(REPO)),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip

    def healthy() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/task_list", timeout=2):
                return True
        except OSError:
            return False

    try:
        wait_until(healthy, "luigid", timeout=60)
        yield port
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def test_the_scheduler_flags_reach_luigid(tmp_path, luigid):
    requests, src = lake_with_source(tmp_path)
    (requests / "r.yaml").write_text("task: ReadUFOs\nparams: {date: 2019-03-29}\n")

    result = worker(
        pipeline_env(str(requests.parent), None, str(src)),
        "--scheduler-host", "127.0.0.1", "--scheduler-port", str(luigid),
    )  # fmt: skip

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "no luigid" not in result.stdout
    assert (requests / "r.done.yaml").exists()
    query = urllib.parse.urlencode({"data": json.dumps({"status": "DONE"})})
    with urllib.request.urlopen(f"http://127.0.0.1:{luigid}/api/task_list?{query}") as response:
        done = json.load(response)["response"]
    assert [task["name"] for task in done.values()] == ["ReadUFOs"]


def test_a_runs_output_is_logged_while_it_runs(tmp_path):
    requests, src = lake_with_source(tmp_path)
    (requests / "live.yaml").write_text("task: ReadUFOs\nparams: {date: 2019-03-29}\n")
    hook, hook_env = run_hook(tmp_path, "hang")
    env = pipeline_env(str(requests.parent), None, str(src), UFO_LOCAL_SCHEDULER="1", **hook_env)

    live = LiveWorker(env, "--once")
    try:
        line = wait_until(
            lambda: live.line_with("HOOK-HANGING"), "the run's first line", 30, live.proc
        )
        assert "live.yaml | HOOK-HANGING" in line
        assert (requests / "live.yaml").exists()  # its log may be in the lake already: live
        (hook / "release").touch()
        code = live.wait(timeout=120)
    finally:
        (hook / "release").touch()
        live.kill()
    assert code == 0, live.output[-3000:]
    log = (requests / "live.log").read_text()
    assert "HOOK-HANGING" in log and "HOOK-RELEASED" in log
    assert live.line_with("live.yaml | HOOK-RELEASED")


def test_a_run_that_times_out_is_killed_with_all_its_processes(tmp_path):
    requests, src = lake_with_source(tmp_path)
    (requests / "slow.yaml").write_text("task: ReadUFOs\nparams: {date: 2019-03-29}\n")
    (requests / "then.yaml").write_text("task: ReadUFOs\nparams: {date: 2019-03-28}\n")
    hook, hook_env = run_hook(tmp_path, "hang", "grandchild")
    env = pipeline_env(str(requests.parent), None, str(src), UFO_LOCAL_SCHEDULER="1", **hook_env)

    live = LiveWorker(env, "--once", "--timeout", "3")
    try:
        code = live.wait(timeout=60)
        grandchildren = hook_pids(hook, "grandchild")
        runs = hook_pids(hook, "run")
        assert code == 1, live.output[-3000:]
        assert len(grandchildren) == 2 and len(runs) == 2  # slow.yaml's, then then.yaml's
        assert not any(alive(pid) for pid in grandchildren + runs)
    finally:
        live.kill()
        kill_all(hook_pids(hook, "grandchild") + hook_pids(hook, "run"))
    record = yaml.safe_load((requests / "slow.error.yaml").read_text())
    assert record["error"] == "timed out after 3 s"
    assert "HOOK-HANGING" in (requests / "slow.log").read_text()
    assert (requests / "then.done.yaml").exists()  # the service went on
