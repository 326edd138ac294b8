"""The UFO pipeline's Luigi tasks, one atomic output each, partitioned by run date.

ReadUFOs -> AggregateUFOsByState (spark-submit) -> TopTenStates -> TopStatesToDatabase
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import json
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

import luigi
from luigi.contrib.external_program import ExternalProgramRunError
from luigi.contrib.spark import SparkSubmitTask

from etl import db, logs, source, topten
from etl.config import Settings, load_settings
from etl.errors import DataError, UfoError
from etl.storage import Lake, modified_at, partition

logger = logging.getLogger("ufo")

SPARK_JOB = Path(__file__).resolve().parent.parent / "spark_jobs" / "aggregate_by_state.py"
RAW_FILE = "nuforc_reports.csv"


def report_failure(task: luigi.Task, exception: BaseException) -> None:
    """Print one line saying what failed and what to do (after Luigi's own traceback)."""
    if isinstance(exception, UfoError):
        message = str(exception)
    else:
        message = f"{type(exception).__name__}: {exception}".splitlines()[0]
    print(f"ufo: error: {task.task_id}: {message}", file=sys.stderr, flush=True)


@functools.lru_cache(maxsize=8)
def _lake(uri: str) -> Lake:
    return Lake.from_uri(uri)


def _yesterday() -> dt.date:
    return dt.date.today() - dt.timedelta(days=1)


class UfoTask(luigi.task.MixinNaiveBulkComplete, luigi.Task):
    """Base of the pipeline's tasks: the run date, the settings and the lake.

    Range tools (``RangeDaily``) ask each date's task whether it is complete (the naive bulk
    check): the database target has no path for them to list.
    """

    date = luigi.DateParameter(
        default=_yesterday(),
        description="Run date: the snapshot covers reports posted on or before it (default: yesterday).",
    )

    force = luigi.BoolParameter(
        default=False,
        significant=False,
        description="Run even if the output exists; the new output replaces it atomically.",
    )
    force_upstream = luigi.BoolParameter(
        default=False,
        significant=False,
        description="Like --force, for this task and every task upstream of it.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # A forced task notes when its outputs were written the first time Luigi asks whether it
        # is complete (before it runs), and is complete once they have all been written again.
        # Nothing is deleted up front: only the worker that runs the task replaces its outputs.
        self._forced_baseline: list[float | None] | None = None

    def complete(self) -> bool:
        try:
            return self._complete()
        except UfoError as err:
            # Luigi logs a traceback for errors in complete() but no reason: say what to fix.
            report_failure(self, err)
            raise

    def _complete(self) -> bool:
        if not (self.force or self.force_upstream):
            return super().complete()
        outputs = luigi.task.flatten(self.output())
        if self._forced_baseline is None:
            self._forced_baseline = [modified_at(t) if t.exists() else None for t in outputs]
            return False
        return all(
            t.exists() and (before is None or modified_at(t) > before)
            for t, before in zip(outputs, self._forced_baseline)
        )

    def upstream(self, cls: type[UfoTask]) -> UfoTask:
        """The task ``cls`` for this run date, forced when this one is forced upstream."""
        return cls(date=self.date, force=self.force_upstream, force_upstream=self.force_upstream)

    # Read at use, not cached on the task: Luigi reuses task instances within a process, and a
    # long-running worker must see the environment of each run.
    @property
    def settings(self) -> Settings:
        return load_settings()

    @property
    def lake(self) -> Lake:
        return _lake(self.settings.storage)

    def partition(self, dataset: str) -> str:
        return partition(dataset, self.date)


class ReadUFOs(UfoTask):
    """The raw report index of the run date, as UTF-8, in ``raw/date=.../``."""

    def output(self) -> luigi.Target:
        return self.lake.target(self.output_rel)

    def run(self) -> None:
        uri = self.settings.require_source()
        self.lake.check()
        with source.fetched(uri) as local, tempfile.TemporaryDirectory() as tmp:
            utf8 = os.path.join(tmp, RAW_FILE)
            with open(utf8, "w", encoding="utf-8", newline="") as out:
                info = source.transcode(local, out, uri)
            self.lake.put_file(utf8, self.output_rel)
        logger.info(
            "ReadUFOs %s: %d records from %s (%s, %d bytes)",
            self.date,
            info.records,
            uri,
            info.encoding,
            info.bytes_in,
        )

    @property
    def output_rel(self) -> str:
        return f"{self.partition('raw')}/{RAW_FILE}"


class AggregateUFOsByState(UfoTask, SparkSubmitTask):
    """Sightings per (month, state), the rejected rows and the quality report of the run date.

    Runs ``spark_jobs/aggregate_by_state.py`` with spark-submit; the master comes from
    SPARK_MASTER (or ``[ufo] spark_master``), other flags from luigi.cfg's ``[spark]``.
    """

    app = str(SPARK_JOB)
    resources = {"spark_applications": 1}

    @property
    def name(self) -> str:
        return f"AggregateUFOsByState {self.date}"

    def requires(self) -> ReadUFOs:
        return self.upstream(ReadUFOs)

    def output(self) -> dict[str, luigi.Target]:
        return {
            "aggregated": self.lake.flag(self.partition("aggregated")),
            "rejects": self.lake.flag(self.partition("rejects")),
            "report": self.lake.target(f"{self.partition('reports')}/quality.json"),
        }

    def app_options(self) -> list[str]:
        return [
            "--input", self.lake.spark_uri(f"{self.partition('raw')}/{RAW_FILE}"),
            "--run-date", self.date.isoformat(),
            "--output", self.lake.spark_uri(self.partition("aggregated")),
            "--rejects", self.lake.spark_uri(self.partition("rejects")),
            "--report", self.lake.spark_uri(f"{self.partition('reports')}/quality.json"),
        ]  # fmt: skip

    @property
    def master(self) -> str:
        return self.settings.spark_master

    @property
    def spark_submit(self) -> str:
        configured = luigi.configuration.get_config().get("spark", "spark-submit", None)
        if configured:
            return configured
        found = shutil.which(
            "spark-submit",
            path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        )
        if found:
            return found
        import pyspark  # the pip package ships spark-submit

        return str(Path(pyspark.__file__).parent / "bin" / "spark-submit")

    def program_environment(self) -> dict[str, str]:
        env = super().program_environment()
        if self.master.startswith("local"):
            # Local mode: the Python workers are this interpreter, with its packages.
            env.setdefault("PYSPARK_PYTHON", sys.executable)
        return env

    def _clean_output_file(self, file_object) -> str:
        # Luigi reads spark-submit's captured stdout, then stderr, through here: keep both.
        text = super()._clean_output_file(file_object)
        self._spark_output.append(text)
        return text

    def run(self) -> None:
        self._spark_output: list[str] = []
        try:
            super().run()
        except ExternalProgramRunError as err:
            raise SparkJobError.from_run_error(err) from None
        finally:
            self._keep_spark_output()
        logger.info("AggregateUFOsByState %s: %s", self.date, self.quality())

    def _keep_spark_output(self) -> None:
        path = logs.spark_log_path(self.task_id)
        if path is not None and self._spark_output:
            names = ("stdout", "stderr")
            path.write_text(
                "".join(f"==== {n} ====\n{t}\n" for n, t in zip(names, self._spark_output))
            )
            logger.info("spark-submit output of %s kept in %s", self.task_id, path)

    def quality(self) -> dict:
        return json.loads(self.lake.read_text(f"{self.partition('reports')}/quality.json"))


class SparkJobError(DataError):
    """spark-submit failed; carries the job's own error line and the tail of its output."""

    @classmethod
    def from_run_error(cls, err: ExternalProgramRunError) -> SparkJobError:
        # Never str(err): luigi's message includes the whole environment, secrets and all.
        stderr = err.err or ""
        job_errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
        if job_errors:
            return cls(job_errors[-1].removeprefix("error: ") + " Fix the source and run again.")
        tail = "\n".join(stderr.splitlines()[-40:])
        return cls(f"spark-submit failed ({err.message}); last lines of its output:\n{tail}")


class TopTenStates(UfoTask):
    """The top ten states for all time and for each month: ``top10/date=.../top_states.csv``."""

    def requires(self) -> AggregateUFOsByState:
        return self.upstream(AggregateUFOsByState)

    @property
    def output_rel(self) -> str:
        return f"{self.partition('top10')}/top_states.csv"

    def output(self) -> luigi.Target:
        return self.lake.target(self.output_rel)

    def aggregate(self) -> list[tuple[str, str, int]]:
        files = self.lake.files(self.partition("aggregated"), ".csv")
        if not files:
            raise DataError(
                f"No aggregate files in {self.lake.uri(self.partition('aggregated'))}: "
                "re-run AggregateUFOsByState for this date with --force."
            )
        return topten.read_aggregate(io.StringIO(self.lake.read_text(rel)) for rel in files)

    def run(self) -> None:
        rows = topten.top_states(topten.counts_by_period(self.aggregate()))
        with tempfile.TemporaryDirectory() as tmp:
            local = os.path.join(tmp, "top_states.csv")
            with open(local, "w", encoding="utf-8", newline="") as out:
                topten.write_rows(out, topten.TOP_COLUMNS, rows)
            self.lake.put_file(local, self.output_rel)


class TopStatesToDatabase(UfoTask):
    """The run date's top tens, state counts and quality figures in PostgreSQL."""

    def requires(self) -> dict[str, luigi.Task]:
        return {
            "top": self.upstream(TopTenStates),
            "aggregate": self.upstream(AggregateUFOsByState),
        }

    def output(self) -> db.RunLoadedTarget:
        return db.RunLoadedTarget(self.settings.require_database_url(), self.date)

    def run(self) -> None:
        top = topten.read_top(io.StringIO(self.lake.read_text(self.requires()["top"].output_rel)))
        aggregate = self.requires()["top"].aggregate()
        counts = [
            (period, state, n)
            for period, by_state in topten.counts_by_period(aggregate).items()
            for state, n in sorted(by_state.items())
        ]
        results = db.RunResults(
            run_date=self.date,
            source=self.settings.source or "",
            quality=self.requires()["aggregate"].quality(),
            top=top,
            counts=counts,
        )
        db.load_run(self.settings.require_database_url(), results)
        logger.info(
            "TopStatesToDatabase %s: %d top-ten rows loaded into %s",
            self.date,
            len(top),
            db.safe_url(self.settings.require_database_url()),
        )
