"""Helpers of the cluster tests: a Spark standalone cluster and luigid as local processes,
and pipeline runs against them. The fixtures that start them are in conftest.py."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests import reference
from tests.support import REPO, free_port, pipeline_env

LOOPBACK = "127.0.0.1"
SMALL_RECORDS = 3000
START_TIMEOUT = 90  # seconds for a daemon to come up on a busy 2-core machine
STOP_TIMEOUT = 30


def get_json(url: str, timeout: float = 10) -> object:
    """GET a loopback URL and decode its JSON body."""
    assert urllib.parse.urlparse(url).hostname == LOOPBACK, url
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read().decode("utf-8"))


def wait_until(check: Callable[[], object], what: str, timeout: float, log: Path | None = None):
    """Poll ``check`` until it returns something truthy; fail with the log's tail if it never does."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except (OSError, urllib.error.URLError, ValueError) as err:
            last_error = err
        time.sleep(0.5)
    tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
    pytest.fail(f"timed out after {timeout}s waiting for {what} (last error: {last_error})\n{tail}")


def stop_process(process: subprocess.Popen, timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM, then SIGKILL if it does not exit in time."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).resolve().parent


# --------------------------------------------------------------------------------------------
# Spark standalone cluster


@dataclass
class SparkCluster:
    """A standalone master and one worker on 127.0.0.1."""

    port: int
    webui_port: int
    directory: Path
    processes: list[subprocess.Popen] = field(default_factory=list)

    @property
    def master_url(self) -> str:
        return f"spark://{LOOPBACK}:{self.port}"

    def state(self) -> dict:
        """The master's JSON API: workers, active and completed applications."""
        return get_json(f"http://{LOOPBACK}:{self.webui_port}/json/")

    def alive_workers(self) -> list[dict]:
        return [w for w in self.state().get("workers", []) if w.get("state") == "ALIVE"]

    def completed_apps(self, name_prefix: str = "AggregateUFOsByState ") -> list[dict]:
        return [
            a for a in self.state().get("completedapps", []) if a["name"].startswith(name_prefix)
        ]

    @property
    def conf_dir(self) -> Path:
        """SPARK_CONF_DIR of the applications submitted to this cluster."""
        return self.directory / "conf"

    def logs(self) -> str:
        return "\n".join(
            p.read_text(errors="replace")[-3000:] for p in sorted(self.directory.glob("*.log"))
        )


def spark_env() -> dict:
    env = dict(os.environ)
    env.update(
        SPARK_HOME=str(spark_home()),
        SPARK_LOCAL_IP=LOOPBACK,
        SPARK_LOCAL_HOSTNAME=LOOPBACK,
        PYSPARK_PYTHON=sys.executable,
        SPARK_NO_DAEMONIZE="1",
    )
    return env


# --------------------------------------------------------------------------------------------
# luigid


@dataclass
class Luigid:
    """A running luigid: its port, config, log and task-history database."""

    port: int
    directory: Path
    history_url: str
    process: subprocess.Popen | None = None

    @property
    def log(self) -> Path:
        return self.directory / "logs" / "luigi-server.log"

    def api(self, method: str, **data) -> dict:
        query = urllib.parse.urlencode({"data": json.dumps(data)}) if data else ""
        body = get_json(f"http://{LOOPBACK}:{self.port}/api/{method}?{query}")
        return body["response"]

    def tasks(self, status: str) -> dict[str, dict]:
        """task_id -> task of luigid's ``task_list`` with that status."""
        return self.api("task_list", status=status, upstream_status="", search="")

    def families(self, status: str) -> dict[str, list[str]]:
        """task family -> task ids with that status."""
        out: dict[str, list[str]] = {}
        for task_id, task in self.tasks(status).items():
            out.setdefault(task["name"], []).append(task_id)
        return out

    def healthy(self) -> bool:
        with urllib.request.urlopen(f"http://{LOOPBACK}:{self.port}/api/task_list", timeout=5) as r:
            return r.status == 200

    def history(self) -> list[tuple[str, str, dict[str, str], str, dt.datetime]]:
        """(task_id, family, params, event, ts) of every recorded event, in order."""
        eng = sa.create_engine(self.history_url)
        try:
            with eng.connect() as conn:
                rows = conn.execute(
                    sa.text(
                        "SELECT t.id, t.task_id, t.name, e.event_name, e.ts FROM task_events e "
                        "JOIN tasks t ON t.id = e.task_id ORDER BY e.ts, e.id"
                    )
                ).all()
                params: dict[int, dict[str, str]] = {}
                for task, name, value in conn.execute(
                    sa.text("SELECT task_id, name, value FROM task_parameters")
                ):
                    params.setdefault(task, {})[name] = value
        finally:
            eng.dispose()
        return [(tid, fam, params.get(rid, {}), ev, ts) for rid, tid, fam, ev, ts in rows]

    def events(self, family: str, date: dt.date | None = None) -> list[str]:
        """The recorded events of one task family (and run date), in order."""
        return [
            ev
            for _tid, fam, params, ev, _ts in self.history()
            if fam == family and (date is None or params.get("date") == date.isoformat())
        ]

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)


def write_luigid_config(path: Path, history_url: str, scheduler: dict, resources: dict) -> None:
    settings = {"record_task_history": "True", **scheduler}
    lines = ["[scheduler]", *(f"{k} = {v}" for k, v in settings.items()), ""]
    lines += ["[task_history]", f"db_connection = {history_url}", ""]
    lines += ["[resources]", *(f"{k} = {v}" for k, v in resources.items()), ""]
    path.write_text("\n".join(lines))


def start_luigid(
    directory: Path,
    history_url: str,
    scheduler: dict | None = None,
    resources: dict | None = None,
) -> Luigid:
    """Start luigid on a free loopback port with its own LUIGI_CONFIG_PATH; wait until healthy."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "logs").mkdir(exist_ok=True)
    config = directory / "luigid.cfg"
    write_luigid_config(
        config, history_url, scheduler or {}, resources or {"spark_applications": 1}
    )
    server = Luigid(port=free_port(), directory=directory, history_url=history_url)
    env = dict(os.environ, LUIGI_CONFIG_PATH=str(config), PYTHONPATH=str(REPO))
    # cwd is the luigid directory, so the repository's luigi.cfg is not read: only luigid.cfg.
    server.process = subprocess.Popen(
        [sys.executable, "-m", "etl.worker.luigid_server", "--address", LOOPBACK, "--port", str(server.port),
         "--state-path", str(directory / "state.pickle"), "--logdir", str(directory / "logs")],
        env=env, cwd=directory, stdout=(directory / "luigid.out").open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip

    def up() -> bool:
        if server.process.poll() is not None:
            out = (directory / "luigid.out").read_text(errors="replace")[-3000:]
            pytest.fail(f"luigid exited with {server.process.returncode}:\n{out}")
        return server.healthy()

    wait_until(up, "luigid's /api/task_list", START_TIMEOUT, server.log)
    return server


# --------------------------------------------------------------------------------------------
# Pipeline runs against them


def cluster_env(
    storage: Path,
    database_url: str,
    source: Path | str | None,
    cluster: SparkCluster | None,
    **extra,
) -> dict:
    """The environment of a pipeline run whose Spark jobs go to ``cluster``."""
    env = pipeline_env(str(storage), database_url, None if source is None else str(source), **extra)
    if cluster is not None:
        env["SPARK_MASTER"] = cluster.master_url
        env["SPARK_CONF_DIR"] = str(cluster.conf_dir)
    # Executors and driver both use this venv's Python (same minor version, same packages).
    env.update(
        PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable, SPARK_LOCAL_IP=LOOPBACK
    )
    env.pop("LUIGI_CONFIG_PATH", None)  # the workers read the repository's luigi.cfg
    return env


def luigi_argv(server: Luigid, *args: str) -> list[str]:
    """``python -m luigi --module etl ARGS`` scheduled by ``server`` (no --local-scheduler)."""
    return [sys.executable, "-m", "luigi", "--module", "etl", *args,
            "--scheduler-host", LOOPBACK, "--scheduler-port", str(server.port)]  # fmt: skip


def run_on(
    server: Luigid, *args: str, env: dict, timeout: float = 300
) -> subprocess.CompletedProcess:
    return subprocess.run(
        luigi_argv(server, *args),
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_on(server: Luigid, *args: str, env: dict, out: Path) -> subprocess.Popen:
    """Start a luigi worker in the background, its output (stdout and stderr) to ``out``."""
    return subprocess.Popen(
        luigi_argv(server, *args), env=env, cwd=REPO, stdout=out.open("w"), stderr=subprocess.STDOUT
    )


def head_of_file(source: Path, dest: Path, records: int) -> Path:
    """The header and about ``records`` first records of ``source``, cut between records.

    The bytes are copied unchanged; the cut is made at the first line end after ``records``
    lines where the number of double quotes so far is even, so no quoted field is split.
    """
    quotes = 0
    with source.open("rb") as src, dest.open("wb") as out:
        for number, line in enumerate(src):
            out.write(line)
            quotes += line.count(b'"')
            if number >= records and quotes % 2 == 0:
                break
    return dest


# --------------------------------------------------------------------------------------------
# What the whole chain loads

TASKS = ("ReadUFOs", "AggregateUFOsByState", "TopTenStates", "TopStatesToDatabase")


def expected_top_rows(expected: reference.Expected) -> list[tuple[str, int, str, int]]:
    """(period, rank, state, sightings) from the independent reading of the file."""
    rows = []
    for period, month in [("all", None)] + [(m, m) for m in expected.months()]:
        for rank, (state, n) in enumerate(expected.top_ten(month), start=1):
            rows.append((period, rank, state, n))
    return sorted(rows)


def loaded_top_rows(url: str, run_date: dt.date) -> list[tuple[str, int, str, int]]:
    eng = sa.create_engine(url)
    try:
        with eng.connect() as conn:
            return sorted(
                tuple(r)
                for r in conn.execute(
                    sa.text(
                        "SELECT period, rank, state, sightings FROM top_states WHERE run_date = :d"
                    ),
                    {"d": run_date},
                )
            )
    finally:
        eng.dispose()
