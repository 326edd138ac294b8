"""The Luigi wiring, without Spark or services: the task graph and the spark-submit argv."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import luigi
import pytest

import etl
from etl.tasks import SPARK_JOB, AggregateUFOsByState, ReadUFOs, TopStatesToDatabase, TopTenStates

D = dt.date(2019, 3, 29)


@pytest.fixture(autouse=True)
def settings(monkeypatch, tmp_path):
    monkeypatch.setenv("UFO_STORAGE", str(tmp_path / "lake"))
    monkeypatch.setenv("UFO_DATABASE_URL", "postgresql://u@127.0.0.1:1/ufo")
    monkeypatch.setenv("SPARK_MASTER", "spark://127.0.0.1:7077")
    return tmp_path / "lake"


def test_importing_etl_touches_nothing():
    # No network, Spark or database at import: a plain import in a fresh interpreter with
    # settings that point nowhere must succeed quickly and start no JVM.
    code = "import etl, sys; assert 'pyspark' not in sys.modules; print(len(etl.__all__))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "4"


def test_the_task_graph():
    top = TopStatesToDatabase(date=D)
    graph = {}

    def walk(task):
        deps = luigi.task.flatten(task.requires())
        graph[task.task_family] = sorted(d.task_family for d in deps)
        for dep in deps:
            walk(dep)

    walk(top)
    assert graph == {
        "TopStatesToDatabase": ["AggregateUFOsByState", "TopTenStates"],
        "TopTenStates": ["AggregateUFOsByState"],
        "AggregateUFOsByState": ["ReadUFOs"],
        "ReadUFOs": [],
    }
    assert all(dep.date == D for dep in luigi.task.flatten(top.requires()))


def test_the_default_date_is_yesterday():
    assert ReadUFOs().date == dt.date.today() - dt.timedelta(days=1)


def test_outputs_are_partitioned_by_date(settings):
    lake = str(settings)
    assert ReadUFOs(date=D).output().path == f"{lake}/raw/date=2019-03-29/nuforc_reports.csv"
    outs = AggregateUFOsByState(date=D).output()
    assert outs["aggregated"].path == f"{lake}/aggregated/date=2019-03-29/_SUCCESS"
    assert outs["rejects"].path == f"{lake}/rejects/date=2019-03-29/_SUCCESS"
    assert outs["report"].path == f"{lake}/reports/date=2019-03-29/quality.json"
    assert TopTenStates(date=D).output().path == f"{lake}/top10/date=2019-03-29/top_states.csv"


def test_spark_submit_argv(settings):
    task = AggregateUFOsByState(date=D)
    argv = task.program_args()
    lake = f"file://{settings}"
    assert argv[0].endswith("spark-submit")
    assert argv[argv.index("--master") + 1] == "spark://127.0.0.1:7077"
    assert argv[argv.index("--deploy-mode") + 1] == "client"
    assert argv[argv.index("--name") + 1] == "AggregateUFOsByState 2019-03-29"
    app = argv.index(str(SPARK_JOB))
    assert argv[app + 1 :] == [
        "--input", f"{lake}/raw/date=2019-03-29/nuforc_reports.csv",
        "--run-date", "2019-03-29",
        "--output", f"{lake}/aggregated/date=2019-03-29",
        "--rejects", f"{lake}/rejects/date=2019-03-29",
        "--report", f"{lake}/reports/date=2019-03-29/quality.json",
    ]  # fmt: skip


def test_s3_storage_gives_s3a_paths_to_spark_and_s3_paths_to_luigi(monkeypatch):
    monkeypatch.setenv("UFO_STORAGE", "s3://ufo-lake/prod")
    task = AggregateUFOsByState(date=D)
    args = task.app_options()
    assert args[args.index("--output") + 1] == "s3a://ufo-lake/prod/aggregated/date=2019-03-29"
    assert task.output()["report"].path == "s3://ufo-lake/prod/reports/date=2019-03-29/quality.json"


def test_local_master_runs_python_workers_with_this_interpreter(monkeypatch):
    monkeypatch.setenv("SPARK_MASTER", "local[2]")
    monkeypatch.delenv("PYSPARK_PYTHON", raising=False)
    env = AggregateUFOsByState(date=D).program_environment()
    assert env["PYSPARK_PYTHON"] == sys.executable


def test_force_upstream_reaches_every_upstream_task():
    top = TopStatesToDatabase(date=D, force_upstream=True)
    read = top.requires()["aggregate"].requires()
    assert read.force and top.requires()["top"].force
    plain = TopStatesToDatabase(date=D, force=True)
    assert not plain.requires()["top"].force


def test_spark_failures_never_show_the_environment():
    from luigi.contrib.external_program import ExternalProgramRunError

    from etl.tasks import SparkJobError

    err = ExternalProgramRunError("failed", ["spark-submit"], env={"AWS_SECRET_ACCESS_KEY": "s3cr3t"},
                                  stdout="", stderr="log line\nerror: bad layout\n")  # fmt: skip
    message = str(SparkJobError.from_run_error(err))
    assert message == "bad layout Fix the source and run again."
    err.err = "just a JVM crash"
    assert "s3cr3t" not in str(SparkJobError.from_run_error(err))
    assert "just a JVM crash" in str(SparkJobError.from_run_error(err))


def test_package_exports_the_tasks():
    assert set(etl.__all__) == {
        "ReadUFOs",
        "AggregateUFOsByState",
        "TopTenStates",
        "TopStatesToDatabase",
    }
