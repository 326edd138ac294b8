"""The docker-compose environment end to end: build, up, one pipeline run, check, tear down.

Builds the product's images from docker-compose.yml and brings the whole stack up with
``.ci/docker-compose.ci.yml`` on top (host networking, local stand-in base images, the S3
stand-in for MinIO, and the S3A TEST STAND-IN jars of tests/s3a.py built in with
``S3A_JARS=local``; see that file), with the profiles ``minio`` and ``connect``. The lake is
where users have it: ``s3://$S3_BUCKET/lake`` on the S3 service, read and written by Spark as
``s3a://``. The luigi_worker runs the pipeline for 2019-03-29 on the real NUFORC file on ``up``.
Then:

* check-env passed, and refuses a copy of .env.example's placeholders;
* the rows in PostgreSQL equal an independent plain-Python computation (tests/reference.py),
  and the read-only role can read them but not write;
* the lake's manifests and files on the S3 service agree with the same computation;
* luigid's API reports every task DONE, and its task history is in PostgreSQL;
* the Spark master's JSON API lists the workers and the finished application;
* with two Luigi workers and two Spark workers, both workers finish the run, the Spark job ran
  once, and ``docker compose run luigi_worker python -m luigi ...`` afterwards runs nothing;
* a non-interactive ``pyspark`` shell on the cluster reads the lake through s3a:// and the
  database through the read-only role; no spark-defaults.conf carries the owner's password,
  and the Spark master and workers have no database credentials;
* a Spark Connect client (``pyspark-client`` in a venv of its own) reads the run's aggregate
  through the spark-connect service;
* producto answers /health through the read-only role.

Needs a Docker engine (``bash .ci/docker-engine.sh``). Without one the test skips, unless
UFO_REQUIRE_DOCKER=1 (CI), where it fails. ``docker compose down -v`` runs in any case.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.compose.support import (
    BUCKET,
    CONNECT_PORT,
    FAMILIES,
    FILES,
    HISTORY_PORT,
    LUIGID_PORT,
    PRODUCTO_PORT,
    SPARK_UI_PORT,
    Stack,
    compose_binary,
    eventually_healthy,
    get_json,
    lake_json,
    ps_rows,
    s3_client,
)
from tests.lakefiles import aggregate_counts
from tests.support import REAL_2019, REAL_RUN_DATE, REPO, shared_file

pytestmark = [pytest.mark.compose, pytest.mark.shared_data, pytest.mark.timeout(2700)]

CONNECT_CLIENT = "pyspark-client==4.0.1"
SPARK_MASTER_URL = "spark://spark-master:17077"

# The `stack` fixture (one stack for tests/compose, shared with test_compose_faults.py) is in
# conftest.py.


@pytest.fixture(scope="module")
def expected():
    from tests import reference

    return reference.classify(shared_file(REAL_2019.name).read_bytes(), REAL_RUN_DATE)


def test_every_service_is_up_and_healthy(stack):
    rows = ps_rows(stack.compose("ps", "--all", "--format", "json").stdout)
    by_service: dict[str, list[dict]] = {}
    for row in rows:
        by_service.setdefault(row["Service"], []).append(row)
    for one_shot in ("check-env", "create-bucket"):
        [job] = by_service[one_shot]
        assert (job["State"], job["ExitCode"]) == ("exited", 0), job
    expected_count = {"spark-worker": 2, "luigi_worker": 2}
    for name in (
        "postgres",
        "minio",
        "spark-master",
        "spark-worker",
        "spark-connect",
        "spark-history",
        "luigid",
        "luigi_worker",
        "producto",
        "proxy",
    ):
        containers = by_service[name]
        assert len(containers) == expected_count.get(name, 1), containers
        assert all(c["State"] == "running" for c in containers), containers
        assert eventually_healthy(stack, name), containers


def test_top_states_in_postgres_match_an_independent_computation(stack, expected):
    assert_loaded_as(stack, REAL_RUN_DATE, expected)


def assert_loaded_as(stack, day: dt.date, expected) -> None:
    """The date's top states and quality figures in PostgreSQL are ``expected``'s."""
    import sqlalchemy as sa

    engine = sa.create_engine(stack.database_url("ufo", stack.env["POSTGRES_PASSWORD"]))
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT period, rank, state, sightings FROM top_states WHERE run_date = :d "
                "ORDER BY period, rank"
            ),
            {"d": day},
        ).all()
        quality = conn.execute(
            sa.text(
                "SELECT input, header_repeat, duplicate, after_run_date, valid, rejected "
                "FROM ufo_runs WHERE run_date = :d"
            ),
            {"d": day},
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


#: A date no other test of the stack runs.
WARM_RUN_DATE = dt.date(2019, 3, 23)


def test_a_run_through_the_spark_connect_server_is_warm_and_exact(stack):
    """UFO_SPARK_REMOTE: the Spark step runs as a session of the `connect` profile's server (no
    new application on the cluster), and loads what the independent reference computes."""
    from tests import reference

    master = f"http://127.0.0.1:{SPARK_UI_PORT}/json/"
    apps_before = {a["id"] for a in get_json(master)["completedapps"]}
    remote = f"sc://spark-connect:{CONNECT_PORT}"  # 15002 but in CI's host network
    start = time.monotonic()
    result = stack.compose(
        "exec", "-T", "-e", f"UFO_SPARK_REMOTE={remote}", "luigi_worker",
        "python", "-m", "luigi", "--module", "etl", "TopStatesToDatabase",
        "--date", WARM_RUN_DATE.isoformat(),
        timeout=600,
    )  # fmt: skip
    stack.timings["warm_run"] = round(time.monotonic() - start, 1)
    output = result.stdout + result.stderr
    assert f"(on the Spark Connect server {remote})" in output, output[-3000:]
    now = get_json(master)
    assert {a["id"] for a in now["completedapps"]} == apps_before
    assert [a["name"] for a in now["activeapps"]] == ["Spark Connect server"]
    expected = reference.classify(shared_file(REAL_2019.name).read_bytes(), WARM_RUN_DATE)
    assert_loaded_as(stack, WARM_RUN_DATE, expected)


def test_the_read_only_role_reads_but_cannot_write(stack):
    import sqlalchemy as sa

    engine = sa.create_engine(stack.database_url("ufo_reader", stack.env["UFO_READONLY_PASSWORD"]))
    try:
        with engine.connect() as conn:
            n = conn.execute(sa.text("SELECT count(*) FROM top_states")).scalar_one()
            assert n > 0
        # The figures are stored in spans tables, which the role may not change; the public
        # views refuse every write (from anyone: only the loader writes the spans).
        for table in ("top_states_spans", "state_sightings_spans", "ufo_runs"):
            with pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
                with engine.begin() as conn:
                    conn.execute(sa.text(f"DELETE FROM {table}"))
        with pytest.raises(sa.exc.DBAPIError, match='cannot delete from view "top_states"'):
            with engine.begin() as conn:
                conn.execute(sa.text("DELETE FROM top_states"))
    finally:
        engine.dispose()


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
    # Named by task, run date and source (the stack's UFO_SOURCE, a file under /data).
    assert [a["name"] for a in apps] == [
        f"AggregateUFOsByState {REAL_RUN_DATE.isoformat()} from {REAL_2019.name} (file)"
    ]
    assert apps[0]["state"] == "FINISHED"


def test_the_history_server_keeps_the_finished_application_and_links_point_there(stack):
    """Once the run's application has ended, its UI is gone from the master; the history
    server still has it, and luigid's tracking URL and the `done:` line point at its page."""
    [app] = [
        a for a in _finished_apps()
        if a["name"].startswith(f"AggregateUFOsByState {REAL_RUN_DATE.isoformat()} from ")
    ]  # fmt: skip
    history = f"http://127.0.0.1:{HISTORY_PORT}"
    deadline = time.monotonic() + 60  # it reads the event logs every few seconds
    while not any(a["id"] == app["id"] for a in get_json(f"{history}/api/v1/applications")):
        assert time.monotonic() < deadline, "the history server does not list the run"
        time.sleep(2)
    [listed] = [a for a in get_json(f"{history}/api/v1/applications") if a["id"] == app["id"]]
    assert listed["attempts"][0]["completed"] is True
    # It read the event log from the lake's store, the only place the driver wrote it: no
    # volume is shared between the services (tests/compose/test_static.py).
    folder = f"spark-events/eventlog_v2_{app['id']}/"
    found = s3_client(stack).list_objects_v2(Bucket=BUCKET, Prefix=folder)
    assert [o["Key"].rsplit("/", 1)[1] for o in found.get("Contents", [])], found
    page = f"{history}/history/{app['id']}/jobs/"
    with urllib.request.urlopen(page, timeout=30) as response:
        assert response.status == 200 and "AggregateUFOsByState" in response.read().decode()
    logs = stack.compose("logs", "--no-color", "luigi_worker").stdout
    assert f"Spark application: {page}" in logs
    assert stack.first_run_tracking_urls == {page}  # luigid's link, as the run finished


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


@pytest.fixture(scope="module")
def aggregated(stack) -> dict:
    """The run's aggregated manifest, from the S3 service."""
    return lake_json(stack, f"aggregated/date={REAL_RUN_DATE.isoformat()}/_MANIFEST.json")


def test_the_lake_is_on_the_s3_service_and_agrees_with_the_reference(stack, expected, aggregated):
    client = s3_client(stack)
    day = REAL_RUN_DATE.isoformat()
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="lake/")
    keys = {o["Key"] for page in pages for o in page.get("Contents", [])}
    raw = lake_json(stack, f"raw/date={day}/_MANIFEST.json")
    for document in (raw, aggregated):
        assert document["run_date"] == day
        for paths in document["files"].values():
            missing = [p for p in paths if f"lake/{p}" not in keys]
            assert not missing, f"{document['dataset']} manifest lists missing files {missing}"
    quality = aggregated["quality"]
    assert {k: quality.get(k) for k in expected.quality()} == expected.quality()
    counts = aggregate_counts(
        client.get_object(Bucket=BUCKET, Key=f"lake/{rel}")["Body"].read()
        for rel in aggregated["files"]["aggregated"]
    )
    assert dict(counts) == dict(+expected.by_month_state)
    top = client.get_object(Bucket=BUCKET, Key=f"lake/top10/date={day}/top_states.csv")
    rows = list(csv.DictReader(io.StringIO(top["Body"].read().decode())))
    assert [(r["state"], int(r["sightings"])) for r in rows if r["period"] == "all"] == (
        expected.top_ten()
    )


# The README's shell recipe. Spark skips files named _* (so the manifest is read with boto3,
# which the image has, with the container's S3 settings); the aggregate is the files it lists.
PYSPARK_SESSION = """
import boto3, json
key = "lake/aggregated/date={date}/_MANIFEST.json"
m = json.load(boto3.client("s3").get_object(Bucket="{bucket}", Key=key)["Body"])
df = spark.read.parquet(*[f"s3a://{bucket}/lake/{{p}}" for p in m["files"]["aggregated"]])
total = df.groupBy("state").sum("sightings").agg({{"sum(sightings)": "sum"}}).first()[0]
print("SHELL-MASTER", spark.sparkContext.master)
print("SHELL-TOTAL", total)
c = spark.sparkContext.getConf()
top = spark.read.jdbc(c.get("spark.ufo.jdbc.url"), "top_states", properties={{
    "user": c.get("spark.ufo.jdbc.user"), "password": c.get("spark.ufo.jdbc.password")}})
print("SHELL-JDBC-USER", c.get("spark.ufo.jdbc.user"))
print("SHELL-JDBC", top.count())
"""


def test_a_pyspark_shell_on_the_cluster_reads_the_lake_and_the_database(stack, expected):
    session = PYSPARK_SESSION.format(bucket=BUCKET, date=REAL_RUN_DATE.isoformat())
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
    # The shell reads its input line by line and goes on after an error: say which one.
    output = result.stdout[-2000:] + result.stderr[-3000:]
    assert lines.get("SHELL-MASTER") == SPARK_MASTER_URL, output
    assert {"SHELL-TOTAL", "SHELL-JDBC"} <= set(lines), output
    assert int(lines["SHELL-TOTAL"]) == sum(expected.totals().values())
    # Through the read-only role: the database owner is in no Spark configuration.
    assert lines["SHELL-JDBC-USER"] == stack.env["UFO_READONLY_USER"]
    assert int(lines["SHELL-JDBC"]) == _top_state_rows(stack)


def _top_state_rows(stack: Stack) -> int:
    import sqlalchemy as sa

    engine = sa.create_engine(stack.database_url("ufo", stack.env["POSTGRES_PASSWORD"]))
    with engine.connect() as conn:
        n = conn.execute(sa.text("SELECT count(*) FROM top_states")).scalar_one()
    engine.dispose()
    return n


def test_secrets_stay_where_they_are_needed(stack):
    owner = stack.env["POSTGRES_PASSWORD"]
    for service in ("luigi_worker", "spark-worker", "spark-connect", "spark-master"):
        conf = stack.compose(
            "exec", "-T", service, "sh", "-c", 'cat "$SPARK_CONF_DIR/spark-defaults.conf"'
        ).stdout
        assert "spark.submit.deployMode" in conf, service  # the file was read
        assert owner not in conf, f"{service}'s spark-defaults.conf holds the owner's password"
    for service in ("spark-master", "spark-worker", "spark-connect"):
        env = stack.compose("exec", "-T", service, "env").stdout
        assert owner not in env and stack.env["UFO_READONLY_PASSWORD"] not in env, service
        assert "DATABASE_URL" not in env, service
    master = stack.compose("exec", "-T", "spark-master", "env").stdout
    assert stack.env["S3_SECRET_ACCESS_KEY"] not in master


#: A driver that registers with the master, then ends (spark-submit's program).
PROBE_APP = (
    "from pyspark.sql import SparkSession\n"
    "spark = SparkSession.builder.appName('auth-probe').getOrCreate()\n"
    "print('REGISTERED', flush=True)\n"
    "spark.stop()\n"
)


def test_spark_refuses_a_driver_without_the_stacks_secret(stack):
    """Spark's RPC is authenticated and encrypted (SPARK_AUTH_SECRET, what a stack on several
    hosts needs): a driver with no authentication, or with a wrong secret, is refused by the
    master and never registers; one with the stack's secret (from the container's
    spark-defaults.conf) registers. The three run at once; the refused ones are cut short."""
    probe = """
printf %s "$1" > /tmp/probe.py
probe() {
  name=$1; limit=$2; shift 2
  (timeout "$limit" spark-submit --master "$SPARK_MASTER" "$@" /tmp/probe.py \\
     > "/tmp/probe-$name.log" 2>&1; echo "== $name exit $?" >> "/tmp/probe-$name.log") &
}
probe none 30 --conf spark.authenticate=false --conf spark.network.crypto.enabled=false
probe wrong 30 --conf spark.authenticate.secret=not-the-stacks-secret
probe right 150
wait
cat /tmp/probe-none.log /tmp/probe-wrong.log /tmp/probe-right.log
"""
    out = stack.compose(
        "exec", "-T", "luigi_worker", "sh", "-c", probe, "probe", PROBE_APP, timeout=240
    ).stdout
    logs = dict(zip(("none", "wrong", "right"), out.split("== ")[:3], strict=True))
    codes = dict(re.findall(r"== (\w+) exit (\d+)", out))
    assert codes["right"] == "0" and "REGISTERED" in logs["right"], logs["right"][-3000:]
    for name in ("none", "wrong"):
        assert codes[name] != "0" and "REGISTERED" not in logs[name], logs[name][-3000:]
    # The master asked the driver without authentication to prove itself.
    assert "Expected SaslMessage" in logs["none"], logs["none"][-3000:]
    assert stack.env["SPARK_AUTH_SECRET"] not in out
    master = get_json(f"http://127.0.0.1:{SPARK_UI_PORT}/json/")
    probes = [
        a for a in master["completedapps"] + master["activeapps"] if a["name"] == "auth-probe"
    ]
    assert [a["state"] for a in probes] == ["FINISHED"], probes  # the right one, only


def test_check_env_refuses_the_placeholders_of_env_example(stack, tmp_path):
    example = dict(
        line.split("=", 1)
        for line in (REPO / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    secrets_ = ("POSTGRES_PASSWORD", "UFO_READONLY_PASSWORD", "S3_SECRET_ACCESS_KEY")
    values = {**stack.env, **{name: example[name] for name in secrets_}}
    bad = tmp_path / "placeholders.env"
    bad.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    binary = compose_binary()
    cmd = [binary] if binary else ["docker", "compose"]
    result = subprocess.run(
        [*cmd, "-p", f"{stack.project}-check", "--env-file", str(bad), *FILES,
         "run", "--rm", "--no-deps", "check-env"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode != 0, result.stdout + result.stderr
    output = result.stdout + result.stderr
    assert "POSTGRES_PASSWORD is still the placeholder 'change-me'" in output, output[-2000:]
    assert "refusing to start" in output


# --- Spark Connect, from a client that has only pyspark-client ---------------------------------

# The README's Spark Connect example: the top ten file, and the aggregate from the files its
# manifest lists (read here with boto3: Spark skips files named _*), with the answers printed.
CONNECT_SESSION = """
import json, sys
from pyspark.sql import SparkSession
spark = SparkSession.builder.remote(sys.argv[1]).getOrCreate()
lake, date, files = "s3a://" + sys.argv[2] + "/lake", sys.argv[3], json.loads(sys.argv[4])
top = spark.read.csv(f"{lake}/top10/date={date}/top_states.csv", header=True, inferSchema=True)
df = spark.read.parquet(*[f"{lake}/{p}" for p in files])
totals = df.groupBy("state").sum("sightings").orderBy("sum(sightings)", ascending=False).collect()
print("CONNECT-RESULT " + json.dumps({
    "version": spark.version,
    "top": [[r["state"], r["sightings"]] for r in top.where("period = 'all'").orderBy("rank").collect()],
    "totals": {r["state"]: r["sum(sightings)"] for r in totals},
}))
spark.stop()
"""


def connect_client_python(timeout: int = 900) -> Path:
    """Python of a venv with only pyspark-client (it conflicts with pyspark): made once, cached."""
    cache = Path(
        os.environ.get("UFO_CONNECT_CLIENT_CACHE") or Path.home() / ".cache" / "ufo-connect-client"
    )
    venv = cache / f"venv-{CONNECT_CLIENT.replace('==', '-')}"
    python, done = venv / "bin" / "python", venv / ".complete"
    if done.is_file():
        return python
    shutil.rmtree(venv, ignore_errors=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    result = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--timeout", "60", CONNECT_CLIENT],
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    if result.returncode != 0:
        pytest.fail(f"pip install {CONNECT_CLIENT} failed:\n{result.stderr[-3000:]}")
    done.write_text(CONNECT_CLIENT + "\n")
    return python


def test_a_spark_connect_client_reads_the_aggregate(stack, expected, aggregated, tmp_path):
    python = connect_client_python()
    probe = subprocess.run(
        [str(python), "-c", "import importlib.util as u; print(u.find_spec('pyspark.core') is None)"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert probe.stdout.strip() == "True", "the client venv must not hold the full pyspark"
    script = tmp_path / "connect_client.py"
    script.write_text(CONNECT_SESSION)
    start = time.monotonic()
    result = subprocess.run(
        [str(python), str(script), f"sc://127.0.0.1:{CONNECT_PORT}", BUCKET,
         REAL_RUN_DATE.isoformat(), json.dumps(aggregated["files"]["aggregated"])],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    stack.timings["spark_connect"] = round(time.monotonic() - start, 1)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    [line] = [ln for ln in result.stdout.splitlines() if ln.startswith("CONNECT-RESULT ")]
    got = json.loads(line.removeprefix("CONNECT-RESULT "))
    assert got["version"] == "4.0.1"
    assert [tuple(t) for t in got["top"]] == expected.top_ten()
    assert got["totals"] == dict(expected.totals())


def test_producto_answers_health_through_the_read_only_role(stack):
    health = get_json(f"http://127.0.0.1:{PRODUCTO_PORT}/health")
    assert health, health


def test_luigid_and_producto_serve_prometheus_metrics(stack):
    import calendar
    import datetime as dt

    from prometheus_client.parser import text_string_to_metric_families

    families = {}
    for service, port in (("luigid", LUIGID_PORT), ("producto", PRODUCTO_PORT)):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            assert response.status == 200, service
            text = response.read().decode()
        families[service] = {f.name: f for f in text_string_to_metric_families(text)}
    # luigid's own collector ([scheduler] metrics_collector = prometheus in luigi.cfg).
    luigi_task_families = [n for n in families["luigid"] if n.startswith("luigi_task_")]
    assert luigi_task_families, sorted(families["luigid"])
    gauges = {
        s.name: s.value for f in families["producto"].values() for s in f.samples if not s.labels
    }
    assert gauges["ufo_database_up"] == 1.0
    # The run on `up` is of REAL_RUN_DATE; the fault tests only load earlier dates after it.
    end_of_run_date = calendar.timegm((REAL_RUN_DATE + dt.timedelta(days=1)).timetuple())
    assert gauges["ufo_latest_run_date_seconds"] == end_of_run_date
