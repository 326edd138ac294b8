"""Claims are leases: a live worker keeps its claim fresh, a dead worker's request is taken over.

The leases here are seconds long, so that the tests end in seconds.
"""

from __future__ import annotations

import os
import signal
import socket
import time

import yaml

from tests.support import pipeline_env
from tests.worker.support import (
    LiveWorker,
    alive,
    hook_pids,
    kill_all,
    lake_with_source,
    race_workers,
    read_ufos_complete,
    run_hook,
    run_worker,
    wait_until,
)

LEASE = "3"  # heartbeats every second: slack for a busy machine


def read_claim(path) -> dict | None:
    try:
        return yaml.safe_load(path.read_text())
    except FileNotFoundError:
        return None


def test_a_killed_workers_request_is_taken_over_after_its_lease(tmp_path):
    requests, src = lake_with_source(tmp_path)
    (requests / "slow.yaml").write_text("task: ReadUFOs\nparams: {date: 2019-03-29}\n")
    hook, hook_env = run_hook(tmp_path, "hang")
    env = pipeline_env(str(requests.parent), None, str(src), UFO_LOCAL_SCHEDULER="1", **hook_env)
    claim = requests / ".claims" / "slow.yaml"

    first = LiveWorker(dict(env, UFO_CLAIM_LEASE=LEASE), "--once")  # the lease from the env
    try:
        wait_until(lambda: first.line_with("slow.yaml", "HOOK-HANGING"), "the run", proc=first.proc)
        before = read_claim(claim)
        owner = before["worker"]
        assert owner.startswith(f"{socket.gethostname()}:{first.proc.pid}:")
        assert before["lease"] == 3.0  # as UFO_CLAIM_LEASE says
        # The running worker refreshes its claim (every lease/3 = 1 s).
        wait_until(
            lambda: (read_claim(claim) or {}).get("heartbeat", 0) > before["heartbeat"],
            "a heartbeat",
            timeout=5,
        )
        # Each heartbeat keeps when the worker claimed it: the run's start, which readers show.
        assert read_claim(claim)["since"] == before["since"] <= before["heartbeat"]
        # While it lives, another worker leaves the request alone.
        other = run_worker(env, "--lease", LEASE, timeout=60)
        assert other.returncode == 0, other.stdout[-3000:]
        assert ": running " not in other.stdout and "took over" not in other.stdout
        assert (requests / "slow.yaml").exists()

        # kill -9: no clean-up of any kind. Its run is killed too, as if its host had died.
        os.kill(first.proc.pid, signal.SIGKILL)
        first.wait(timeout=30)
        kill_all(hook_pids(hook, "run"))
        wait_until(lambda: not any(alive(p) for p in hook_pids(hook, "run")), "the run's end")
        assert read_claim(claim)["worker"] == owner  # the claim outlives its worker
        time.sleep(float(LEASE) + 0.5)  # the last heartbeat is now older than the lease

        taker = run_worker(env, "--lease", LEASE, timeout=120)
    finally:
        first.kill()
        kill_all(hook_pids(hook, "run"))

    assert taker.returncode == 0, taker.stdout[-3000:] + taker.stderr[-3000:]
    took = [ln for ln in taker.stdout.splitlines() if "took over" in ln]
    assert len(took) == 1 and "slow.yaml" in took[0] and owner in took[0]
    assert sorted(p.name for p in requests.iterdir() if p.is_file()) == [
        "slow.done.yaml",
        "slow.log",
    ]
    done = yaml.safe_load((requests / "slow.done.yaml").read_text())
    assert done["worker"] != owner and done["exit_code"] == 0
    assert list((requests / ".claims").iterdir()) == []
    assert read_ufos_complete(env, "2019-03-29") == [True]


def write_stale_claim(path, worker: str = "deadhost:4242", age: float = 3600) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"worker: {worker}\nheartbeat: {time.time() - age}\nlease: 120\n")


def test_racing_workers_take_over_a_stale_claim_once(tmp_path):
    requests, src = lake_with_source(tmp_path)
    for name, day in (("r1", 27), ("r2", 28), ("legacy", 29)):
        (requests / f"{name}.yaml").write_text(f"task: ReadUFOs\nparams: {{date: 2019-03-{day}}}\n")
    write_stale_claim(requests / ".claims" / "r1.yaml")
    write_stale_claim(requests / ".claims" / "r2.yaml", worker="deadhost:99")
    # A claim written before leases existed holds only a worker id; its file time is its age.
    legacy = requests / ".claims" / "legacy.yaml"
    legacy.write_text("oldhost:7")
    os.utime(legacy, (time.time() - 3600, time.time() - 3600))

    results = race_workers(
        pipeline_env(str(requests.parent), None, str(src)), n=3, args=("--lease", "60")
    )

    assert all(r.returncode == 0 for r in results), [r.stdout[-2000:] for r in results]
    out = "\n".join(r.stdout for r in results)
    runs = [ln for ln in out.splitlines() if ": running " in ln]
    assert sorted(ln.split("request ", 1)[1].split(":", 1)[0] for ln in runs) == [
        "legacy.yaml",
        "r1.yaml",
        "r2.yaml",
    ]
    took = [ln for ln in out.splitlines() if "took over" in ln]
    assert len(took) == 3
    assert any("deadhost:4242" in ln for ln in took) and any("oldhost:7" in ln for ln in took)
    assert sorted(p.name for p in requests.iterdir() if p.is_file()) == [
        "legacy.done.yaml", "legacy.log", "r1.done.yaml", "r1.log", "r2.done.yaml", "r2.log",
    ]  # fmt: skip
    assert list((requests / ".claims").iterdir()) == []


def test_a_fresh_claim_is_left_alone(tmp_path):
    requests, src = lake_with_source(tmp_path)
    (requests / "busy.yaml").write_text("task: ReadUFOs\nparams: {date: 2019-03-29}\n")
    write_stale_claim(requests / ".claims" / "busy.yaml", worker="livehost:1", age=5)

    result = run_worker(pipeline_env(str(requests.parent), None, str(src)), "--lease", "60")

    assert result.returncode == 0
    assert ": running " not in result.stdout and "took over" not in result.stdout
    assert (requests / "busy.yaml").exists()
    assert "livehost:1" in (requests / ".claims" / "busy.yaml").read_text()


def test_a_request_its_dead_worker_finished_is_not_run_again(tmp_path):
    requests, src = lake_with_source(tmp_path)
    # The worker died after writing the result, before removing the request and its claim.
    (requests / "r.yaml").write_text("task: ReadUFOs\nparams: {date: 2019-03-29}\n")
    finished = "request: x\nstatus: done\nworker: deadhost:4242\nexit_code: 0\n"
    (requests / "r.done.yaml").write_text(finished)
    write_stale_claim(requests / ".claims" / "r.yaml")
    # A result of an earlier request of the same name, by another worker, does not count.
    (requests / "again.yaml").write_text("task: ReadUFOs\nparams: {date: 2019-03-28}\n")
    (requests / "again.done.yaml").write_text("request: x\nstatus: done\nworker: yesterday:1\n")
    write_stale_claim(requests / ".claims" / "again.yaml")

    # The dead worker finished "old.yaml" and removed it, but not its claim; then a new
    # "old.yaml" came: newer than the result, it is run.
    (requests / "old.yaml").write_text("task: ReadUFOs\nparams: {date: 2019-03-27}\n")
    (requests / "old.done.yaml").write_text(finished)
    os.utime(requests / "old.done.yaml", (time.time() - 600, time.time() - 600))
    write_stale_claim(requests / ".claims" / "old.yaml")

    result = run_worker(pipeline_env(str(requests.parent), None, str(src)), "--lease", "60")

    assert result.returncode == 0, result.stdout[-3000:]
    runs = [ln for ln in result.stdout.splitlines() if ": running " in ln]
    assert len(runs) == 2 and "again.yaml" in runs[0] and "old.yaml" in runs[1]
    assert (requests / "r.done.yaml").read_text() == finished
    assert not (requests / "r.yaml").exists()
    assert "r.yaml was already finished by deadhost:4242" in result.stdout
    assert list((requests / ".claims").iterdir()) == []
    env = pipeline_env(str(requests.parent), None, str(src))
    assert read_ufos_complete(env, "2019-03-29", "2019-03-28", "2019-03-27") == [False, True, True]


def test_a_worker_that_lost_its_claim_stops_its_run(tmp_path):
    requests, src = lake_with_source(tmp_path)
    (requests / "slow.yaml").write_text("task: ReadUFOs\nparams: {date: 2019-03-29}\n")
    hook, hook_env = run_hook(tmp_path, "hang")
    env = pipeline_env(str(requests.parent), None, str(src), UFO_LOCAL_SCHEDULER="1", **hook_env)
    claim = requests / ".claims" / "slow.yaml"

    worker = LiveWorker(env, "--once", "--lease", LEASE)
    try:
        wait_until(lambda: worker.line_with("HOOK-HANGING"), "the run", proc=worker.proc)
        # Another worker took the request over (say, this one was paused longer than its lease).
        claim.write_text(f"worker: thief:1\nheartbeat: {time.time() + 600}\nlease: 1.5\n")
        code = worker.wait(timeout=60)
    finally:
        worker.kill()
        kill_all(hook_pids(hook, "run"))

    assert code == 1
    assert worker.line_with("slow.yaml", "lost its claim to thief:1")
    assert not any(alive(p) for p in hook_pids(hook, "run"))
    # The new owner's claim and the request are left to it; no result is written.
    assert "thief:1" in claim.read_text()
    assert sorted(p.name for p in requests.iterdir() if p.is_file()) == ["slow.yaml"]


def test_a_lease_that_is_not_seconds_is_refused(tmp_path):
    requests, src = lake_with_source(tmp_path)
    env = pipeline_env(str(requests.parent), None, str(src), UFO_CLAIM_LEASE="two minutes")
    result = run_worker(env, timeout=60)
    assert result.returncode == 2
    assert (
        "UFO_CLAIM_LEASE='two minutes' (from UFO_CLAIM_LEASE) is not valid: "
        "expected a positive number of seconds." in result.stderr
    )
    assert run_worker(env, "--lease", "0", timeout=60).returncode == 2
