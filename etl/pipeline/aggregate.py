"""AggregateUFOsByState: the Spark job over the raw zone, each run date published at once."""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import time
from urllib.parse import urlsplit

from etl.adapters import spark
from etl.errors import StorageError
from etl.pipeline import lineage
from etl.pipeline.base import UfoTask
from etl.pipeline.read import ReadUFOs
from etl.pipeline.reporting import span
from etl.pipeline.spark_submit import ProjectSparkSubmitTask, SparkJobError
from etl.pipeline.targets import AGGREGATED, AggregateTarget, raw_records
from etl.redact import redact_source
from spark_jobs import AGGREGATE_BY_STATE, layouts

logger = logging.getLogger("ufo")


class AggregateUFOsByState(UfoTask, ProjectSparkSubmitTask):
    """Sightings per (month, state), the rejected rows and the quality report of each run date.

    Runs ``spark_jobs/aggregate_by_state.py`` once for all of its dates. The job writes into a
    fresh attempt directory and lists what it wrote in ``_job.json``; each date is then
    published with one manifest.
    """

    app = str(AGGREGATE_BY_STATE)
    resources = {"spark_applications": 1}
    history_page: str | None = None  # its application's page in the history server, once run

    @property
    def label(self) -> str:
        return f"AggregateUFOsByState {span(self.dates)}"

    @property
    def name(self) -> str:
        """The Spark application's name: the task, its run dates and what it reads, e.g.
        ``AggregateUFOsByState 2019-03-29 from nuforc_index.csv (file)``."""
        try:
            sources = {m.get("source") for m in self.raw_manifests().values()} - {None, ""}
        except StorageError:  # nothing to read yet
            return self.label
        return f"{self.label} from {describe_sources(sorted(sources))}" if sources else self.label

    def requires(self) -> ReadUFOs:
        return self.upstream(ReadUFOs)

    def output(self) -> dict[dt.date, AggregateTarget]:
        return self.per_date(AggregateTarget)

    @functools.cached_property
    def attempt(self) -> str:
        """This run's attempt directory in the lake (made on first use)."""
        return self.manifests.new_attempt(AGGREGATED, self.dates)

    #: At most this many rows through a run (its inputs' records, and about ``COUNTS_PER_DATE``
    #: counts written for each run date), and its driver (a local master's, which also does the
    #: work) works briefly (``etl/adapters/spark.py``). Measured cold: 1M generated records took
    #: 22-23 s with the quick JIT and 24-25 s without; 10M took 92 s and 75 s.
    BRIEF_RUN_ROWS = 2_000_000
    COUNTS_PER_DATE = 20_000  # months × states

    #: The raw manifests while the task runs (read once: a year's run would read each of them
    #: three times); None otherwise, since Luigi reuses task instances within a process.
    _raw: dict[dt.date, dict] | None = None

    def raw_manifests(self) -> dict[dt.date, dict]:
        """Each run date's raw manifest (ReadUFOs')."""
        if self._raw is not None:
            return self._raw
        raw = self.input()
        return {day: raw[day].manifest() for day in self.dates}

    def runs_briefly(self) -> bool:
        try:
            found = self.raw_manifests()
        except StorageError:  # nothing to read yet: the size is unknown
            return False
        counts = {raw_records(m): m.get("records") for m in found.values()}
        if None in counts.values():  # a raw zone from before its records were counted
            return False
        rows = sum(counts.values()) + self.COUNTS_PER_DATE * len(self.dates)
        return rows <= self.BRIEF_RUN_ROWS

    def app_options(self) -> list[str]:
        args, lake = [], self.lake
        for day, manifest in self.raw_manifests().items():
            records = lake.spark_uri(raw_records(manifest))
            args += ["--snapshot", f"{day.isoformat()}={records}"]
        if self.settings.layouts:
            args += ["--layouts", layouts.to_json(self.settings.layouts)]
        args += ["--name", self.name, "--progress", f"{self.settings.progress_seconds:g}"]
        return args + ["--output", self.lake.spark_uri(self.attempt)]

    def run(self) -> None:
        started = time.monotonic()
        self._raw = self.raw_manifests()
        try:
            self._run(started)
        finally:
            self._raw = None

    #: Spark runs of one task run: a second when the first lost a host with blocks the job
    #: cannot compute again (its local checkpoints); Spark itself recovers every other loss.
    SPARK_RUNS = 2

    def _run(self, started: float) -> None:
        reads = [self.lake.uri(raw_records(m)) for m in self.raw_manifests().values()]
        for run in range(1, self.SPARK_RUNS + 1):
            try:
                with lineage.spark_application(self, reads, [self.lake.uri(self.attempt)]) as conf:
                    self.extra_conf = conf
                    self.submit()
                break
            except Exception as err:
                self.lake.remove(self.attempt)  # nothing was published: leave nothing behind
                if (
                    not (isinstance(err, SparkJobError) and err.lost_executor)
                    or run == self.SPARK_RUNS
                ):
                    raise
                logger.warning(
                    "%s: a Spark executor's host was lost with classified rows only it held; "
                    "running the Spark step again, in a fresh attempt (%d of %d)",
                    self.label, run + 1, self.SPARK_RUNS,
                )  # fmt: skip
                del self.attempt  # the next run writes into a new attempt directory
        spark_seconds = time.monotonic() - started
        job = json.loads(self.lake.read_text(f"{self.attempt}/_job.json"))
        self.point_at_history(job)
        self.publish(job, time.monotonic())  # its progress: the publishing's own time
        where = (
            f"on the Spark Connect server {redact_source(self.remote)}" if self.remote else "cold"
        )
        logger.info(
            "%s: %s; one Spark run of %.1f s (%s)", self.label,
            rows_line([job["dates"][d.isoformat()]["quality"] for d in self.dates]),
            spark_seconds, where,
        )  # fmt: skip
        logger.info("%s: published from %s", self.label, self.lake.uri(self.attempt),
                    extra={"console": False})  # fmt: skip

    def point_at_history(self, job: dict) -> None:
        """Once the application has ended its UI is gone: point luigid's tracking URL and the
        ``done:`` line at its page in the history server (UFO_SPARK_HISTORY_URL). A warm run's
        server goes on: its session's page in the server's live UI (the run's statements, their
        steps and jobs), which Spark's history server does not show."""
        application, history = job.get("application"), self.settings.spark_history
        if job.get("session") and job.get("live_ui"):
            self.history_page = spark.session_page(job["live_ui"], job["session"])
        elif application and history and self.settings.spark_events:
            self.history_page = spark.history_page(history, application)
        else:
            return
        if callable(self.set_tracking_url):  # set by Luigi while the task runs
            self.set_tracking_url(self.history_page)
        logger.info("%s: Spark application %s, its page %s", self.label, application,
                    self.history_page, extra={"console": False})  # the done: line says it  # fmt: skip

    def publish(self, job: dict, started: float) -> None:
        """Publish each date's files that the job lists, with its quality report and source
        (progress logged against ``started``, when publishing began)."""
        superseded, manifests, raw = [], self.manifests, self.raw_manifests()
        for done, day in enumerate(self.dates, start=1):
            result = job["dates"][day.isoformat()]
            files = {
                kind: [f"{self.attempt}/{rel}" for rel in paths]
                for kind, paths in result["files"].items()
            }
            source_info = raw[day]
            superseded.append(
                manifests.publish(
                    AGGREGATED,
                    day,
                    self.attempt,
                    files,
                    quality=result["quality"],
                    layout=result["layout"],
                    source=source_info.get("source", ""),
                    raw_attempt=source_info["attempt"],
                )  # fmt: skip
            )
            self.progress(done, started, f"{self.label}: published")
        self.tidy(superseded)


#: How ``make demo`` and the sample generator (etl/tools/sample.py) name the files they make.
SAMPLE_PREFIX = "nuforc_sample_"


def describe_sources(sources: list[str]) -> str:
    """What a run read, for its application's name: ``nuforc_index.csv (file)``, ``... (S3)``,
    ``... (URL)``, ``... (generated sample)``; ``A (file) and 2 more``."""
    if not sources:
        return "no source"
    first = sources[0]
    scheme = urlsplit(first).scheme.lower()
    base = first.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1] or first
    kind = {"s3": "S3", "s3a": "S3", "http": "URL", "https": "URL"}.get(scheme, "file")
    if base.startswith(SAMPLE_PREFIX):
        kind = "generated sample"
    more = f" and {len(sources) - 1} more" if len(sources) > 1 else ""
    return f"{base} ({kind}){more}"


def rows_line(reports: list[dict]) -> str:
    """A run's rows in one line: one date's counts, or a batch's range of them."""
    first = reports[0]
    reasons = ", ".join(f"{n} {r}" for r, n in first["rejected_by_reason"].items() if n)
    line = (
        f"{first['input']:,} rows in, {first['valid']:,} valid, {first['rejected']:,} rejected"
        + (f" ({reasons})" if reasons else "")
    )
    if len(reports) > 1:
        valid = [r["valid"] for r in reports]
        line = f"{len(reports)} dates, {min(valid):,} to {max(valid):,} valid rows a date; first: {line}"
    return line
