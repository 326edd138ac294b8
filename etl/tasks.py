"""The UFO pipeline's Luigi tasks, partitioned by run date, each date's outputs committed at once.

ReadUFOs -> AggregateUFOsByState (spark-submit) -> TopTenStates -> TopStatesToDatabase

Every task takes ``--date``. Luigi's scheduler may hand a worker many pending dates of one task
as a single batch (a backfill with ``RangeDaily``): ``date`` is then a ``RunDates`` tuple, the
source is fetched once, Spark runs once for all of them, and each date is still published (and
loaded) on its own, so a batch is complete only when every one of its dates is.
"""

from __future__ import annotations

import atexit
import csv
import datetime as dt
import functools
import io
import json
import logging
import os
import shutil
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import luigi
import pyarrow as pa
from luigi.contrib.external_program import ExternalProgramRunError
from luigi.contrib.spark import SparkSubmitTask

from etl import db, logs, redact, source, topten
from etl.config import Settings, load_settings
from etl.errors import DataError, UfoError
from etl.storage import Lake, ManifestTarget, modified_at

logger = logging.getLogger("ufo")

SPARK_JOB = Path(__file__).resolve().parent.parent / "spark_jobs" / "aggregate_by_state.py"


_MAIN_PID = os.getpid()


def report_failure(task: luigi.Task, exception: BaseException, *, last: bool = False) -> None:
    """Print one line saying what failed and what to do (after Luigi's own traceback).

    ``last``: Luigi prints its traceback after this call (errors in ``complete()`` and in
    parameters): in the main process the line is printed when the process exits instead.
    """
    if isinstance(exception, UfoError):
        message = str(exception)
    else:
        message = f"{type(exception).__name__}: {exception}".splitlines()[0]
    line = f"ufo: error: {task.task_id if task is not None else 'luigi'}: {message}"
    if last and os.getpid() == _MAIN_PID:
        _say_at_exit(line)
    else:
        print(line, file=sys.stderr, flush=True)


_at_exit: list[str] = []


def _say_at_exit(line: str) -> None:
    if not _at_exit:
        atexit.register(
            lambda: print(*dict.fromkeys(_at_exit), sep="\n", file=sys.stderr, flush=True)
        )
    _at_exit.append(line)


def report_done(task: luigi.Task, seconds: float) -> None:
    """One line per finished task: how long it took and where its outputs are."""
    outputs = [getattr(t, "path", repr(t)) for t in luigi.task.flatten(task.output())]
    if len(outputs) > 1:
        where = f"{len(outputs)} outputs, first {outputs[0]}"
    else:
        where = outputs[0] if outputs else "no output of its own"  # e.g. RangeDaily
    logger.info("done: %s in %.1f s -> %s", task.task_id, seconds, where)


@functools.lru_cache(maxsize=8)
def _lake(uri: str) -> Lake:
    return Lake.from_uri(uri)


def _yesterday() -> dt.date:
    return dt.date.today() - dt.timedelta(days=1)


class RunDates(tuple):
    """Several run dates handled as one batch: distinct and in order."""

    def __new__(cls, dates) -> RunDates:
        return super().__new__(cls, sorted(set(dates)))


def _batch(dates) -> dt.date | RunDates:
    merged = RunDates(
        d for value in dates for d in (value if isinstance(value, tuple) else (value,))
    )
    return merged[0] if len(merged) == 1 else merged


class RunDateParameter(luigi.DateParameter):
    """A run date, or a batch of them: comma-separated dates and ``FIRST..LAST`` spans
    (``2019-01-01..2019-12-31,2020-02-29``).

    A batch is written with its consecutive dates as spans, so luigid's UI and Luigi's summary
    show a backfill of a year as ``date=2019-01-01..2019-12-31`` rather than 365 dates.

    The default, yesterday, is worked out each time a task is made, not once at import: a
    worker service that runs for days must not keep the day it started on.
    """

    def __init__(self, **kwargs):
        super().__init__(batch_method=_batch, **kwargs)

    @property
    def _default(self):
        return _yesterday()

    @_default.setter
    def _default(self, value) -> None:
        pass  # the default is always yesterday

    def parse(self, s: str):
        try:
            if "," in s or ".." in s:
                return _batch(d for part in s.split(",") for d in self._dates(part.strip()))
            return super().parse(s)
        except ValueError:
            if sys.argv and sys.argv[0].endswith(("luigi", "luigi/__main__.py")):  # the CLI only
                _say_at_exit(
                    f"ufo: error: --date {s!r} is not a date: give YYYY-MM-DD, e.g. 2019-03-29."
                )
            raise

    def _dates(self, part: str) -> list[dt.date]:
        first, span, last = part.partition("..")
        start = super().parse(first.strip())
        if not span:
            return [start]
        end = super().parse(last.strip())
        if end < start:
            raise ValueError(f"{part!r}: the span ends before it starts")
        return [start + dt.timedelta(days=n) for n in range((end - start).days + 1)]

    def serialize(self, x) -> str:
        if isinstance(x, RunDates):
            spans: list[tuple[dt.date, dt.date]] = []  # (first, last) of consecutive dates
            for day in x:
                if spans and day - spans[-1][1] == dt.timedelta(days=1):
                    spans[-1] = (spans[-1][0], day)
                else:
                    spans.append((day, day))
            return ",".join(
                first.isoformat() if first == last else f"{first}..{last}" for first, last in spans
            )
        return super().serialize(x)

    def normalize(self, x):
        if isinstance(x, RunDates):
            return x
        return super().normalize(x)


class UfoTask(luigi.task.MixinNaiveBulkComplete, luigi.Task):
    """Base of the pipeline's tasks: the run date(s), the settings and the lake.

    Range tools (``RangeDaily``) ask each date's task whether it is complete (the naive bulk
    check, or a task's own ``bulk_complete``).
    """

    date = RunDateParameter(
        description="Run date: the snapshot covers reports posted on or before it (default: "
        "yesterday). A batch of dates is comma-separated.",
    )

    # Neither is part of the task's identity (a forced task is the same task), and luigid shows
    # neither (HIDDEN: still sent to the scheduler, so a worker that takes the task over gets
    # them, but left out of its display name and the parameters its UI and API show).
    force = luigi.BoolParameter(
        default=False,
        significant=False,
        visibility=luigi.parameter.ParameterVisibility.HIDDEN,
        description="Run even if the output exists; the new output replaces it atomically.",
    )
    force_upstream = luigi.BoolParameter(
        default=False,
        significant=False,
        visibility=luigi.parameter.ParameterVisibility.HIDDEN,
        description="Like --force, for this task and every task upstream of it.",
    )

    #: Dates per batch in a backfill (a Spark run covers them all; a failure fails them all).
    max_batch_size = 1000

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # A forced task notes when its outputs were written the first time Luigi asks whether it
        # is complete (before it runs), and is complete once they have all been written again.
        # Nothing is deleted up front: only the worker that runs the task replaces its outputs.
        self._forced_baseline: list[float | None] | None = None

    def to_str_params(self, only_significant: bool = False, only_public: bool = False) -> dict:
        # What the worker sends luigid. Luigi creates a batch task in luigid without the
        # parameters' visibilities, so luigid would show its hidden ones: leave ``force`` and
        # ``force_upstream`` out while they are off (their default, what a task is rebuilt with).
        params = super().to_str_params(only_significant, only_public)
        for name in ("force", "force_upstream"):
            if not getattr(self, name):
                params.pop(name, None)
        return params

    @property
    def dates(self) -> tuple[dt.date, ...]:
        """The run dates of this task: one, or a batch."""
        return tuple(self.date) if isinstance(self.date, RunDates) else (self.date,)

    def complete(self) -> bool:
        try:
            return self._complete()
        except UfoError as err:
            # Luigi logs a traceback for errors in complete() but no reason: say what to fix.
            report_failure(self, err, last=True)
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
        """The task ``cls`` for the same run date(s), forced when this one is forced upstream."""
        return cls(date=self.date, force=self.force_upstream, force_upstream=self.force_upstream)

    # Read at use, not cached on the task: Luigi reuses task instances within a process, and a
    # long-running worker must see the environment of each run.
    @property
    def settings(self) -> Settings:
        return load_settings()

    @property
    def lake(self) -> Lake:
        return _lake(self.settings.storage)

    def published(self, dataset: str) -> dict[dt.date, ManifestTarget]:
        """The manifest of ``dataset`` for each run date: that date's outputs, all or none."""
        return {day: ManifestTarget(self.lake, dataset, day) for day in self.dates}

    def tidy(self, superseded) -> None:
        """Remove attempts no manifest names any more, and stale ones of interrupted runs."""
        removed = self.lake.retire(superseded)
        removed += self.lake.sweep(self.settings.stale_attempts)
        if removed:
            logger.info("removed %d unused attempt(s) from the lake", len(removed))

    def progress(self, done: int, started: float, what: str) -> None:
        total = len(self.dates)
        if total > 1 and (done == total or done % max(1, total // 10) == 0):
            elapsed = time.monotonic() - started
            left = elapsed / done * (total - done) if done else 0
            logger.info(
                "%s: %d of %d dates, %.1f s so far, about %.0f s left",
                what, done, total, elapsed, left,
            )  # fmt: skip


class ReadUFOs(UfoTask):
    """The source of the run date, checked and read into the raw zone (Parquet and a UTF-8 copy)."""

    def output(self) -> dict[dt.date, ManifestTarget]:
        return self.published("raw")

    def run(self) -> None:
        uri = self.settings.require_source()
        shown = redact.redact_source(uri)
        self.lake.check()
        attempt = self.lake.new_attempt("raw", self.dates)
        files = {
            "records": [f"{attempt}/raw/records.parquet"],
            "source": [f"{attempt}/raw/source.csv"],
        }
        try:
            with (
                self.lake.writing(files["records"][0]) as parquet,
                self.lake.writing(files["source"][0]) as copy,
                source.fetched(uri, shown) as local,
                open(copy, "w", encoding="utf-8", newline="") as out,
            ):
                info = source.ingest(local, out, parquet, shown)
        except Exception:
            self.lake.remove(attempt)  # nothing was published: leave nothing behind
            raise
        details = {
            "source": shown,
            "layout": info.layout,
            "columns": list(info.columns),
            "encoding": info.encoding,
            "bytes": info.bytes_in,
            "records": info.records,
            "blank_lines": info.blank_lines,
        }
        superseded = [
            self.lake.publish("raw", day, attempt, files, **details) for day in self.dates
        ]
        self.tidy(superseded)
        logger.info(
            "ReadUFOs %s: %d records (%s layout) from %s (%s, %d bytes) into %s",
            _span(self.dates), info.records, info.layout, shown, info.encoding, info.bytes_in,
            self.lake.uri(files["records"][0]),
        )  # fmt: skip


class AggregateUFOsByState(UfoTask, SparkSubmitTask):
    """Sightings per (month, state), the rejected rows and the quality report of each run date.

    Runs ``spark_jobs/aggregate_by_state.py`` once for all of its dates; the master comes from
    SPARK_MASTER (or ``[ufo] spark_master``), other flags from luigi.cfg's ``[spark]``. The job
    writes into a fresh attempt directory; each date is then published with one manifest.
    """

    app = str(SPARK_JOB)
    resources = {"spark_applications": 1}

    @property
    def name(self) -> str:
        return f"AggregateUFOsByState {_span(self.dates)}"

    def requires(self) -> ReadUFOs:
        return self.upstream(ReadUFOs)

    def output(self) -> dict[dt.date, ManifestTarget]:
        return self.published("aggregated")

    @functools.cached_property
    def attempt(self) -> str:
        """This run's attempt directory in the lake (made on first use)."""
        return self.lake.new_attempt("aggregated", self.dates)

    def app_options(self) -> list[str]:
        raw = self.input()
        args = []
        for day in self.dates:
            records = raw[day].files("records")[0]
            args += ["--snapshot", f"{day.isoformat()}={self.lake.spark_uri(records)}"]
        return args + ["--output", self.lake.spark_uri(self.attempt)]

    @property
    def master(self) -> str:
        return self.settings.spark_master

    @property
    def spark_submit(self) -> str:
        from etl import jvmcache  # not at import: ``python -m etl.jvmcache`` imports this module

        configured = luigi.configuration.get_config().get("spark", "spark-submit", None)
        return configured or jvmcache.default_spark_submit()

    @property
    def driver_java_options(self) -> str | None:
        """luigi.cfg's options, and the class archive of ``etl.jvmcache`` when there is one (the
        driver runs here unless the deploy mode is cluster)."""
        from etl import jvmcache

        options = [super().driver_java_options or ""]
        if self.deploy_mode != "cluster":
            options += jvmcache.driver_java_options(self.spark_submit)
        return " ".join(o for o in options if o) or None

    def build_tracking_url(self, logs_output: str) -> str:
        # Luigi shows the Spark UI's address in luigid; say it on the console too.
        logger.info("%s: Spark UI at %s while it runs", self.name, logs_output)
        return logs_output

    def program_args(self) -> list[str]:
        args = super().program_args()
        setpriv = shutil.which("setpriv")
        if setpriv and sys.platform == "linux":
            # If this Luigi process dies (kill -9 included), spark-submit dies with it instead of
            # writing on into an attempt nobody will publish.
            return [setpriv, "--pdeathsig", "KILL", "--", *args]
        return args

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
        started = time.monotonic()
        try:
            super().run()
        except ExternalProgramRunError as err:
            self.lake.remove(self.attempt)  # nothing was published: leave nothing behind
            raise SparkJobError.from_run_error(err) from None
        finally:
            self._keep_spark_output()
        spark_seconds = time.monotonic() - started
        job = json.loads(self.lake.read_text(f"{self.attempt}/_job.json"))
        raw = self.input()
        superseded = []
        for done, day in enumerate(self.dates, start=1):
            result = job["dates"][day.isoformat()]
            files = {
                kind: [f"{self.attempt}/{rel}" for rel in paths]
                for kind, paths in result["files"].items()
            }
            source_info = raw[day].manifest()
            superseded.append(
                self.lake.publish(
                    "aggregated",
                    day,
                    self.attempt,
                    files,
                    quality=result["quality"],
                    layout=result["layout"],
                    source=source_info.get("source", ""),
                    raw_attempt=source_info["attempt"],
                )  # fmt: skip
            )
            self.progress(done, started, "AggregateUFOsByState published")
        self.tidy(superseded)
        for day in self.dates[:3]:
            logger.info(
                "AggregateUFOsByState %s: %s", day, job["dates"][day.isoformat()]["quality"]
            )
        logger.info(
            "AggregateUFOsByState %s: %d date(s) in one Spark run of %.1f s, published in %s",
            _span(self.dates), len(self.dates), spark_seconds, self.lake.uri(self.attempt),
        )  # fmt: skip

    def _keep_spark_output(self) -> None:
        path = logs.spark_log_path(self.task_id)
        if path is not None and self._spark_output:
            names = ("stdout", "stderr")
            path.write_text(
                "".join(f"==== {n} ====\n{t}\n" for n, t in zip(names, self._spark_output))
            )
            logger.info("spark-submit output of %s kept in %s", self.task_id, path)


class SparkJobError(DataError):
    """spark-submit failed; carries the job's own error line and the tail of its output."""

    @classmethod
    def from_run_error(cls, err: ExternalProgramRunError) -> SparkJobError:
        # Never str(err): luigi's message includes the whole environment, secrets and all.
        stderr = err.err or ""
        # PySpark prints the driver's own output on stdout: the job's reason may be on either.
        lines = (err.out or "").splitlines() + stderr.splitlines()
        job_errors = [line for line in lines if line.startswith("error: ")]
        if job_errors:
            return cls(job_errors[-1].removeprefix("error: ") + " Fix the source and run again.")
        tail = "\n".join(stderr.splitlines()[-40:])
        return cls(f"spark-submit failed ({err.message}); last lines of its output:\n{tail}")


class TopTenStates(UfoTask):
    """The top ten states for all time and for each month: ``top10/date=.../top_states.csv``."""

    def requires(self) -> AggregateUFOsByState:
        return self.upstream(AggregateUFOsByState)

    def output(self) -> dict[dt.date, luigi.Target]:
        return {day: self.lake.target(top_rel(day)) for day in self.dates}

    def run(self) -> None:
        started = time.monotonic()
        for done, (day, aggregate) in enumerate(self.input().items(), start=1):
            try:
                top = topten.top_states(
                    topten.counts_by_period(read_aggregate(self.lake, aggregate))
                )
            except DataError as err:
                raise DataError(f"run date {day}: {err}") from None
            self.lake.write_bytes(top_rel(day), topten.write_csv(top))
            self.progress(done, started, "TopTenStates")


class TopStatesToDatabase(UfoTask):
    """The run date's top tens, state counts, quality figures and sample rejects in PostgreSQL.

    Up to ``UFO_REJECT_ROWS`` rejected rows per reason go into ``reject_samples``; the lake's
    ``aggregated/date=D/_MANIFEST.json`` lists the files of every one of them.
    """

    def requires(self) -> dict[str, luigi.Task]:
        return {
            "top": self.upstream(TopTenStates),
            "aggregate": self.upstream(AggregateUFOsByState),
        }

    def output(self) -> dict[dt.date, db.RunLoadedTarget]:
        url = self.settings.require_database_url()
        return {day: db.RunLoadedTarget(url, day) for day in self.dates}

    def _complete(self) -> bool:
        if self.force or self.force_upstream:
            return super()._complete()
        # One query for a batch's dates, not one per date.
        url = self.settings.require_database_url()
        return set(self.dates) <= db.loaded_dates(url, self.dates)

    @classmethod
    def bulk_complete(cls, parameter_tuples):
        """The run dates among ``parameter_tuples`` already loaded: one query for them all."""
        dates = list(parameter_tuples)
        loaded = db.loaded_dates(load_settings().require_database_url(), dates)
        return [d for d in dates if d in loaded]

    #: Dates loaded at once in a batch, each on its own connection and in its own transaction:
    #: reading a date's files in Python overlaps with PostgreSQL writing another's rows.
    load_threads = 3

    def run(self) -> None:
        url = self.settings.require_database_url()
        limit = self.settings.reject_row_limit
        inputs = self.input()
        started = time.monotonic()

        # A batch's dates share most reject files (``rejects/since=S/``): each is parsed once.
        parsed: dict[str, RejectFile] = {}

        def rejects_of(rel: str) -> RejectFile:
            if rel not in parsed:
                parsed[rel] = read_rejects(self.lake.read_text(rel), rel)
            return parsed[rel]

        def load(day: dt.date) -> None:
            loader.load(self.results(day, inputs["aggregate"][day], limit, rejects_of))

        with (
            db.Loader(url) as loader,
            ThreadPoolExecutor(min(self.load_threads, len(self.dates))) as pool,
        ):
            pending = [pool.submit(load, day) for day in self.dates]
            try:
                for done, future in enumerate(as_completed(pending), start=1):
                    future.result()
                    self.progress(done, started, "TopStatesToDatabase loaded")
            except BaseException:
                for future in pending:
                    future.cancel()  # dates not started stay unloaded; started ones finish
                raise
        logger.info(
            "TopStatesToDatabase %s: %d date(s) loaded into %s in %.1f s",
            _span(self.dates), len(self.dates), db.safe_url(url), time.monotonic() - started,
        )  # fmt: skip

    def results(
        self,
        day: dt.date,
        aggregate: ManifestTarget,
        limit: int,
        rejects_of: Callable[[str], RejectFile],
    ) -> db.RunResults:
        """What is loaded for ``day``: read from its published aggregate and its top ten."""
        manifest = aggregate.manifest()
        top = topten.read_top(self.lake.read_bytes(top_rel(day)))
        counts = topten.counts_by_period(read_aggregate(self.lake, aggregate))
        try:
            rejects = reject_sample(
                (rejects_of(rel) for rel in aggregate.files("rejects")),
                limit,
                manifest["quality"]["rejected_by_reason"],
            )
        except DataError as err:
            raise DataError(f"run date {day}: {err}") from None
        return db.RunResults(
            run_date=day,
            source=manifest.get("source", ""),
            layout=manifest.get("layout"),
            quality=manifest["quality"],
            top=top,
            counts=counts,
            rejects=rejects,
        )


def top_rel(day: dt.date) -> str:
    """Where the top-ten file of a run date is in the lake."""
    return f"top10/date={day.isoformat()}/top_states.csv"


def read_aggregate(lake: Lake, aggregate: ManifestTarget) -> pa.Table:
    """The ``month, state, sightings`` rows of a published aggregate."""
    return topten.read_aggregate(lake.read_bytes(rel) for rel in aggregate.files("aggregated"))


@dataclass(frozen=True)
class RejectFile:
    """One reject CSV of the Spark job: the source's column names, and each row's reason and fields."""

    names: tuple[str, ...]
    rows: tuple[tuple[str, tuple[str, ...]], ...]
    # Row index -> its fields as a JSON object. A backfill's dates share their first reject
    # files, and with them most of their sample rows: each row is encoded once.
    _json: dict[int, str] = field(default_factory=dict, compare=False, repr=False)

    def fields_json(self, index: int) -> str:
        """Row ``index``'s fields as a JSON object under the file's names, in their order."""
        found = self._json.get(index)
        if found is None:
            values = self.rows[index][1]
            found = self._json[index] = json.dumps(
                dict(zip(self.names, values)), ensure_ascii=False
            )
        return found


def read_rejects(text: str, where: str = "a reject file") -> RejectFile:
    """Parse one reject CSV (its header: the source's names, then ``reason``)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if not header:
        return RejectFile((), ())  # a file without even a header holds no rows
    names = tuple(header[:-1])
    rows = []
    for number, row in enumerate(reader, start=1):
        *values, reason = row
        if len(values) != len(names):
            raise DataError(
                f"{where}: rejected row {number} has {len(values)} fields under a header of "
                f"{len(names)}: the aggregate's reject files are damaged; run "
                "AggregateUFOsByState again with --force."
            )
        rows.append((reason, tuple(values)))
    return RejectFile(names, tuple(rows))


def reject_sample(
    files: Iterable[RejectFile], limit: int, rejected_by_reason: dict[str, int]
) -> list[tuple[str, int, str]]:
    """The first ``limit`` rejected rows of each reason in ``files`` (a date's reject CSVs, in
    the manifest's order): ``(reason, row_number, fields)``.

    ``row_number`` is the row's 1-based position among all the date's rejects as the files list
    them; ``fields`` is a JSON object of the row under its file's header names, in their order.
    Reading stops once every reason has its rows; the rows found must agree with the quality
    report's ``rejected_by_reason``.
    """
    wanted = {reason: min(limit, n) for reason, n in rejected_by_reason.items() if n}
    kept: list[tuple[str, int, str]] = []
    per_reason: Counter[str] = Counter()
    position = 0
    for file in files if limit else ():
        for index, (reason, _) in enumerate(file.rows):
            position += 1
            if per_reason[reason] < limit:
                per_reason[reason] += 1
                kept.append((reason, position, file.fields_json(index)))
                if per_reason == wanted:
                    return kept
    if limit and per_reason != wanted:
        raise DataError(
            f"the reject files hold {dict(per_reason)} rows to store per reason, the quality "
            f"report's counts call for {wanted}: run AggregateUFOsByState again with --force."
        )
    return kept


def _span(dates: tuple[dt.date, ...]) -> str:
    if len(dates) == 1:
        return dates[0].isoformat()
    return f"{dates[0]}..{dates[-1]} ({len(dates)} dates)"
