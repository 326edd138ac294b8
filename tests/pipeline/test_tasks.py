"""The Luigi wiring, without Spark or services: the task graph and the spark-submit argv."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import luigi
import pytest

from etl.adapters import classarchive
from etl.pipeline import AggregateUFOsByState, ReadUFOs, TopStatesToDatabase, TopTenStates
from etl.pipeline.rundates import RunDateParameter, RunDates
from spark_jobs import AGGREGATE_BY_STATE

D = dt.date(2019, 3, 29)


@pytest.fixture(autouse=True)
def settings(monkeypatch, tmp_path):
    monkeypatch.setenv("UFO_STORAGE", str(tmp_path / "lake"))
    monkeypatch.setenv("UFO_DATABASE_URL", "postgresql://u@127.0.0.1:1/ufo")
    monkeypatch.setenv("SPARK_MASTER", "spark://127.0.0.1:7077")
    monkeypatch.setenv("UFO_JVM_CACHE", str(tmp_path / "jvm"))  # this machine's archive: not here
    return tmp_path / "lake"


def test_importing_etl_touches_nothing():
    # No network, Spark or database at import: a plain import in a fresh interpreter with
    # settings that point nowhere must succeed quickly and start no JVM.
    code = "import etl, sys; assert 'pyspark' not in sys.modules; print(sorted(etl.__all__))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "AggregateUFOsByState" in out.stdout


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


def test_the_default_date_is_worked_out_when_a_task_is_made(monkeypatch):
    # A worker service runs for days: "yesterday" must follow the clock, not the import.
    class Tomorrow(dt.date):
        @classmethod
        def today(cls):
            return dt.date(2031, 5, 2)

    monkeypatch.setattr("etl.pipeline.rundates.dt.date", Tomorrow)
    assert ReadUFOs().date == dt.date(2031, 5, 1)


def test_a_batch_of_dates_is_one_task_with_every_date():
    param = ReadUFOs.get_params()[0][1]
    batch = param._parse_list(["2019-03-28", "2019-03-26", "2019-03-27", "2019-03-26"])
    task = ReadUFOs(date=batch)
    assert task.dates == (dt.date(2019, 3, 26), dt.date(2019, 3, 27), dt.date(2019, 3, 28))
    assert param.serialize(batch) == "2019-03-26..2019-03-28"  # consecutive dates as a span
    assert ReadUFOs.from_str_params({"date": "2019-03-26,2019-03-28"}).dates == (
        dt.date(2019, 3, 26), dt.date(2019, 3, 28))  # fmt: skip
    assert sorted(task.output()) == list(task.dates)  # complete only when every date is


def test_a_batch_reads_and_writes_spans_and_single_dates():
    param = ReadUFOs.get_params()[0][1]
    year = param.parse("2019-01-01..2019-12-31,2020-02-29, 2019-06-01")
    assert len(year) == 366 and year[0] == dt.date(2019, 1, 1) and year[-1] == dt.date(2020, 2, 29)
    assert param.serialize(year) == "2019-01-01..2019-12-31,2020-02-29"
    assert param.parse(param.serialize(year)) == year
    gaps = param._parse_list(["2019-03-01", "2019-03-02", "2019-03-05", "2019-03-07", "2019-03-08"])
    assert param.serialize(gaps) == "2019-03-01..2019-03-02,2019-03-05,2019-03-07..2019-03-08"
    with pytest.raises(ValueError):
        param.parse("2019-03-02..2019-03-01")


def test_force_is_neither_identity_nor_shown_to_luigid():
    from luigi.parameter import ParameterVisibility

    plain, forced = ReadUFOs(date=D), ReadUFOs(date=D, force=True, force_upstream=True)
    assert plain.task_id == forced.task_id
    assert forced._get_param_visibilities() == {
        "date": ParameterVisibility.PUBLIC.serialize(),
        "force": ParameterVisibility.HIDDEN.serialize(),
        "force_upstream": ParameterVisibility.HIDDEN.serialize(),
        "force_from": ParameterVisibility.HIDDEN.serialize(),
        "accept_checks": ParameterVisibility.HIDDEN.serialize(),
    }
    # What a worker sends luigid: the flags only while they are on, so a task rebuilt from it
    # (a batch, a task handed to another worker) is the same.
    assert plain.to_str_params() == {"date": "2019-03-29"}
    assert forced.to_str_params() == {
        "date": "2019-03-29",
        "force": "True",
        "force_upstream": "True",
    }
    assert ReadUFOs.from_str_params(forced.to_str_params()).force_upstream is True
    anew = ReadUFOs(date=D, force_from="ReadUFOs")
    assert anew.task_id == plain.task_id
    assert ReadUFOs.from_str_params(anew.to_str_params()).force_from == "ReadUFOs"


def test_outputs_are_partitioned_by_date(settings):
    lake = str(settings)
    assert ReadUFOs(date=D).output()[D].path == f"{lake}/raw/date=2019-03-29/_MANIFEST.json"
    outs = AggregateUFOsByState(date=D).output()
    assert outs[D].path == f"{lake}/aggregated/date=2019-03-29/_MANIFEST.json"
    assert TopTenStates(date=D).output()[D].path == f"{lake}/top10/date=2019-03-29/top_states.csv"


def _publish_raw(lake_root, day, **details):
    from etl.adapters.lake import open_lake
    from etl.adapters.manifests import Manifests

    manifests = Manifests(open_lake(str(lake_root)))
    attempt = manifests.new_attempt("raw", [day])
    files = {"records": [f"{attempt}/raw/records.parquet"]}
    manifests.publish("raw", day, attempt, files, **details)
    return attempt


def _driver_options(task) -> list[str]:
    argv = task.spark_command()
    return argv[argv.index("--driver-java-options") + 1].split()


def test_a_brief_run_starts_its_driver_with_the_quick_jit_only(settings, monkeypatch):
    quick = "-XX:TieredStopAtLevel=1"
    # No class archive here (UFO_JVM_CACHE is empty): the class path is not verified twice.
    NO_VERIFY = classarchive.NO_VERIFY
    task = AggregateUFOsByState(date=D)
    limit = task.BRIEF_RUN_ROWS - task.COUNTS_PER_DATE  # records, besides one date's counts
    _publish_raw(settings, D, records=limit)
    # A driver with executors of its own does no row work: always brief.
    assert quick in _driver_options(task)
    monkeypatch.setenv("SPARK_MASTER", "local[2]")  # the driver does the work: by its rows
    assert quick in _driver_options(task)
    _publish_raw(settings, D, records=limit + 1)
    assert _driver_options(task) == NO_VERIFY
    # A year of dates is millions of counts to write, whatever the input.
    days = [D - dt.timedelta(days=i) for i in range(365)]
    year = AggregateUFOsByState(date=RunDates(days))
    for day in year.dates:
        _publish_raw(settings, day, records=1)
    assert _driver_options(year) == NO_VERIFY
    _publish_raw(settings, D)  # a raw zone from before its records were counted: unknown
    assert _driver_options(task) == NO_VERIFY
    # luigi.cfg's own options come after it, so that they win.
    _publish_raw(settings, D, records=1)
    config = luigi.configuration.get_config()
    config.set("spark", "driver-java-options", "-XX:TieredStopAtLevel=4")
    try:
        assert _driver_options(task) == [quick, "-XX:TieredStopAtLevel=4", *NO_VERIFY]
    finally:
        config.remove_option("spark", "driver-java-options")


def test_spark_submit_argv(settings):
    attempt = _publish_raw(settings, D)
    task = AggregateUFOsByState(date=D)
    argv = task.program_args()
    lake = f"file://{settings}"
    if argv[0].endswith("setpriv"):  # spark-submit dies with the Luigi process that started it
        assert argv[1:4] == ["--pdeathsig", "KILL", "--"]
        argv = argv[4:]
    assert argv[0].endswith("spark-submit")
    assert argv[argv.index("--master") + 1] == "spark://127.0.0.1:7077"
    assert argv[argv.index("--deploy-mode") + 1] == "client"
    assert argv[argv.index("--name") + 1] == "AggregateUFOsByState 2019-03-29"
    app = argv.index(str(AGGREGATE_BY_STATE))
    assert argv[app + 1 :] == [
        "--snapshot", f"2019-03-29={lake}/{attempt}/raw/records.parquet",
        "--name", "AggregateUFOsByState 2019-03-29", "--progress", "5",
        "--output", f"{lake}/{task.attempt}",
    ]  # fmt: skip
    assert task.attempt.startswith("_attempts/") and task.attempt != attempt


def test_a_spark_connect_server_takes_the_place_of_master_and_deploy_mode(settings, monkeypatch):
    import socket

    from etl.adapters import spark as spark_adapter
    from etl.errors import ConfigError
    from etl.settings import load_settings

    _publish_raw(settings, D)
    # The server's answer is stood in for here (tests/pipeline/test_spark_connect.py runs a
    # real one, tests/adapters/test_connect_probe.py impostors).
    monkeypatch.setattr(spark_adapter, "connect_problem", lambda remote: None)
    with socket.create_server(("127.0.0.1", 0)) as server:
        remote = f"sc://127.0.0.1:{server.getsockname()[1]}"
        monkeypatch.setenv("UFO_SPARK_REMOTE", remote)
        monkeypatch.setenv("UFO_SPARK_EVENTS", str(settings / "events"))
        task = AggregateUFOsByState(date=D)
        task._remote = task._choose_remote()
    argv = task.program_args()
    if argv[0].endswith("setpriv"):
        argv = argv[4:]
    # A Spark Connect application: the job's Python, no spark-submit (no driver JVM).
    assert argv[:2] == [sys.executable, str(AGGREGATE_BY_STATE)]
    assert task.program_environment()["SPARK_REMOTE"] == remote
    assert not any(k.startswith("spark.eventLog") for k in task.conf or {})  # the server's own
    task._remote = None  # a cold run, as when the server does not answer
    assert "--master" in task.program_args() and "SPARK_REMOTE" not in (task.program_environment())
    monkeypatch.setenv("UFO_SPARK_REMOTE", "http://127.0.0.1:15002")
    with pytest.raises(ConfigError, match="UFO_SPARK_REMOTE.*sc://HOST:PORT"):
        load_settings()


def test_a_batch_runs_one_spark_submit_for_every_date(settings):
    days = [D - dt.timedelta(days=1), D]
    for day in days:
        _publish_raw(settings, day)
    args = AggregateUFOsByState(
        date=ReadUFOs.get_params()[0][1]._parse_list([str(d) for d in days])
    ).app_options()
    assert [a.split("=")[0] for a in args if a.startswith("2019")] == ["2019-03-28", "2019-03-29"]


def test_s3_storage_gives_s3a_paths_to_spark_and_s3_paths_to_luigi(monkeypatch):
    from etl.adapters.lake import open_lake

    lake = open_lake("s3://ufo-lake/prod")
    assert lake.spark_uri("_attempts/a/x") == "s3a://ufo-lake/prod/_attempts/a/x"
    monkeypatch.setenv("UFO_STORAGE", "s3://ufo-lake/prod")
    out = AggregateUFOsByState(date=D).output()[D]
    assert out.path == "s3://ufo-lake/prod/aggregated/date=2019-03-29/_MANIFEST.json"


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

    from etl.pipeline.spark_submit import SparkJobError

    err = ExternalProgramRunError("failed", ["spark-submit"], env={"AWS_SECRET_ACCESS_KEY": "s3cr3t"},
                                  stdout="", stderr="log line\nerror: bad layout\n")  # fmt: skip
    message = str(SparkJobError.from_run_error(err))
    assert message == "bad layout Fix the source and run again."
    # PySpark prints the driver's own lines on stdout: the reason is found there too.
    err = ExternalProgramRunError("failed", ["spark-submit"], env={},
                                  stdout="error: no reports\n", stderr="INFO x\n" * 50)  # fmt: skip
    assert str(SparkJobError.from_run_error(err)).startswith("no reports")
    err.out, err.err = "", "just a JVM crash"
    assert "s3cr3t" not in str(SparkJobError.from_run_error(err))
    assert "just a JVM crash" in str(SparkJobError.from_run_error(err))


def test_the_quality_report_fields_agree_across_the_package_boundaries():
    # The standalone Spark job, the database and the independent reference each name them.
    from etl.adapters import database as db
    from spark_jobs import aggregate_by_state as job
    from tests import reference

    fields = set(job.QUALITY_FIELDS) - {"run_date"}
    assert fields == set(reference.Expected().quality())
    assert fields <= {c.name for c in db.ufo_runs.columns}
    assert set(job.quality_report({}, D)) == set(job.QUALITY_FIELDS)
    from dataclasses import fields as dataclass_fields

    from producto.queries import Run

    assert fields <= {f.name for f in dataclass_fields(Run)}  # what producto shows


class _Dated(luigi.Task):
    """A task of run dates batched as the pipeline's are, for Luigi's own scheduler and summary."""

    date = RunDateParameter()
    max_batch_size = 3
    ran: list = []

    def complete(self) -> bool:
        days = self.date if isinstance(self.date, tuple) else (self.date,)
        return all(day in _Dated.ran for day in days)

    @classmethod
    def bulk_complete(cls, parameter_tuples):
        return [day for day in parameter_tuples if day in _Dated.ran]

    def run(self) -> None:
        _Dated.ran.extend(self.date if isinstance(self.date, tuple) else (self.date,))


def test_a_range_of_several_batches_runs_and_sums_up(monkeypatch):
    """More dates than a batch holds: Luigi summarises several batches (it once failed on
    them, asking each batch of dates for the date after it)."""
    from luigi.tools.range import RangeDaily

    monkeypatch.setattr(_Dated, "ran", [])
    range_task = RangeDaily(
        of=_Dated, start=dt.date(2019, 3, 1), stop=dt.date(2019, 3, 9), days_back=36500
    )
    result = luigi.build(
        [range_task], local_scheduler=True, detailed_summary=True, log_level="WARNING"
    )
    assert result.status == luigi.LuigiStatusCode.SUCCESS, result.summary_text
    assert sorted(_Dated.ran) == [dt.date(2019, 3, d) for d in range(1, 9)]
    assert "8 _Dated(date=2019-03-01...2019-03-08)" in result.summary_text  # as a range


def test_the_cold_spark_uis_port_is_a_setting(settings, monkeypatch):
    from etl.errors import ConfigError
    from etl.settings import load_settings

    _publish_raw(settings, D)

    def ui_port() -> str | None:
        argv = AggregateUFOsByState(date=D).program_args()
        confs = [argv[i + 1] for i, a in enumerate(argv) if a == "--conf"]
        found = [c.split("=", 1)[1] for c in confs if c.startswith("spark.ui.port=")]
        return found[0] if found else None

    assert load_settings().spark_ui_port == 4040 and ui_port() == "4040"  # Spark's own default
    monkeypatch.setenv("UFO_SPARK_UI_PORT", "4999")
    assert ui_port() == "4999"
    for bad in ("notaport", "70000", "-1"):
        monkeypatch.setenv("UFO_SPARK_UI_PORT", bad)
        with pytest.raises(ConfigError, match="UFO_SPARK_UI_PORT"):
            load_settings()


def test_a_task_is_named_as_a_person_names_it_in_error_and_done_lines():
    from luigi.tools.range import RangeDaily

    from etl.pipeline.reporting import label

    assert label(ReadUFOs(date=dt.date(2019, 4, 1))) == "ReadUFOs(date=2019-04-01)"
    days = RunDates([dt.date(2019, 1, 1) + dt.timedelta(days=i) for i in range(88)])
    assert label(TopTenStates(date=days)) == "TopTenStates(date=2019-01-01..2019-03-29 (88 dates))"
    backfill = RangeDaily(
        of=TopStatesToDatabase, start=dt.date(2019, 1, 1), stop=dt.date(2019, 2, 1)
    )
    assert label(backfill).startswith("RangeDaily(") and "_" not in label(backfill).split("(")[0]


def test_a_spark_failure_names_its_first_cause_and_a_lost_checkpoint_is_worth_a_new_run():
    """Spark's output ends with its shutdown's noise; the cause is the first error it reported
    (here the lost host's checkpoint, as the several-hosts test meets it: tests/hosts)."""
    from luigi.contrib.external_program import ExternalProgramRunError

    from etl.pipeline.spark_submit import SparkJobError

    stderr = (
        "INFO DAGScheduler: Job 4 failed\n"
        "org.apache.spark.SparkException: [CHECKPOINT_RDD_BLOCK_ID_NOT_FOUND] Checkpoint block "
        "rdd_11_3 not found! Either the executor that originally checkpointed this partition is "
        "no longer alive, or the original RDD is unpersisted.\n"
        + "\tat org.apache.spark.rdd.LocalCheckpointRDD.compute(LocalCheckpointRDD.scala:69)\n"
        * 60
        + "Caused by: java.util.concurrent.TimeoutException: Cannot receive any reply in 20 s\n"
        "INFO SparkContext: Successfully stopped SparkContext\n"
    )
    err = ExternalProgramRunError("failed", ["spark-submit"], env={}, stdout="", stderr=stderr)
    found = SparkJobError.from_run_error(err)
    assert found.lost_executor is True
    assert "the first error it reported: org.apache.spark.SparkException: " \
           "[CHECKPOINT_RDD_BLOCK_ID_NOT_FOUND] Checkpoint block rdd_11_3" in str(found)  # fmt: skip
    other = ExternalProgramRunError("failed", ["spark-submit"], env={}, stdout="",
                                    stderr="java.lang.OutOfMemoryError: Java heap space\n")  # fmt: skip
    found = SparkJobError.from_run_error(other)
    assert found.lost_executor is False
    assert "the first error it reported: java.lang.OutOfMemoryError: Java heap space" in str(found)


def test_forced_from_a_task_runs_it_and_every_task_after_it_and_no_task_before():
    def forced(task) -> dict[str, bool]:
        found = {type(task).__name__: task.forced}
        for upstream in luigi.task.flatten(task.requires()):
            found.update(forced(upstream))
        return found

    chain = ["ReadUFOs", "AggregateUFOsByState", "TopTenStates", "TopStatesToDatabase"]
    for first in chain:
        got = forced(TopStatesToDatabase(date=D, force_from=first))
        assert got == {name: chain.index(name) >= chain.index(first) for name in chain}, first
    assert not any(forced(TopStatesToDatabase(date=D)).values())
    # Luigi's own flags keep their meaning: the task alone, or with all it needs.
    assert forced(TopStatesToDatabase(date=D, force=True)) == {n: n == chain[-1] for n in chain}
    assert all(forced(TopStatesToDatabase(date=D, force_upstream=True)).values())
    # luigid never shows it while it is off, and a batch carries it to every date's task.
    assert "force_from" not in TopStatesToDatabase(date=D).to_str_params()
    assert TopStatesToDatabase(date=D, force_from="TopTenStates").to_str_params()["force_from"] == (
        "TopTenStates"
    )
