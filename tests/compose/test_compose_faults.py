"""Faults injected into the running compose stack, and what the pipeline makes of them.

Reuses the stack of conftest.py (built and brought up once for tests/compose; test_compose_e2e.py
checks its run on ``up`` first). Each test takes a run date of its own that the stack's source
covers, never the e2e test's, and checks the outcome against the independent plain-Python
computation of tests/reference.py over the same source file:

* every Spark worker is killed (SIGKILL, ``docker compose kill``) while AggregateUFOsByState runs,
  then started again: the run recovers or fails with a ``ufo: error:`` line, and after a re-run
  the loaded date is exact;
* PostgreSQL is restarted while TopStatesToDatabase's transaction is open (it has written its
  rows and waits on a lock this test holds): the date is not half loaded, and the next run
  loads it exactly;
* luigid is recreated (SIGTERM, a new container on the same volume): the tasks DONE before are
  listed by its API afterwards, and its task history in PostgreSQL is kept;
* a run request dropped in the lake with two Luigi worker replicas running is handled by one of
  them only, and the date is loaded once.

Every wait is bounded and fails saying what it waited for; each test takes at most
FAULT_BUDGET seconds. Outcomes and durations go to test-output/compose-faults.json.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.compose.support import (
    BUCKET,
    FAMILIES,
    FILES,
    LUIGID_PORT,
    PROFILES,
    SPARK_UI_PORT,
    Stack,
    compose_binary,
    eventually_healthy,
    get_json,
    lake_json,
    ps_rows,
    s3_client,
)
from tests.support import REAL_2019, REAL_RUN_DATE, REPO, shared_file

pytestmark = [pytest.mark.compose, pytest.mark.shared_data, pytest.mark.timeout(2700)]

FAULT_BUDGET = 240  # seconds: each fault test ends (or fails saying why) within this
REPORT = REPO / "test-output" / "compose-faults.json"
LOST_EXECUTOR = re.compile(r"Lost executor|Worker \S+ removed|ExecutorLostFailure")
QUALITY = ("input", "header_repeat", "duplicate", "after_run_date", "valid", "rejected")


# --- helpers ------------------------------------------------------------------------------------


class Budget:
    """The time left to one test; every wait takes its bound from here."""

    def __init__(self, seconds: float = FAULT_BUDGET):
        self.start = time.monotonic()
        self.end = self.start + seconds

    def left(self, at_most: float | None = None) -> float:
        left = max(1.0, self.end - time.monotonic())
        return left if at_most is None else min(left, at_most)

    def elapsed(self) -> float:
        return round(time.monotonic() - self.start, 1)


def wait_for(what: str, probe, timeout: float, interval: float = 2.0):
    """Poll ``probe`` until it returns something truthy; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = probe()
        except Exception as err:  # a service being restarted: keep polling, report the last error
            last = f"{type(err).__name__}: {err}"
        else:
            if last:
                return last
        if time.monotonic() >= deadline:
            pytest.fail(f"waited {timeout:.0f} s for {what}; last probe: {last!r}")
        time.sleep(interval)


def compose_argv(stack: Stack, *args: str) -> list[str]:
    binary = compose_binary()
    cmd = [binary] if binary else ["docker", "compose"]
    return [*cmd, "-p", stack.project, "--env-file", str(stack.env_file), *FILES, *PROFILES, *args]


def luigi_argv(stack: Stack, task: str, day: dt.date) -> list[str]:
    """``python -m luigi`` in the first luigi_worker, against luigid and the cluster."""
    return compose_argv(
        stack, "exec", "-T", "luigi_worker",
        "python", "-m", "luigi", "--module", "etl", task, "--date", day.isoformat(),
    )  # fmt: skip


class Run:
    """A pipeline run started in the background, its output in a file."""

    def __init__(self, stack: Stack, day: dt.date, log: Path, task: str = "TopStatesToDatabase"):
        self.log = log
        self._out = log.open("w")
        self.proc = subprocess.Popen(
            luigi_argv(stack, task, day), cwd=REPO, stdout=self._out, stderr=subprocess.STDOUT
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def finish(self, timeout: float) -> tuple[int, str]:
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"the run did not end within {timeout:.0f} s:\n{self.output()[-4000:]}")
        finally:
            self._out.close()
        return code, self.output()


def run_now(stack: Stack, day: dt.date, log: Path, timeout: float) -> tuple[int, str]:
    return Run(stack, day, log).finish(timeout)


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if "ufo: error:" in line]


@functools.cache
def source_bytes() -> bytes:
    return shared_file(REAL_2019.name).read_bytes()


@functools.cache
def expected_for(day: dt.date):
    from tests import reference

    return reference.classify(source_bytes(), day)


def owner_engine(stack: Stack):
    import sqlalchemy as sa

    return sa.create_engine(
        stack.database_url("ufo", stack.env["POSTGRES_PASSWORD"]),
        pool_pre_ping=True,
        connect_args={"connect_timeout": 5},
    )


def query(stack: Stack, sql: str, db: str = "ufo", **params) -> list[tuple]:
    import sqlalchemy as sa

    url = stack.database_url("ufo", stack.env["POSTGRES_PASSWORD"], db)
    engine = sa.create_engine(url, connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql), params).all()]
    finally:
        engine.dispose()


def rows_of(stack: Stack, day: dt.date) -> dict[str, int]:
    """How many rows each product table holds for ``day``."""
    counts = {}
    for table in ("top_states", "state_sightings", "ufo_runs"):
        [(n,)] = query(stack, f"SELECT count(*) FROM {table} WHERE run_date = :d", d=day)
        counts[table] = n
    return counts


def half_loaded_dates(stack: Stack) -> list[tuple]:
    """Dates with rows but no ufo_runs row, or a ufo_runs row but no rows."""
    return query(
        stack,
        "SELECT run_date, 'rows without ufo_runs' FROM ("
        " SELECT run_date FROM top_states UNION SELECT run_date FROM state_sightings"
        ") r WHERE run_date NOT IN (SELECT run_date FROM ufo_runs) "
        "UNION ALL "
        "SELECT run_date, 'ufo_runs without rows' FROM ufo_runs u WHERE NOT EXISTS "
        "(SELECT 1 FROM top_states t WHERE t.run_date = u.run_date AND t.period = 'all') "
        "OR NOT EXISTS (SELECT 1 FROM state_sightings s WHERE s.run_date = u.run_date)",
    )


def assert_loaded_exactly(stack: Stack, day: dt.date) -> None:
    """The date's rows in PostgreSQL and its lake manifest equal the reference computation."""
    expected = expected_for(day)
    rows = query(
        stack,
        "SELECT period, rank, state, sightings FROM top_states WHERE run_date = :d "
        "ORDER BY period, rank",
        d=day,
    )
    got: dict[str, list[tuple[str, int]]] = {}
    for period, rank, state, sightings in rows:
        got.setdefault(period, []).append((state, sightings))
        assert rank == len(got[period]), (day, period, rank)
    assert got.get("all") == expected.top_ten(), day
    assert sorted(p for p in got if p != "all") == expected.months(), day
    for month in expected.months():
        assert got[month] == expected.top_ten(month), (day, month)
    runs = query(stack, f"SELECT {', '.join(QUALITY)} FROM ufo_runs WHERE run_date = :d", d=day)
    q = expected.quality()
    assert runs == [tuple(q[k] for k in QUALITY)], f"ufo_runs of {day}: {runs}"
    manifest = lake_json(stack, f"aggregated/date={day.isoformat()}/_MANIFEST.json")
    assert {k: manifest["quality"].get(k) for k in q} == q, day


def aggregate_apps(day: dt.date) -> tuple[list[dict], list[dict]]:
    """The Spark master's active and completed applications of AggregateUFOsByState(day)."""
    master = get_json(f"http://127.0.0.1:{SPARK_UI_PORT}/json/")
    name = f"AggregateUFOsByState {day.isoformat()} from "  # and its source
    return (
        [a for a in master["activeapps"] if a["name"].startswith(name)],
        [a for a in master["completedapps"] if a["name"].startswith(name)],
    )


def done_tasks() -> dict[str, dict]:
    data = urllib.parse.quote(json.dumps({"status": "DONE", "upstream_status": "", "search": ""}))
    return get_json(f"http://127.0.0.1:{LUIGID_PORT}/api/task_list?data={data}")["response"]


def container_ids(stack: Stack, service: str) -> list[str]:
    return sorted(stack.compose("ps", "--quiet", service).stdout.split())


def inspect(containers: list[str], template: str) -> dict[str, str]:
    result = subprocess.run(
        ["docker", "inspect", "--format", template, *containers],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return dict(zip(containers, result.stdout.splitlines()))


def started_at(containers: list[str]) -> dict[str, str]:
    return inspect(containers, "{{.State.StartedAt}}")


@pytest.fixture(scope="module")
def outcomes():
    """What each fault test saw, written to test-output/compose-faults.json at the end."""
    found: dict[str, dict] = {}
    yield found
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text(json.dumps(found, indent=2, default=str))
    print(f"\ncompose fault outcomes: {json.dumps(found, default=str)}")


@pytest.fixture(autouse=True)
def _no_date_is_ever_half_loaded(stack):
    """Whatever a fault test did, no date is left half loaded."""
    yield
    assert half_loaded_dates(stack) == []


# --- 1. a Spark worker killed in the middle of the job --------------------------------------------


def test_spark_workers_killed_mid_job_the_run_recovers_or_fails_clearly_and_reloads_exactly(
    stack, outcomes, tmp_path
):
    day = dt.date(2019, 3, 20)
    budget = Budget()
    assert rows_of(stack, day) == {"top_states": 0, "state_sightings": 0, "ufo_runs": 0}
    run = Run(stack, day, tmp_path / "run.log")

    def aggregate_has_executors():
        active, _ = aggregate_apps(day)
        if run.proc.poll() is not None:
            pytest.fail(f"the run ended before its Spark job started:\n{run.output()[-4000:]}")
        return [a for a in active if a.get("cores", 0) > 0]

    [app] = wait_for(
        f"AggregateUFOsByState {day} to run on the cluster with executors",
        aggregate_has_executors,
        timeout=budget.left(150),
    )
    time.sleep(6)  # into the job: its executors have tasks
    assert aggregate_apps(day)[0], "the Spark job finished before the workers could be killed"
    workers = container_ids(stack, "spark-worker")
    assert len(workers) == 2, workers
    started_before = started_at(workers)
    killed_at = time.monotonic()
    stack.compose("kill", "--signal", "SIGKILL", "spark-worker", timeout=60)
    killed = inspect(workers, "{{.State.Running}} {{.State.ExitCode}}")
    time.sleep(10)  # the cluster has no worker for a while: executors and shuffle files are gone
    stack.compose("start", "spark-worker", timeout=120)
    assert container_ids(stack, "spark-worker") == workers  # the same containers, started again
    restarted = started_at(workers)
    assert all(restarted[c] != started_before[c] for c in workers), (started_before, restarted)
    wait_for(
        "both Spark workers to register with the master again",
        lambda: get_json(f"http://127.0.0.1:{SPARK_UI_PORT}/json/")["aliveworkers"] == 2,
        timeout=budget.left(90),
    )
    code, output = run.finish(timeout=budget.left(180))
    recovered_after = round(time.monotonic() - killed_at, 1)
    if code == 0:
        outcome = "the Spark job recovered on the restarted workers; the run succeeded"
        assert error_lines(output) == [], output[-4000:]
        rerun_code = None
    else:
        outcome = f"the run failed (exit {code}) with a ufo: error: line, the re-run loaded it"
        errors = error_lines(output)
        assert len(errors) == 1, f"exit {code} but no single ufo: error: line:\n{output[-4000:]}"
        assert rows_of(stack, day)["ufo_runs"] == 0  # a failed run loaded nothing
        rerun_code, rerun = run_now(stack, day, tmp_path / "rerun.log", budget.left(200))
        assert rerun_code == 0, rerun[-4000:]
    assert_loaded_exactly(stack, day)
    _, finished = aggregate_apps(day)
    # The driver's log (kept in the pipeline-logs volume) shows the executors it lost.
    driver_log = stack.compose(
        "exec", "-T", "luigi_worker", "sh", "-c",
        f"cat /var/log/ufo/spark/AggregateUFOsByState_{day:%Y_%m_%d}_*.log",
    ).stdout  # fmt: skip
    lost = [line for line in driver_log.splitlines() if LOST_EXECUTOR.search(line)]
    assert lost, f"the driver lost no executor?\n{driver_log[-3000:]}"
    assert eventually_healthy(stack, "spark-worker", timeout=int(budget.left(60)))
    outcomes["spark_workers_killed"] = {
        "date": day,
        "app": app["id"],
        "killed_workers_running_exit": killed,
        "outcome": outcome,
        "exit_code": code,
        "first_error": error_lines(output)[:1],
        "rerun_exit_code": rerun_code,
        "driver_lost": [line[-160:] for line in lost[:3]],
        "driver_lost_lines": len(lost),
        "spark_apps_finished": [(a["id"], a["state"]) for a in finished],
        "kill_to_run_end_s": recovered_after,
        "duration_s": budget.elapsed(),
    }
    stack.timings["fault_spark_workers_killed"] = budget.elapsed()


# --- 2. PostgreSQL restarted in the middle of a load ----------------------------------------------


def test_postgres_restarted_mid_load_leaves_no_half_loaded_date_and_the_next_run_loads_it(
    stack, outcomes, tmp_path
):
    import sqlalchemy as sa

    day = dt.date(2019, 3, 21)
    budget = Budget()
    assert rows_of(stack, day) == {"top_states": 0, "state_sightings": 0, "ufo_runs": 0}
    # Hold the load in the middle of its transaction: an uncommitted ufo_runs row of the same
    # date makes its INSERT wait (primary key) after it has written its other rows.
    engine = owner_engine(stack)
    hold = engine.connect()
    try:
        hold.begin()
        hold_pid = hold.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        hold.execute(
            sa.text(
                "CREATE TEMP TABLE held_run ON COMMIT DROP AS "
                "SELECT * FROM ufo_runs WHERE run_date = :e2e"
            ),
            {"e2e": REAL_RUN_DATE},
        )
        hold.execute(sa.text("UPDATE held_run SET run_date = :d"), {"d": day})
        assert hold.execute(sa.text("INSERT INTO ufo_runs SELECT * FROM held_run")).rowcount == 1
        run = Run(stack, day, tmp_path / "run.log")

        def load_waits():
            if run.proc.poll() is not None:
                pytest.fail(f"the run ended before its load waited:\n{run.output()[-4000:]}")
            return query(
                stack,
                "SELECT pid, backend_xid::text, left(query, 1000) FROM pg_stat_activity "
                "WHERE datname = 'ufo' AND pid <> :p AND wait_event_type = 'Lock' "
                "AND state = 'active'",
                p=hold_pid,
            )

        [(pid, xid, statement)] = wait_for(
            f"TopStatesToDatabase({day})'s transaction to be in the middle of its load",
            load_waits,
            timeout=budget.left(170),
        )
        # It waits at its last statement, the INSERT INTO ufo_runs that ends the round trip of
        # the run's rows; it has written (it has a transaction id) and not committed.
        assert "; INSERT INTO ufo_runs (" in statement and xid is not None, statement
        restarted = time.monotonic()
        stack.compose("restart", "postgres", timeout=120)
        restart_s = round(time.monotonic() - restarted, 1)
    finally:
        try:
            hold.close()
        except sa.exc.DBAPIError:
            pass  # the server closed it: that was the point
        engine.dispose()
    code, output = run.finish(timeout=budget.left(60))
    wait_for(
        "PostgreSQL to be healthy after its restart",
        lambda: eventually_healthy(stack, "postgres", timeout=5),
        timeout=budget.left(60),
    )
    after_fault = rows_of(stack, day)
    assert after_fault == {"top_states": 0, "state_sightings": 0, "ufo_runs": 0}, after_fault
    assert code != 0, f"the load survived a restart of its database?\n{output[-4000:]}"
    errors = error_lines(output)
    assert len(errors) == 1, f"exit {code} but no single ufo: error: line:\n{output[-4000:]}"
    rerun_code, rerun = run_now(stack, day, tmp_path / "rerun.log", budget.left(120))
    assert rerun_code == 0, rerun[-4000:]
    assert_loaded_exactly(stack, day)
    outcomes["postgres_restarted_mid_load"] = {
        "date": day,
        "held_statement": statement,
        "restart_s": restart_s,
        "exit_code": code,
        "error": errors[0][-300:],
        "rows_after_fault": after_fault,
        "rerun_exit_code": rerun_code,
        "rows_after_rerun": rows_of(stack, day),
        "duration_s": budget.elapsed(),
    }
    stack.timings["fault_postgres_restarted"] = budget.elapsed()


# --- 3. luigid restarted ------------------------------------------------------------------------


def history_runs(stack: Stack, day: dt.date) -> list[tuple]:
    """luigid's task history in PostgreSQL: (family, task record, events) of ``day``'s tasks."""
    return query(
        stack,
        "SELECT t.name, t.id, count(e.id) FROM tasks t "
        "JOIN task_parameters p ON p.task_id = t.id AND p.name = 'date' AND p.value = :d "
        "LEFT JOIN task_events e ON e.task_id = t.id GROUP BY t.name, t.id ORDER BY t.id",
        db="luigid",
        d=day.isoformat(),
    )


def test_luigid_recreated_keeps_its_task_state_and_history(stack, outcomes, tmp_path):
    day = REAL_RUN_DATE  # loaded by the run on `up`
    budget = Budget()
    # A run of a loaded date marks its tasks DONE in luigid (and runs nothing).
    code, output = run_now(stack, day, tmp_path / "before.log", budget.left(120))
    assert code == 0, output[-4000:]
    before = done_tasks()
    ours = {
        task_id
        for task_id, t in before.items()
        if t["name"] in FAMILIES and t["params"].get("date") == day.isoformat()
    }
    assert len(ours) == len(FAMILIES), sorted(before)
    history_before = history_runs(stack, day)
    assert {name for name, _, _ in history_before} == set(FAMILIES), history_before
    [old] = container_ids(stack, "luigid")
    recreated = time.monotonic()
    # Stopped with SIGTERM (luigid writes its state), then a new container on the same volume.
    stack.compose("up", "--detach", "--no-deps", "--force-recreate", "luigid", timeout=180)
    [new] = container_ids(stack, "luigid")
    assert new != old
    [after] = wait_for(
        "luigid's API to answer after the restart",
        lambda: (done_tasks(),),  # an empty list is an answer too
        timeout=budget.left(90),
    )
    down_s = round(time.monotonic() - recreated, 1)
    missing = sorted(ours - set(after))
    assert not missing, f"DONE before the restart, not listed after it: {missing}"
    history_after = history_runs(stack, day)
    assert set(history_before) <= set(history_after), (history_before, history_after)
    data = urllib.parse.quote(json.dumps({"date": day.isoformat()}))
    url = f"http://127.0.0.1:{LUIGID_PORT}/history/by_params/TopStatesToDatabase?data={data}"
    with urllib.request.urlopen(url, timeout=10) as response:
        page = response.read().decode()
    assert "TopStatesToDatabase" in page and day.isoformat() in page, page[-2000:]
    # The new luigid schedules: the loaded date is complete, nothing runs.
    code, output = run_now(stack, day, tmp_path / "after.log", budget.left(120))
    assert code == 0 and "complete ones were encountered" in output, output[-4000:]
    outcomes["luigid_recreated"] = {
        "done_before": len(before),
        "done_after": len(after),
        "kept": sorted(ours),
        "history_records_before": len(history_before),
        "history_records_after": len(history_runs(stack, day)),
        "recreate_to_api_s": down_s,
        "duration_s": budget.elapsed(),
    }
    stack.timings["fault_luigid_recreated"] = budget.elapsed()


# --- 4. two Luigi worker replicas and one run request ---------------------------------------------


def test_a_run_request_is_handled_by_exactly_one_of_two_worker_replicas(stack, outcomes):
    day = dt.date(2019, 3, 22)
    budget = Budget()
    assert rows_of(stack, day) == {"top_states": 0, "state_sightings": 0, "ufo_runs": 0}
    replicas = ps_rows(stack.compose("ps", "--format", "json", "luigi_worker").stdout)
    assert [r["State"] for r in replicas] == ["running", "running"], replicas
    name = f"faults-two-replicas-{day.isoformat()}.yaml"
    stem = name.removesuffix(".yaml")
    client = s3_client(stack)
    request = {"task": "TopStatesToDatabase", "params": {"date": day.isoformat()}}
    client.put_object(
        Bucket=BUCKET, Key=f"lake/requests/{name}", Body=yaml.safe_dump(request).encode()
    )

    def keys() -> set[str]:
        listed = client.list_objects_v2(Bucket=BUCKET, Prefix="lake/requests/")
        return {o["Key"].removeprefix("lake/requests/") for o in listed.get("Contents", [])}

    def result():
        return {k for k in keys() if k in (f"{stem}.done.yaml", f"{stem}.error.yaml")}

    [finished] = wait_for(
        f"a result of the request {name}", result, timeout=budget.left(220), interval=5
    )
    record = yaml.safe_load(
        client.get_object(Bucket=BUCKET, Key=f"lake/requests/{finished}")["Body"].read()
    )
    assert finished == f"{stem}.done.yaml", record
    assert record["status"] == "done" and record["exit_code"] == 0, record
    [(first_finish,)] = query(stack, "SELECT finished_at FROM ufo_runs WHERE run_date = :d", d=day)
    # Past a poll period of both replicas (15 s): nobody runs it again.
    time.sleep(20)
    left = keys()
    assert name not in left and f"{stem}.error.yaml" not in left, sorted(left)
    assert query(stack, "SELECT finished_at FROM ufo_runs WHERE run_date = :d", d=day) == [
        (first_finish,)
    ]
    assert_loaded_exactly(stack, day)
    assert len(aggregate_apps(day)[1]) == 1  # one Spark job for the date
    logs = stack.compose("logs", "--no-color", "luigi_worker", timeout=60).stdout.splitlines()
    running = [line for line in logs if f"request {name}: running" in line]
    assert len(running) == 1, running  # one replica ran it, once
    container = running[0].split("|", 1)[0].strip()
    watching = [line for line in logs if f"worker {record['worker']} watching" in line]
    assert [line.split("|", 1)[0].strip() for line in watching] == [container], watching
    history = [row for row in history_runs(stack, day) if row[0] == "TopStatesToDatabase"]
    started = query(
        stack,
        "SELECT count(*) FROM task_events e JOIN tasks t ON t.id = e.task_id "
        "JOIN task_parameters p ON p.task_id = t.id AND p.name = 'date' AND p.value = :d "
        "WHERE t.name = 'TopStatesToDatabase' AND e.event_name = 'RUNNING'",
        db="luigid",
        d=day.isoformat(),
    )
    assert started == [(1,)], history  # luigid started the load once
    outcomes["request_two_replicas"] = {
        "date": day,
        "result": finished,
        "worker": record["worker"],
        "container": container,
        "finished_at": first_finish,
        "duration_s": budget.elapsed(),
    }
    stack.timings["fault_request_two_replicas"] = budget.elapsed()
