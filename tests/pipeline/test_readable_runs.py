"""Runs read in the pipeline's terms: the terminal's default output, Spark's names for the
work, progress while Spark works, the execution summary, and errors a person acts on.

The real run (``real_run``, the whole chain on the real 2019 file as a user types it) is read
here line by line; its Spark application is read back from its event log, as the history server
reads it.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from etl.tools import sample
from tests.support import pipeline_env, run_luigi

#: Lines of Luigi's and spark-submit's that the terminal does not show by default.
NOISE = (
    "Informed scheduler",
    "Worker Worker(",
    "Running command:",
    "Program stdout",
    "Program stderr",
    "Done scheduling tasks",
    "Running Worker with",
    "UserWarning",
    "Traceback",
    "kept in",
)
TASKS = ("ReadUFOs", "AggregateUFOsByState", "TopTenStates", "TopStatesToDatabase")


def events(directory: Path) -> list[dict]:
    """Every event of the Spark applications logged under ``directory``."""
    if shutil.which("zstd") is None:
        pytest.skip("needs zstd to read Spark's event logs (tests/setup-system.sh installs it)")
    found = []
    for path in sorted(directory.glob("*/events_*")):
        text = subprocess.run(["zstd", "-dcq", str(path)], capture_output=True, check=True).stdout
        found += [json.loads(line) for line in text.splitlines() if line.strip()]
    return found


def test_the_default_output_has_one_start_and_one_end_per_task_and_no_noise(real_run):
    output = real_run.result.stdout + real_run.result.stderr
    lines = output.splitlines()
    for noise in NOISE:
        assert noise not in output, noise
    day = real_run.run_date.isoformat()
    for task in TASKS:
        assert sum(f"start: {task}(date={day})" in line for line in lines) == 1, task
        assert sum(f"done: {task}(date={day}) in " in line for line in lines) == 1, task
    # No line twice (the summary's frame aside), timestamps and process ids taken off.
    bare = [re.sub(r"^\S+ \S+ \w+ [\w.-]+\[\d+\]: ", "", line) for line in lines]
    repeated = [
        line for line, n in Counter(bare).items()
        if n > 1 and line.strip() and "Luigi Execution Summary" not in line
    ]  # fmt: skip
    assert repeated == []
    # The Spark step's rows in one line (not a quality dictionary per date).
    assert not any("{'after_run_date'" in line for line in lines)
    assert re.search(r"AggregateUFOsByState \S+: [\d,]+ rows in, [\d,]+ valid", output)


def test_the_spark_step_reports_its_progress_from_sparks_own_status(real_run):
    output = real_run.result.stdout + real_run.result.stderr
    day = real_run.run_date.isoformat()
    progress = [line for line in output.splitlines() if "progress: AggregateUFOsByState" in line]
    assert progress, output[-3000:]
    steps = {"read and pick the layout", "find the duplicates", "classify"}
    for line in progress:
        found = re.search(
            rf"progress: AggregateUFOsByState {day}: ([^:]+): (.*) \((\d+) s\)$", line
        )
        assert found and found.group(1) in steps, line
        assert re.fullmatch(r"starting|stage \d+, \d+ of \d+ tasks", found.group(2)), line
    assert any("tasks" in line for line in progress)
    # Bounded: at most one a second (UFO_PROGRESS_SECONDS=1) over the Spark run.
    spark_seconds = float(re.search(r"; one Spark run of ([\d.]+) s", output).group(1))
    assert len(progress) <= spark_seconds + 1


def test_sparks_application_jobs_and_queries_say_the_task_date_and_step(real_run):
    day = real_run.run_date.isoformat()
    logged = events(real_run.storage.parent / "real-spark-events")
    [name] = [e["App Name"] for e in logged if e["Event"] == "SparkListenerApplicationStart"]
    assert name == f"AggregateUFOsByState {day} from {real_run.source.name} (file)"
    jobs = [
        (e.get("Properties") or {}).get("spark.job.description", "")
        for e in logged if e["Event"] == "SparkListenerJobStart"
    ]  # fmt: skip
    queries = [e["description"] for e in logged if e["Event"].endswith("SQLExecutionStart")]
    assert jobs and queries
    for description in jobs + queries:
        assert description.startswith(f"AggregateUFOsByState {day}: "), description
    steps = {d.split(": ", 1)[1] for d in jobs}
    # A small input is classified in one Spark job; every output is drawn from it on the driver.
    assert steps == {"classify"}, steps


def test_a_backfill_says_its_batches_by_their_dates_without_warnings(tmp_path, database_url):
    days = [dt.date(2019, 3, 10) + dt.timedelta(days=n) for n in range(3)]
    source = tmp_path / "index.csv"
    with open(source, "w", encoding="utf-8", newline="") as out:
        sample.write(out, sample.generate(800, until=days[-1], seed=3,
                                          start=days[0] - dt.timedelta(days=20)))  # fmt: skip
    env = pipeline_env(str(tmp_path / "lake"), database_url, str(source))
    command = ["RangeDaily", "--of", "TopStatesToDatabase", "--start", str(days[0]),
               "--stop", str(days[-1] + dt.timedelta(days=1)), "--days-back", "36500",
               "--task-limit", "366", "--local-scheduler"]  # fmt: skip
    result = run_luigi(*command, env=env)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    for noise in NOISE:
        assert noise not in output, noise
    summary = output.split("===== Luigi Execution Summary =====")[1]
    span = f"{days[0]}..{days[-1]} (3 dates)"
    for task in TASKS:
        assert f"    - {task}(date={span})\n" in summary, summary
    assert "complete ones were encountered" not in summary  # they ran
    assert f"* {3 * len(TASKS) + 1} ran successfully:" in summary
    for hidden in ("force=", "capture_output", "accept_checks", "param_name"):
        assert hidden not in output, hidden
    assert f"RangeDaily(of=TopStatesToDatabase, task_limit=366, start={days[0]}" in summary

    again = run_luigi(*command, env=env)
    summary = (again.stdout + again.stderr).split("===== Luigi Execution Summary =====")[1]
    assert "complete ones were encountered" in summary and "ran successfully" not in summary


def test_a_user_error_is_one_line_on_the_terminal_and_in_the_log_file(tmp_path):
    logs = tmp_path / "logs"
    env = pipeline_env(str(tmp_path / "lake"), None, str(tmp_path / "missing.csv"),
                       UFO_LOG_DIR=str(logs))  # fmt: skip
    result = run_luigi("ReadUFOs", "--date", "2019-04-01", "--local-scheduler", env=env)
    assert result.returncode == 30
    expected = (f"ufo: error: ReadUFOs(date=2019-04-01): The source file {tmp_path}/missing.csv "
                "does not exist")  # fmt: skip
    assert result.stderr.strip().splitlines()[-1].startswith(expected), result.stderr
    output = result.stdout + result.stderr
    assert "Traceback" not in output and "ReadUFOs_2019_04_01_" not in output
    assert output.count("ufo: error:") == 1
    # The log file has the traceback for whoever digs, and the same error line, once.
    log = (logs / "pipeline.log").read_text()
    assert "Traceback" in log and log.count(expected) == 1


def test_verbose_shows_luigis_lines_too(tmp_path):
    env = pipeline_env(str(tmp_path / "lake"), None, str(tmp_path / "missing.csv"),
                       UFO_VERBOSE="1")  # fmt: skip
    result = run_luigi("ReadUFOs", "--date", "2019-04-01", "--local-scheduler", env=env)
    output = result.stdout + result.stderr
    assert "Informed scheduler" in output and "Traceback" in output
    assert output.count("ufo: error: ReadUFOs(date=2019-04-01)") == 1  # printed once, at the end


def test_an_applications_name_says_what_kind_of_source_it_read():
    from etl.pipeline.aggregate import describe_sources

    assert describe_sources(["/data/nuforc_index.csv"]) == "nuforc_index.csv (file)"
    assert describe_sources(["s3://in/x/index.csv.gz"]) == "index.csv.gz (S3)"
    assert describe_sources(["https://u@h/a/b.csv?token=REDACTED"]) == "b.csv (URL)"
    assert describe_sources([".run/sample/nuforc_sample_2026-12-05.csv"]) == (
        "nuforc_sample_2026-12-05.csv (generated sample)"
    )
    assert describe_sources(["/a/one.csv", "/b/two.csv"]) == "one.csv (file) and 1 more"
