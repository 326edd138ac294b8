"""What the worker keeps of a run besides its result: the log while it runs, the tasks' Spark
output when it ends, and which task a live log says runs now."""

from __future__ import annotations

import logging
import os
import threading
import time

import pytest

from etl.adapters.lake import open_lake
from etl.worker.runlog import LiveLog, gather_spark_output, running_task

PREFIX = "2019-03-29 06:00:01,000 INFO ufo[4242]: "


@pytest.mark.parametrize("log, now", [
    ("", None),
    ("progress: nothing started\n", None),
    ("start: ReadUFOs(date=2019-03-29)\n", "ReadUFOs(date=2019-03-29)"),
    ("start: ReadUFOs(date=2019-03-29)\ndone: ReadUFOs(date=2019-03-29) in 1.2 s -> lake\n", None),
    # The format's prefix, as the run prints its lines; the last task started and not ended.
    (f"{PREFIX}start: ReadUFOs(date=2019-03-29)\n"
     f"{PREFIX}done: ReadUFOs(date=2019-03-29) in 1.2 s -> /lake/raw/date=2019-03-29/x.csv\n"
     f"{PREFIX}start: AggregateUFOsByState(date=2019-03-29)\n"
     f"{PREFIX}progress: AggregateUFOsByState 2019-03-29: classify: stage 2, tasks 1/2\n",
     "AggregateUFOsByState(date=2019-03-29)"),
    # A batch's label holds parentheses of its own.
    ("start: ReadUFOs(date=2019-01-01..2019-03-29 (88 dates))\n"
     "done: ReadUFOs(date=2019-01-01..2019-03-29 (88 dates)) in 3.0 s -> 88 outputs, first x\n"
     "start: AggregateUFOsByState(date=2019-01-01..2019-03-29 (88 dates))\n",
     "AggregateUFOsByState(date=2019-01-01..2019-03-29 (88 dates))"),
    # Another task's end, or the same task's start again, leaves the one that runs.
    ("start: TopStatesToDatabase(date=2019-03-29)\nstart: ReadUFOs(date=2019-03-29)\n"
     "done: ReadUFOs(date=2019-03-29) in 1.0 s -> lake\n", "TopStatesToDatabase(date=2019-03-29)"),
    # A failed task ended too: its "ufo: error:" line.
    ("start: ReadUFOs(date=2019-03-29)\n"
     "ufo: error: ReadUFOs(date=2019-03-29): The source file /x.csv does not exist\n", None),
    # A task's name in another line's text is not a start.
    ("warning: will start: ReadUFOs(date=2019-03-29) later\n", None),
])  # fmt: skip
def test_the_task_running_now_is_the_last_started_and_not_ended(log, now):
    assert running_task(log) == now


def spark_file(folder, name: str, text: str, age: float = 0.0):
    path = folder / name
    path.write_text(text)
    if age:
        stamp = time.time() - age
        os.utime(path, (stamp, stamp))
    return path


def test_the_runs_spark_outputs_are_gathered_redacted_and_bounded(tmp_path):
    spark = tmp_path / "spark"
    spark.mkdir()
    since = time.time() - 60
    spark_file(spark, "Old_task.20190328T060000.1.log", "yesterday's run\n", age=3600)
    spark_file(spark, "A_task.20190329T060001.2.log", "==== stdout ====\nrows: 3\n", age=30)
    long = "".join(f"line {n} key=hunter2-secret\n" for n in range(100))
    spark_file(spark, "B_task.20190329T060002.2.log", "first line\n" + long, age=10)
    dest = tmp_path / "spark.log"

    names = gather_spark_output(spark, since, ["hunter2-secret"], str(dest), kept=200)

    assert names == ["A_task.20190329T060001.2.log", "B_task.20190329T060002.2.log"]
    text = dest.read_text()
    assert "yesterday's run" not in text  # an earlier run's: before this one started
    assert text.startswith("==== A_task.20190329T060001.2.log (25 bytes) ====\n"
                           "==== stdout ====\nrows: 3\n==== B_task")  # fmt: skip
    size = len("first line\n" + long)
    assert f"==== B_task.20190329T060002.2.log ({size:,} bytes, its last 200 bytes) ====" in text
    tail = text.split("its last 200 bytes) ====\n")[1]
    assert tail.endswith("line 99 key=REDACTED\n") and "first line" not in tail
    assert tail.startswith("line ")  # from a whole line on
    assert len(tail.encode()) <= 200 and "hunter2" not in text


def test_no_spark_output_writes_nothing(tmp_path):
    dest = tmp_path / "spark.log"
    assert gather_spark_output(tmp_path / "never-made", 0.0, [], str(dest)) == []
    (tmp_path / "spark").mkdir()
    spark_file(tmp_path / "spark", "Old.log", "old\n", age=3600)
    assert gather_spark_output(tmp_path / "spark", time.time() - 60, [], str(dest)) == []
    assert not dest.exists()


class FailingLake:
    """A lake whose uploads fail, saying a secret in their error (as a URL's may)."""

    def __init__(self):
        self.tries = 0

    def put_file(self, local: str, rel: str) -> None:
        self.tries += 1
        raise OSError("connection refused at https://user:hunter2-secret@lake.example/x")


def test_a_failed_live_upload_is_said_once_and_never_raises(tmp_path, caplog):
    log = tmp_path / "run.log"
    log.write_text("start: ReadUFOs(date=2019-03-29)\n")
    lake = FailingLake()
    live = LiveLog(lake, str(log), "requests/r.log", 2, label="request r.yaml",
                   secrets=["hunter2-secret"])  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="ufo.worker"):
        live.upload()
        with log.open("a") as handle:
            handle.write("progress: more\n")
        live.upload()
    assert lake.tries == 2  # each upload tried: the next one may get through
    said = [r.getMessage() for r in caplog.records if "could not be uploaded" in r.getMessage()]
    assert len(said) == 1 and "request r.yaml" in said[0] and "hunter2" not in said[0]


def test_the_live_log_is_uploaded_when_it_grows_until_halted(tmp_path):
    lake = open_lake(str(tmp_path / "lake"))
    log = tmp_path / "run.log"
    halt = threading.Event()
    live = LiveLog(lake, str(log), "requests/r.log", 0.1, label="request r.yaml", secrets=[],
                   halt=halt)  # fmt: skip
    assert live.every == 2.0  # never more often than that
    live.upload()  # nothing written yet: nothing to upload
    assert not lake.exists("requests/r.log")
    log.write_text("start: ReadUFOs(date=2019-03-29)\n")
    live.upload()
    assert lake.read_text("requests/r.log") == "start: ReadUFOs(date=2019-03-29)\n"
    stamp = lake.modified_at("requests/r.log")
    live.upload()  # not grown: not uploaded again
    assert lake.modified_at("requests/r.log") == stamp

    live.every = 0.05  # the loop itself, quickly: it stops uploading once halted
    with live:
        with log.open("a") as handle:
            handle.write("progress: 1\n")
        deadline = time.monotonic() + 10
        while "progress: 1" not in lake.read_text("requests/r.log"):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        halt.set()
        time.sleep(0.2)
        with log.open("a") as handle:
            handle.write("progress: 2\n")
        time.sleep(0.3)
    assert "progress: 2" not in lake.read_text("requests/r.log")
