"""A real Spark standalone cluster and a real luigid, as local processes on 127.0.0.1.

The fast integration layer without Docker: the master, one worker and luigid are the same
programs the compose environment runs, started here from the venv (the pyspark package ships
``spark-class`` and the jars). luigid records its task history in the session's PostgreSQL.
Everything is stopped at the end: the Spark daemons and luigid with SIGTERM (luigid writes its
state then), SIGKILL only if they do not stop in time.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import REAL_2019, REPO, free_port, new_database, pipeline_env, shared_file

VENV_BIN = Path(sys.executable).parent
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


@pytest.fixture(scope="session")
def postgres():
    """The session's PostgreSQL, in a directory the ``postgres`` user can reach.

    Overrides tests/conftest.py's fixture for this directory: as root, pytest's base temporary
    directory is mode 0700, so the server (run as ``postgres``) cannot reach a data directory
    below it. A directory made directly in /tmp and handed to ``postgres`` can be reached.
    """
    from etl.errors import DatabaseError
    from etl.localpg import LocalPostgres, _bin

    try:
        _bin("initdb")
    except DatabaseError as err:
        pytest.skip(str(err))
    directory = Path(tempfile.mkdtemp(prefix="ufo-cluster-pg-"))
    server = LocalPostgres(directory)
    try:
        yield server.start()
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


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


def _spark_env() -> dict:
    env = dict(os.environ)
    env.update(
        SPARK_HOME=str(spark_home()),
        SPARK_LOCAL_IP=LOOPBACK,
        SPARK_LOCAL_HOSTNAME=LOOPBACK,
        PYSPARK_PYTHON=sys.executable,
        SPARK_NO_DAEMONIZE="1",
    )
    return env


@pytest.fixture(scope="session")
def spark_cluster(tmp_path_factory) -> Iterator[SparkCluster]:
    """A real Spark standalone master and one 1-core worker for the session."""
    directory = tmp_path_factory.mktemp("spark-cluster")
    cluster = SparkCluster(port=free_port(), webui_port=free_port(), directory=directory)
    spark_class = str(spark_home() / "bin" / "spark-class")
    env = _spark_env()
    # The applications' defaults, as a deployment's spark-defaults.conf would give them: a
    # 1-core cluster gains nothing from 200 shuffle partitions, and the driver stays on loopback.
    cluster.conf_dir.mkdir()
    (cluster.conf_dir / "spark-defaults.conf").write_text(
        "spark.sql.shuffle.partitions 4\n"
        f"spark.driver.host {LOOPBACK}\n"
        f"spark.driver.bindAddress {LOOPBACK}\n"
        "spark.ui.showConsoleProgress false\n"
    )
    master_log = directory / "master.log"
    worker_log = directory / "worker.log"
    try:
        with master_log.open("w") as log:
            cluster.processes.append(
                subprocess.Popen(
                    [spark_class, "org.apache.spark.deploy.master.Master", "--host", LOOPBACK,
                     "--port", str(cluster.port), "--webui-port", str(cluster.webui_port)],
                    env=env, cwd=directory, stdout=log, stderr=subprocess.STDOUT,
                )
            )  # fmt: skip
        wait_until(cluster.state, "the Spark master's JSON API", START_TIMEOUT, master_log)
        work_dir = directory / "work"
        work_dir.mkdir()
        with worker_log.open("w") as log:
            cluster.processes.append(
                subprocess.Popen(
                    [spark_class, "org.apache.spark.deploy.worker.Worker", cluster.master_url,
                     "--host", LOOPBACK, "--port", str(free_port()), "--webui-port", str(free_port()),
                     "--cores", "1", "--memory", "1g", "--work-dir", str(work_dir)],
                    env=env, cwd=directory, stdout=log, stderr=subprocess.STDOUT,
                )
            )  # fmt: skip
        wait_until(
            cluster.alive_workers, "an ALIVE worker at the Spark master", START_TIMEOUT, worker_log
        )
        yield cluster
    finally:
        for process in reversed(cluster.processes):
            stop_process(process)


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
    env = dict(os.environ, LUIGI_CONFIG_PATH=str(config))
    # cwd is the luigid directory, so the repository's luigi.cfg is not read: only luigid.cfg.
    server.process = subprocess.Popen(
        [str(VENV_BIN / "luigid"), "--address", LOOPBACK, "--port", str(server.port),
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


@pytest.fixture
def luigid_factory(tmp_path, postgres) -> Iterator[Callable[..., Luigid]]:
    """Start luigids with given ``[scheduler]``/``[resources]`` settings; all stopped afterwards."""
    started: list[Luigid] = []

    def factory(scheduler: dict | None = None, resources: dict | None = None) -> Luigid:
        history = new_database(postgres)
        server = start_luigid(tmp_path / f"luigid-{len(started)}", history, scheduler, resources)
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()


@pytest.fixture
def luigid(luigid_factory) -> Luigid:
    """A fresh luigid with the production-like defaults and ``spark_applications = 1``."""
    return luigid_factory()


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


@pytest.fixture(scope="session")
def small_source(tmp_path_factory) -> Path:
    """The first few thousand records of the real 2019 NUFORC file (skips when it is absent)."""
    real = shared_file(REAL_2019.name)
    return head_of_file(
        real, tmp_path_factory.mktemp("small-source") / "nuforc_head.csv", SMALL_RECORDS
    )
