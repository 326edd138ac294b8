"""The warm Spark step: AggregateUFOsByState against a Spark Connect server (UFO_SPARK_REMOTE).

A real Spark Connect server (PySpark's own, local mode) is started for this module, as
``make up`` starts one. The same standalone job runs there as a session of the server, and its
results equal the independent reference and the cold run's, file for file.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from etl.tools import connect, sample
from spark_jobs import AGGREGATE_BY_STATE
from tests import reference
from tests.lakefiles import aggregate_counts, reject_rows
from tests.support import REPO, free_port, pipeline_env, run_luigi

pytestmark = [pytest.mark.integration, pytest.mark.spark]

DAYS = [dt.date(2019, 3, 26), dt.date(2019, 3, 27), dt.date(2019, 3, 28)]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A Spark Connect server on 127.0.0.1 (a free port), started as `make up` starts it: its
    address and its log."""
    log = tmp_path_factory.mktemp("connect") / "server.log"
    with connect.running(free_port(), log) as address:
        yield address, log


@pytest.fixture(scope="module")
def remote(server):
    return server[0]


def published(lake: Path, day: dt.date) -> tuple[dict, Counter, Counter]:
    """A date's quality report, counts per (month, state) and rejects, as the lake has them."""
    manifest = json.loads((lake / f"aggregated/date={day}/_MANIFEST.json").read_text())
    counts = aggregate_counts((lake / rel).read_bytes() for rel in manifest["files"]["aggregated"])
    rejects: Counter = Counter()
    for rel in manifest["files"]["rejects"]:
        rejects.update(reject_rows((lake / rel).read_text(encoding="utf-8"))[1])
    return manifest["quality"], counts, rejects


def test_a_batch_of_dates_runs_warm_and_equals_the_reference_and_the_cold_run(
    tmp_path, database_url, remote
):
    source = tmp_path / "index.csv"
    with open(source, "w", encoding="utf-8", newline="") as out:
        sample.write(out, sample.generate(3000, until=DAYS[-1], seed=11,
                                          start=DAYS[0] - dt.timedelta(days=30)))  # fmt: skip
    span = f"{DAYS[0]}..{DAYS[-1]}"
    warm_env = pipeline_env(str(tmp_path / "warm"), database_url, str(source),
                            UFO_SPARK_REMOTE=remote, UFO_VERBOSE="1")  # the command line  # fmt: skip
    warm = run_luigi("TopStatesToDatabase", "--date", span, "--local-scheduler", env=warm_env)
    output = warm.stdout + warm.stderr
    assert warm.returncode == 0, output[-3000:]
    assert f"(on the Spark Connect server {remote})" in output
    [command] = [line for line in output.splitlines() if "Running command: " in line]
    assert f"{sys.executable} {AGGREGATE_BY_STATE}" in command and "spark-submit" not in command
    # The run is the server's session: its link opens the session's page on the server's live UI,
    # where each statement carries the step it belongs to.
    label = f"AggregateUFOsByState {DAYS[0]}..{DAYS[-1]} (3 dates)"
    link = re.search(r"done: AggregateUFOsByState\(.*; Spark application: (http\S+)", output)
    assert link and "/connect/session/?id=" in link.group(1), output[-3000:]
    session = link.group(1).rsplit("=", 1)[1]
    assert f"{label}: Spark Connect session {session}, its jobs at {link.group(1)}" in output
    with urllib.request.urlopen(link.group(1), timeout=30) as page:
        html = page.read().decode()
    # A small input's only Spark work is its classification (the rest is drawn on the driver).
    assert f"{label}: classify" in html

    cold_env = pipeline_env(str(tmp_path / "cold"), None, str(source))
    cold = run_luigi("AggregateUFOsByState", "--date", span, "--local-scheduler", env=cold_env)
    assert cold.returncode == 0, cold.stderr[-3000:]
    assert "(cold)" in cold.stdout + cold.stderr

    data = source.read_bytes()
    for day in DAYS:
        expected = reference.classify(data, day)
        quality, counts, rejects = published(tmp_path / "warm", day)
        assert {k: quality[k] for k in expected.quality()} == expected.quality()
        assert counts == expected.by_month_state
        assert rejects == Counter(expected.rejects)
        assert (quality, counts, rejects) == published(tmp_path / "cold", day)


#: A Spark Connect client in a process of its own: PySpark's builder.remote() turns this process
#: to Spark Connect for good (SPARK_CONNECT_MODE_ENABLED), which later local sessions refuse.
CORES_PROBE = """
import os, sys, time
sys.path.insert(0, sys.argv[1])
from pyspark.sql import SparkSession
from spark_jobs.aggregate_by_state import cores
spark = SparkSession.builder.remote(sys.argv[2]).getOrCreate()
said = spark.conf.get("spark.default.parallelism")
spark.range(1).count()  # the session's first query, out of the way
started = time.monotonic()
found = cores(spark)
quick = time.monotonic() - started
spark.conf.unset("spark.default.parallelism")
again = cores(spark) if spark.conf.get("spark.default.parallelism", None) is None else found
spark.stop()
print(said, found, round(quick, 3), again)
"""


def test_a_run_reads_the_local_servers_cores_from_its_settings_not_from_a_job(remote):
    """The server `make up` starts says its default parallelism (its local master's cores); a
    run reads it (one setting) instead of running a job to learn it; a server that does not
    say it still gets an answer, from the job."""
    import os

    from etl.tools.connect import local_cores

    assert [local_cores(m) for m in ("local", "local[3]", "local[2,4]", "spark://h:7077")] == [
        1, 3, 2, None,
    ]  # fmt: skip
    assert local_cores("local[*]") == os.cpu_count()
    probe = subprocess.run([sys.executable, "-c", CORES_PROBE, str(REPO), remote],
                           capture_output=True, text=True, timeout=300)  # fmt: skip
    assert probe.returncode == 0, probe.stderr[-3000:]
    said, found, quick, again = probe.stdout.split()
    cpus = str(os.cpu_count())
    assert (said, found, again) == (cpus, cpus, cpus)
    assert float(quick) < 0.2


SESSION_QUERY = """
import sys
from pyspark.sql import SparkSession, functions as F
spark = SparkSession.builder.remote(sys.argv[1]).create()
rows = spark.range(200_000).select((F.col("id") % 7).alias("k"), F.col("id").cast("string").alias("s"))
found = rows.groupBy("k").agg(F.countDistinct("s").alias("n"), F.max("s").alias("top")).collect()
spark.stop()
print(sorted((r.k, r.n, r.top) for r in found))
"""


def test_the_servers_sessions_share_the_code_it_compiled(server):
    """A second session of the same query compiles nothing again: the server does not give
    every session a class loader of its own (Spark's SparkConnectServer does, and each session
    then compiled and ran its generated classes anew)."""
    address, log = server
    expected = sorted((k, len(range(k, 200_000, 7)), max(map(str, range(k, 200_000, 7))))
                      for k in range(7))  # fmt: skip
    compiled = []
    for _ in range(2):
        before = log.read_text(errors="replace").count("Code generated in")
        session = subprocess.run([sys.executable, "-c", SESSION_QUERY, address],
                                 capture_output=True, text=True, timeout=300)  # fmt: skip
        assert session.returncode == 0, session.stderr[-3000:]
        assert session.stdout.strip() == str(expected)
        time.sleep(0.5)  # the log's last lines written
        compiled.append(log.read_text(errors="replace").count("Code generated in") - before)
    assert compiled[0] >= 3, compiled  # the query's stages, compiled by the first session
    assert compiled[1] == 0, compiled


def test_a_server_that_does_not_answer_means_a_cold_run_and_a_warning(tmp_path):
    source = tmp_path / "index.csv"
    with open(source, "w", encoding="utf-8", newline="") as out:
        sample.write(out, sample.generate(500, until=DAYS[0], seed=3))
    nobody = f"sc://127.0.0.1:{free_port()}"
    env = pipeline_env(str(tmp_path / "lake"), None, str(source), UFO_SPARK_REMOTE=nobody)
    result = run_luigi("AggregateUFOsByState", "--date", str(DAYS[0]), "--local-scheduler", env=env)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert f"the Spark Connect server {nobody} does not answer" in output
    assert "(cold)" in output
    quality, counts, _ = published(tmp_path / "lake", DAYS[0])
    expected = reference.classify(source.read_bytes(), DAYS[0])
    assert counts == expected.by_month_state
    assert {k: quality[k] for k in expected.quality()} == expected.quality()


def _small_source(tmp_path: Path, rows: int = 500) -> Path:
    source = tmp_path / "index.csv"
    with open(source, "w", encoding="utf-8", newline="") as out:
        sample.write(out, sample.generate(rows, until=DAYS[0], seed=3))
    return source


@pytest.fixture
def impostor():
    """A plain web server where the Spark Connect server should be (producto was, in the
    reproduction): it accepts every connection and answers HTTP/1."""
    import http.server
    import threading

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"sc://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("kind", ["web server", "token on a plain server"])
def test_a_server_that_does_not_speak_spark_connect_means_a_cold_run_and_its_reason(
    tmp_path, impostor, remote, kind
):
    target = impostor if kind == "web server" else f"{remote}/;token=s3cr3t-token"
    source = _small_source(tmp_path)
    env = pipeline_env(str(tmp_path / "lake"), None, str(source), UFO_SPARK_REMOTE=target)
    start = time.monotonic()
    result = run_luigi("AggregateUFOsByState", "--date", str(DAYS[0]), "--local-scheduler",
                       env=env, timeout=300)  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    [warning] = [line for line in output.splitlines() if "does not answer (" in line]
    assert "UNAVAILABLE" in warning and "running as a new Spark application" in warning
    assert "s3cr3t-token" not in output
    assert "(cold)" in output
    print(f"{kind}: the run took {time.monotonic() - start:.1f} s")
    assert published(tmp_path / "lake", DAYS[0])[1]


def test_a_server_that_dies_mid_run_ends_the_run_within_a_minute_saying_so(tmp_path):
    import os
    import signal
    import subprocess

    source = tmp_path / "index.csv"
    with open(source, "w", encoding="utf-8", newline="") as out:  # a job of several seconds
        sample.write(out, sample.generate(200_000, until=DAYS[0], seed=5))
    port = free_port()
    argv, extra = connect.command(port, "127.0.0.1", None)
    with open(tmp_path / "server.log", "wb") as log:
        server = subprocess.Popen(argv, env=dict(os.environ, **extra), stdout=log,
                                  stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    address = f"sc://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while not connect.spark.connect_answers(address, timeout=1):
            assert server.poll() is None and time.monotonic() < deadline, "no server"
            time.sleep(0.5)
        lake = tmp_path / "lake"
        env = pipeline_env(str(lake), None, str(source), UFO_SPARK_REMOTE=address, UFO_VERBOSE="1")
        with open(tmp_path / "run.log", "wb") as run_log:
            run = subprocess.Popen(
                [sys.executable, "-m", "luigi", "--module", "etl", "AggregateUFOsByState",
                 "--date", str(DAYS[0]), "--local-scheduler", "--no-lock"],
                env=env, stdout=run_log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:
            while b"Running command: " not in (tmp_path / "run.log").read_bytes():
                assert run.poll() is None, (tmp_path / "run.log").read_text()[-3000:]
                time.sleep(0.2)
            time.sleep(2)  # the job is connected and working
            os.killpg(server.pid, signal.SIGKILL)
            killed = time.monotonic()
            run.wait(timeout=180)
            ended = time.monotonic() - killed
        finally:
            if run.poll() is None:
                run.kill()
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
        server.wait()
    output = (tmp_path / "run.log").read_text()
    print(f"the run ended {ended:.1f} s after the server died")
    assert run.returncode != 0
    assert ended < 75, output[-3000:]
    assert f"the Spark Connect server {address} (UFO_SPARK_REMOTE) went away" in output
    assert "nothing was published" in output
    assert not (lake / f"aggregated/date={DAYS[0]}").exists()
    assert not list(lake.rglob("_job.json")), sorted(map(str, lake.rglob("*")))[:40]


def test_a_source_read_on_the_cluster_through_the_server_equals_the_local_read(tmp_path, remote):
    """UFO_INGEST=cluster with UFO_SPARK_REMOTE: the pieces are parsed as a session of the
    server (the reader shipped as an artifact), into the records the local reader finds."""
    import pyarrow.parquet as pq

    source = tmp_path / "index.csv"
    with open(source, "w", encoding="utf-8", newline="") as out:
        sample.write(out, sample.generate(5000, until=DAYS[-1], seed=5))
    found = {}
    for ingest in ("local", "cluster"):
        lake = tmp_path / ingest
        env = pipeline_env(str(lake), None, str(source), UFO_INGEST=ingest,
                           UFO_INGEST_PIECE_SIZE="100KB", UFO_SPARK_REMOTE=remote)  # fmt: skip
        result = run_luigi("ReadUFOs", "--date", str(DAYS[-1]), "--local-scheduler", env=env)
        assert result.returncode == 0, result.stderr[-4000:]
        manifest = json.loads((lake / f"raw/date={DAYS[-1]}/_MANIFEST.json").read_text())
        rows = sorted(
            tuple(r.values())
            for rel in manifest["files"]["records"]
            for r in pq.read_table(lake / rel).to_pylist()
        )
        found[ingest] = (manifest["records"], manifest["pieces"], rows)
    assert found["local"][1] == 1 and found["cluster"][1] > 3
    assert found["cluster"][0] == found["local"][0] == len(found["local"][2]) >= 5000
    assert found["cluster"][2] == found["local"][2]


def test_the_server_adds_its_plugin_to_those_given_once():
    from spark_jobs.connect_server import PLUGIN, plugins

    assert plugins("") == PLUGIN
    assert plugins(" com.example.Metrics ") == f"com.example.Metrics,{PLUGIN}"
    assert plugins(f"com.example.Metrics,{PLUGIN}") == f"com.example.Metrics,{PLUGIN}"


def test_a_server_sent_sigterm_on_its_pid_alone_leaves_no_process_behind(tmp_path):
    """`make stop` signals the server's whole process group; someone may signal its JVM only.
    The JVM stops Spark as it exits, and the PySpark driver it started follows it."""
    import os
    import signal

    port = free_port()
    argv, extra = connect.command(port, "127.0.0.1", None)
    with open(tmp_path / "server.log", "wb") as log:
        server = subprocess.Popen(argv, env=dict(os.environ, **extra), stdout=log,
                                  stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while not connect.spark.connect_answers(f"sc://127.0.0.1:{port}", timeout=1):
            assert server.poll() is None and time.monotonic() < deadline, "no server"
            time.sleep(0.5)
        group = [p for p in os.listdir("/proc") if p.isdigit() and _group_of(p) == server.pid]
        assert len(group) >= 2, group  # the JVM and the driver it started
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
        deadline = time.monotonic() + 15
        while any(_group_of(p) == server.pid for p in group):
            assert time.monotonic() < deadline, "the server's driver outlived its JVM"
            time.sleep(0.5)
        assert "Spark Connect server ready" in (tmp_path / "server.log").read_text()
    finally:
        try:
            os.killpg(server.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _group_of(pid: str) -> int | None:
    """The process group of a live process (None once it is gone or a zombie)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] == "Z" else int(fields[2])
