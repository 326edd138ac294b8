"""The pipeline with every service on a host of its own, reaching the others only by network.

What it proves: nothing in the product needs the services on one machine or a shared disk.
Six "hosts" are network namespaces on one bridge (10.231.X.0/24, see support.py): ``store``
(moto S3, PostgreSQL, luigid), ``master`` (Spark master and history server), ``worker1`` and
``worker2`` (a 1-core Spark worker each), ``driver`` (Luigi runs, spark-submit's driver, the
worker service) and ``connect`` (a Spark Connect server). Each host's processes run in its own
directory and see the others only by address: the lake and the sources are on S3, the Spark
event logs on S3 through ``s3a://`` (the stand-in jars of tests/s3a.py), logs stay where they
are written. The test reaches the hosts from a thread inside a host's namespace.

In order, on one set of hosts:

* a cold run from the driver host, its executors on both workers (the history server's
  record of its application says so);
* a warm run through the Connect server on its own host, driving the same cluster;
* the history server lists both applications, the Connect server's once it has stopped;
* a run request dropped on S3 is run by the worker service on the driver host;
* a run on the whole 2019 index survives the loss of a worker host halfway (its interface
  taken down while the classify step has tasks on both workers): Spark notices within
  seconds, runs the lost host's tasks again on the worker left, and the run ends right, in
  one Spark application.

Every loaded date equals tests/reference.py's independent reading of the same source.
"""

from __future__ import annotations

import datetime as dt
import signal
import subprocess
import sys
import time

import pytest
import yaml

from tests import reference
from tests.cluster.support import expected_top_rows, loaded_top_rows, wait_until
from tests.hosts import support as hs
from tests.hosts.network import get_json

pytestmark = [pytest.mark.integration, pytest.mark.spark, pytest.mark.shared_data]

COLD, WARM, REQUESTED = dt.date(2019, 3, 21), dt.date(2019, 3, 20), dt.date(2019, 3, 19)
CUT = dt.date(2019, 3, 29)
RUN_TIMEOUT = 240


def check_loaded(stack, source, date: dt.date) -> None:
    expected = expected_top_rows(reference.classify(source.read_bytes(), date))
    assert stack.driver.call(loaded_top_rows, stack.database_url, date) == expected


def run_chain(stack, date: dt.date, env: dict) -> subprocess.CompletedProcess:
    result = stack.driver.run(stack.luigi_argv(date), env, RUN_TIMEOUT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return result


def applications(stack, name_prefix: str, count: int) -> list[dict]:
    """The history server's ``count`` applications whose names start so, oldest first (waits
    for them to be listed)."""
    master = stack.master

    def listed() -> list[dict] | None:
        found = [a for a in hs.history_apps(master) if a["name"].startswith(name_prefix)]
        return found if len(found) >= count else None

    found = wait_until(listed, f"{count} x {name_prefix!r} in the history server", 90,
                       master.log("history"))  # fmt: skip
    return sorted(found, key=lambda a: a["attempts"][0]["startTime"])


def application(stack, name_prefix: str) -> dict:
    """The history server's application whose name starts so (waits for it to be listed)."""
    master = stack.master

    def listed() -> dict | None:
        found = [a for a in hs.history_apps(master) if a["name"].startswith(name_prefix)]
        return found[0] if found else None

    return wait_until(listed, f"{name_prefix!r} in the history server", 60, master.log("history"))


def executors_by_host(stack, app_id: str) -> dict[str, dict]:
    url = f"{hs.history_url(stack.master)}/api/v1/applications/{app_id}/allexecutors"
    return {
        e["hostPort"].rsplit(":", 1)[0]: e
        for e in stack.master.get_json(url)
        if e["id"] != "driver"
    }


@pytest.mark.timeout(300)
def test_a_cold_run_from_the_driver_host_uses_both_worker_hosts(stack):
    run_chain(stack, COLD, stack.driver_env(stack.small))

    check_loaded(stack, stack.small, COLD)
    app = application(stack, f"AggregateUFOsByState {COLD}")
    executors = executors_by_host(stack, app["id"])
    workers = [stack["worker1"].address, stack["worker2"].address]
    assert set(executors) == set(workers), executors
    assert all(executors[w]["totalTasks"] > 0 for w in workers), executors


@pytest.mark.timeout(300)
def test_b_a_warm_run_goes_through_the_connect_server_on_its_host(stack):
    remote = hs.start_connect(stack["connect"], stack.master, stack.jars, stack.moto.endpoint)
    before = {a["id"] for a in hs.master_state(stack.master)["completedapps"]}

    run_chain(stack, WARM, stack.driver_env(stack.small, UFO_SPARK_REMOTE=remote))

    check_loaded(stack, stack.small, WARM)
    # Warm: no application of its own on the cluster, the Connect server's did the work.
    state = hs.master_state(stack.master)
    assert {a["id"] for a in state["completedapps"]} == before, state["completedapps"]
    assert [a["name"] for a in state["activeapps"]] == ["Spark Connect server"]


@pytest.mark.timeout(180)
def test_c_the_history_server_lists_the_cold_run_and_the_stopped_connect_server(stack):
    cold = application(stack, f"AggregateUFOsByState {COLD}")
    assert cold["attempts"][-1]["completed"], cold
    connect = stack["connect"]
    if "connect" not in connect.processes:  # test b did not run
        hs.start_connect(connect, stack.master, stack.jars, stack.moto.endpoint)

    connect.stop("connect", timeout=60)  # SIGTERM: Spark closes its event log on S3

    # It ended by itself within the bound (not SIGKILLed, which would leave the log open).
    assert connect.processes["connect"].returncode != -signal.SIGKILL

    def completed() -> bool:
        apps = [a for a in hs.history_apps(stack.master) if a["name"] == "Spark Connect server"]
        return bool(apps) and apps[0]["attempts"][-1]["completed"]

    wait_until(
        completed, "the Connect server's application completed", 90, stack.master.log("history")
    )


@pytest.mark.timeout(300)
def test_d_the_worker_service_on_the_driver_host_runs_a_request_from_s3(stack):
    driver, moto = stack.driver, stack.moto
    name = f"hosts-{REQUESTED}"
    request = (
        f"task: TopStatesToDatabase\nparams: {{date: {REQUESTED}}}\nrequested_by: hosts-test\n"
    )
    hs.put_object(driver, moto, f"lake/requests/{name}.yaml", request.encode())

    result = driver.run(
        [sys.executable, "-m", "etl.worker", "--once", *stack.scheduler_args()],
        stack.driver_env(stack.small), RUN_TIMEOUT,
    )  # fmt: skip

    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    done = hs.get_object(driver, moto, f"lake/requests/{name}.done.yaml")
    assert done is not None, hs.list_keys(driver, moto, "lake/requests/")
    assert yaml.safe_load(done)["requested_by"] == "hosts-test"
    check_loaded(stack, stack.small, REQUESTED)


def classifying_on(stack, worker: str) -> bool:
    """Whether the run's classify step is under way with some of its tasks on ``worker``.

    A small input's Spark work is that one job; the driver draws every output from what it
    collects. A host lost while it runs costs the lost tasks (and the shuffle output they had
    written), which Spark runs again on the hosts that are left.
    """
    base = f"http://{stack.driver.address}:{hs.DRIVER_UI_PORT}/api/v1/applications"

    def look() -> bool:
        apps = get_json(base, 5)
        if not apps:
            return False
        app = f"{base}/{apps[0]['id']}"
        jobs = get_json(f"{app}/jobs", 5)
        classify = [j for j in jobs if (j.get("description") or "").endswith(": classify")]
        if not classify or classify[0]["status"] != "RUNNING":
            return False
        for stage in get_json(f"{app}/stages", 5):
            if stage["stageId"] in classify[0]["stageIds"] and stage["status"] != "PENDING":
                tasks = get_json(f"{app}/stages/{stage['stageId']}/0/taskList?length=100", 5)
                if any(t["host"] == worker for t in tasks):
                    return True
        return False

    return stack.driver.call(look, timeout=30)


@pytest.mark.timeout(420)
def test_e_a_run_survives_a_worker_host_cut_off_mid_run(stack):
    driver = stack.driver
    env = stack.driver_env(stack.big)
    log = driver.directory / "cut-run.log"
    with log.open("wb") as out:
        run = subprocess.Popen(
            driver.argv(*stack.luigi_argv(CUT)), env=env, cwd=driver.directory,
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    driver.processes["cut-run"] = run
    one, two = stack["worker1"].address, stack["worker2"].address

    def ready_to_cut() -> bool:
        if run.poll() is not None:
            pytest.fail(f"the run ended before it could be cut:\n{log.read_text()[-4000:]}")
        return classifying_on(stack, two)

    wait_until(ready_to_cut, "the classify step's tasks on worker2", 180, log)
    stack.network.cut("worker2")
    cut_at = time.monotonic()

    code = hs.wait_for_exit(run, RUN_TIMEOUT)

    output = log.read_text()
    assert code == 0, output[-6000:]
    print(f"\nthe run ended {time.monotonic() - cut_at:.0f} s after worker2 was cut off")
    # Spark ran the lost tasks again itself: one application, no second attempt of the step.
    assert "fresh attempt" not in output, output[-6000:]
    check_loaded(stack, stack.big, CUT)
    [run_app] = applications(stack, f"AggregateUFOsByState {CUT}", 1)
    executors = executors_by_host(stack, run_app["id"])
    # Lost mid-task: the master stopped hearing from it, and its running task went elsewhere.
    assert "worker lost" in executors[two].get("removeReason", ""), executors[two]
    assert executors[one]["totalTasks"] > 0, executors
