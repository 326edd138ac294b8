"""The whole chain through a real luigid and a real Spark standalone cluster."""

from __future__ import annotations

import pytest

from tests import reference
from tests.cluster.support import TASKS, cluster_env, expected_top_rows, loaded_top_rows, run_on
from tests.support import REAL_2019, REAL_RUN_DATE, shared_file

pytestmark = [pytest.mark.integration, pytest.mark.spark, pytest.mark.shared_data]


@pytest.mark.timeout(600)
def test_whole_chain_on_real_file_through_luigid_and_spark_cluster(
    spark_cluster, luigid, database_url, tmp_path
):
    source = shared_file(REAL_2019.name)
    env = cluster_env(tmp_path / "lake", database_url, source, spark_cluster)
    date = REAL_RUN_DATE

    result = run_on(luigid, "TopStatesToDatabase", "--date", date.isoformat(), env=env, timeout=540)

    assert result.returncode == 0, result.stderr[-5000:]
    done = luigid.families("DONE")
    assert {f: len(done.get(f, [])) for f in TASKS} == {f: 1 for f in TASKS}, done
    assert luigid.tasks("FAILED") == {}
    apps = spark_cluster.completed_apps(f"AggregateUFOsByState {date}")
    assert len(apps) == 1 and apps[0]["state"] == "FINISHED", spark_cluster.state()
    for family in TASKS:
        events = luigid.events(family, date)
        assert events.count("RUNNING") == 1 and events[-1] == "DONE", (family, events)
    expected = reference.classify(source.read_bytes(), date)
    assert loaded_top_rows(database_url, date) == expected_top_rows(expected)


@pytest.mark.timeout(600)
def test_the_local_install_runs_the_chain_on_a_cluster_without_python_settings(
    spark_cluster, luigid, database_url, tmp_path
):
    """SPARK_MASTER=spark://127.0.0.1:... from the install, as a user types it: no
    PYSPARK_PYTHON, no PYSPARK_DRIVER_PYTHON, no SPARK_HOME, the virtualenv not on PATH. The
    virtualenv's spark-submit finds its Spark and its Python by itself (etl/tools/venvspark.py;
    without it: "/bin/spark-class: No such file or directory"); the job needs no Python on the
    executors (DataFrame API only)."""
    import datetime as dt
    import os
    import sys

    from tests.cluster.support import head_of_file

    source = head_of_file(shared_file(REAL_2019.name), tmp_path / "head.csv", 3000)
    env = cluster_env(tmp_path / "lake", database_url, source, spark_cluster)
    for name in ("PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON", "SPARK_HOME"):
        env.pop(name, None)
    venv_bin = os.path.dirname(sys.executable)
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if p != venv_bin)
    date = REAL_RUN_DATE - dt.timedelta(days=1)  # an application of its own on the cluster

    result = run_on(luigid, "TopStatesToDatabase", "--date", date.isoformat(), env=env, timeout=540)

    assert result.returncode == 0, result.stderr[-5000:]
    apps = spark_cluster.completed_apps(f"AggregateUFOsByState {date}")
    assert [a["state"] for a in apps] == ["FINISHED"], spark_cluster.state()
    expected = reference.classify(source.read_bytes(), date)
    assert loaded_top_rows(database_url, date) == expected_top_rows(expected)


@pytest.mark.timeout(300)
def test_make_pyspark_opens_a_shell_on_the_cluster_spark_master_names(spark_cluster, tmp_path):
    """`SPARK_MASTER=spark://... make pyspark`, typed in a terminal with the virtualenv off
    PATH: the shell's executors are the cluster's, they run Python (a lambda) and read the
    lake through the shell's `lake` helper; the application is the cluster's, and ends with
    the shell."""
    import os
    import re

    from tests.cluster.support import wait_until
    from tests.support import REPO, Terminal, path_without_virtualenv, write_aggregate_lake

    run_dir, lake = tmp_path / "run", tmp_path / "lake"
    write_aggregate_lake(lake)
    run_dir.mkdir()
    (run_dir / "demo.env").write_text(f"UFO_STORAGE={lake}\nUFO_RUN_DIR={run_dir}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UFO_", "SPARK_", "PYSPARK"))}
    env["PATH"] = path_without_virtualenv(env.get("PATH", ""))
    env.update(SPARK_MASTER=spark_cluster.master_url, SPARK_LOCAL_IP="127.0.0.1", TERM="dumb",
               UFO_RUN_DIR=str(run_dir))  # fmt: skip
    before = len(spark_cluster.completed_apps("PySparkShell"))

    with Terminal(["make", "--no-print-directory", "pyspark"], env, cwd=REPO) as terminal:
        terminal.type(
            "print('squares', sc.parallelize(range(100), 4).map(lambda x: x * x).sum())",
            "print('master', sc.master)",
            "spark.read.parquet(*lake.aggregated()).groupBy('state').sum('sightings').orderBy('state').show()",
            "exit()",
        )  # fmt: skip
        terminal.read(timeout=240)
    shown = terminal.output.decode(errors="replace")
    assert f"PySpark on the cluster {spark_cluster.master_url} (SPARK_MASTER)" in shown
    assert "squares 328350" in shown, shown[-3000:]  # sum of squares below 100, by hand
    assert f"master {spark_cluster.master_url}" in shown
    assert re.search(r"\|\s*CA\|\s*7\|\s*\r?\n\|\s*WA\|\s*9\|", shown), shown[-3000:]
    finished = wait_until(
        lambda: len(spark_cluster.completed_apps("PySparkShell")) > before,
        "the shell's application to end at the master", 60,
    )  # fmt: skip
    assert finished


@pytest.mark.timeout(300)
def test_a_source_read_on_the_cluster_is_parsed_by_the_workers_executors(
    spark_cluster, luigid, tmp_path
):
    """UFO_INGEST=cluster on a standalone cluster: the reader is shipped to executors in the
    worker's own JVM and Python processes; their records are those the reader finds here."""
    import json

    import pyarrow.parquet as pq

    from etl.adapters import source as sources
    from tests.cluster.support import head_of_file

    source = head_of_file(shared_file(REAL_2019.name), tmp_path / "head.csv", 5000)
    env = cluster_env(tmp_path / "lake", None, source, spark_cluster, UFO_INGEST="cluster",
                      UFO_INGEST_PIECE_SIZE="64KB")  # fmt: skip
    result = run_on(luigid, "ReadUFOs", "--date", REAL_RUN_DATE.isoformat(), env=env, timeout=240)
    assert result.returncode == 0, result.stderr[-5000:]
    apps = spark_cluster.completed_apps(f"ReadUFOs {REAL_RUN_DATE} on the cluster")
    assert len(apps) == 1 and apps[0]["state"] == "FINISHED", spark_cluster.state()
    lake = tmp_path / "lake"
    manifest = json.loads((lake / f"raw/date={REAL_RUN_DATE}/_MANIFEST.json").read_text())
    assert manifest["pieces"] > 5
    got = sorted(
        tuple(r.values())
        for rel in manifest["files"]["records"]
        for r in pq.read_table(lake / rel).to_pylist()
    )
    here = sources.ingest(str(source), str(tmp_path / "copy.csv"), str(tmp_path / "here.parquet"),
                          "head.csv")  # fmt: skip
    assert manifest["records"] == here.records == len(got)
    assert got == sorted(
        tuple(r.values()) for r in pq.read_table(tmp_path / "here.parquet").to_pylist()
    )
