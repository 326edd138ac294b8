"""OpenLineage run events for every task run: START, then COMPLETE or FAIL.

On only when OpenLineage's own settings name an endpoint: ``OPENLINEAGE_URL`` (with
``OPENLINEAGE_ENDPOINT`` and ``OPENLINEAGE_API_KEY``), ``OPENLINEAGE_CONFIG`` (its YAML file,
any transport), or ``OPENLINEAGE__TRANSPORT__*`` variables; ``OPENLINEAGE_DISABLED=true`` turns
it off. Lineage is never a reason for a run to fail or wait: an event that cannot be sent is
logged once, and the process sends no more (a refused connection costs milliseconds; with
``OPENLINEAGE_URL`` an endpoint that does not answer costs at most two tries of
``HTTP_TIMEOUT`` seconds, once per task process).

What the events say (names as OpenLineage's naming conventions give them):

* the job: the task family, in ``OPENLINEAGE_NAMESPACE`` (default ``ufo-pipeline``); the run
  id is a UUIDv7 made when the task run starts; the run's dates are in ``nominalTime`` and, all
  of them for a backfill's batch, in the ``ufo_runDates`` facet; a FAIL carries the
  ``ufo: error:`` line in ``errorMessage``;
* datasets: the lake's outputs by their manifest (``file`` + absolute path, or
  ``s3://bucket`` + key), the top ten by its file, the database's tables as
  ``postgres://host:port`` + ``database.schema.table``, and the source by its URL without
  credentials or query; schema and row-count facets where they are known. One task's outputs
  are the next task's inputs, named the same.
* the Spark application of ``AggregateUFOsByState`` is a run of its own (job
  ``spark_jobs.aggregate_by_state``) whose ``parent`` facet names the task's run; spark-submit
  is given the same parent as ``spark.openlineage.parent*`` settings, so that OpenLineage's
  Spark listener, when a cluster has it, attaches its events to that run too.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import attr
import luigi
import pyarrow as pa

from etl.adapters.database import RunLoadedTarget, normalise_url
from etl.adapters.database.schema import public, ufo_runs
from etl.adapters.manifests import ManifestTarget
from etl.pipeline import ranking
from etl.pipeline.base import UfoTask
from etl.pipeline.targets import AGGREGATED, RAW, TopTenTarget

logger = logging.getLogger("ufo.lineage")

PRODUCER = "urn:ufo-pipeline:etl"
HTTP_TIMEOUT = 5.0
SPARK_JOB = "spark_jobs.aggregate_by_state"
_state: dict[str, object] = {}  # this process's client, and whether sending has failed


def enabled() -> bool:
    if os.environ.get("OPENLINEAGE_DISABLED", "").strip().lower() == "true":
        return False
    return bool(
        os.environ.get("OPENLINEAGE_URL")
        or os.environ.get("OPENLINEAGE_CONFIG")
        or any(name.startswith("OPENLINEAGE__TRANSPORT") for name in os.environ)
    )


def namespace() -> str:
    return os.environ.get("OPENLINEAGE_NAMESPACE", "ufo-pipeline")


def _client():
    if "client" not in _state:
        from openlineage.client import OpenLineageClient
        from openlineage.client.transport.http import HttpConfig, HttpTransport

        if os.environ.get("OPENLINEAGE_URL") and not os.environ.get("OPENLINEAGE_CONFIG"):
            config = {
                "url": os.environ["OPENLINEAGE_URL"],
                "endpoint": os.environ.get("OPENLINEAGE_ENDPOINT", "api/v1/lineage"),
                "timeout": HTTP_TIMEOUT,
                # Two tries at most: the default's five, with back-off, would hold a task ~10 s.
                "retry": {"total": 1, "connect": 1, "read": 1, "backoff_factor": 0.2},
            }
            if key := os.environ.get("OPENLINEAGE_API_KEY"):
                config["auth"] = {"type": "api_key", "apiKey": key}
            _state["client"] = OpenLineageClient(
                transport=HttpTransport(HttpConfig.from_dict(config))
            )
        else:
            _state["client"] = OpenLineageClient()  # OPENLINEAGE_CONFIG or its variables
    return _state["client"]


def _emit(event) -> None:
    if _state.get("failed"):
        return
    try:
        _client().emit(event)
    except Exception as err:  # lineage never fails a run: say it once, then stay quiet
        _state["failed"] = True
        logger.warning(
            "lineage: an OpenLineage event could not be sent (%s); this process sends no more",
            type(err).__name__,
        )


# -- the task events -----------------------------------------------------------------------


def on_start(task: luigi.Task) -> None:
    if _traced(task):
        _safely(_run_event, task, "START")


def on_success(task: luigi.Task) -> None:
    if _traced(task):
        _safely(_run_event, task, "COMPLETE")


def on_failure(task: luigi.Task, exception: BaseException) -> None:
    if _traced(task):
        _safely(_run_event, task, "FAIL", exception)


def _traced(task: luigi.Task) -> bool:
    """The pipeline's own tasks, when lineage is on. Not Luigi's RangeDaily: its inputs are
    every date of the range, which it would check again for each event; its batch tasks
    have their runs."""
    return isinstance(task, UfoTask) and enabled()


def _safely(function, *args) -> None:
    try:
        function(*args)
    except Exception as err:
        logger.warning("lineage: no event for %s (%s: %s)", args[0], type(err).__name__, err)


def run_id(task: luigi.Task) -> str:
    """The id of this task run: made at its start, the same in all of its events."""
    from openlineage.client.uuid import generate_new_uuid

    if getattr(task, "_lineage_run_id", None) is None:
        task._lineage_run_id = str(generate_new_uuid())
    return task._lineage_run_id


def _run_event(task: luigi.Task, state: str, exception: BaseException | None = None) -> None:
    from openlineage.client.event_v2 import Job, Run, RunEvent, RunState
    from openlineage.client.facet_v2 import error_message_run, job_type_job

    done = state == "COMPLETE"
    facets = _date_facets(getattr(task, "dates", ()))
    if exception is not None:
        message = str(exception).splitlines()[0] if str(exception) else type(exception).__name__
        facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
            message=message, programmingLanguage="PYTHON"
        )
    job_facets = {
        "jobType": job_type_job.JobTypeJobFacet(
            processingType="BATCH", integration="LUIGI", jobType="TASK"
        )
    }
    inputs = _source(task) + [_input(d) for d in _datasets(task.input(), done)]
    outputs = [_output(d) for d in _datasets(task.output(), done)]
    _emit(
        RunEvent(
            eventType=getattr(RunState, state),
            eventTime=_now(),
            run=Run(runId=run_id(task), facets=facets),
            job=Job(namespace=namespace(), name=task.task_family, facets=job_facets),
            producer=PRODUCER,
            inputs=inputs,
            outputs=outputs,
        )
    )
    if state != "START":
        task._lineage_run_id = None  # a retry of the same task object is a new run


@contextmanager
def spark_application(task: luigi.Task, reads: list[str], writes: list[str]) -> Iterator[dict]:
    """A run for the Spark application that ``task`` submits (reading and writing the files at
    those URIs), with ``task``'s run as its parent; yields the ``spark.openlineage.*``
    settings that name that parent."""
    if not enabled():
        yield {}
        return
    inputs = [_input(_Dataset(*location(uri), {})) for uri in reads]
    outputs = [_output(_Dataset(*location(uri), {})) for uri in writes]
    from openlineage.client.event_v2 import Job, Run, RunEvent, RunState
    from openlineage.client.facet_v2 import error_message_run, parent_run
    from openlineage.client.uuid import generate_new_uuid

    parent = parent_run.ParentRunFacet(
        run=parent_run.Run(runId=run_id(task)),
        job=parent_run.Job(namespace=namespace(), name=task.task_family),
    )
    child = str(generate_new_uuid())
    facets = {"parent": parent, **_date_facets(getattr(task, "dates", ()))}
    job = Job(namespace=namespace(), name=SPARK_JOB)

    def event(state, extra=None) -> None:
        _safely(lambda _t: _emit(RunEvent(
            eventType=state, eventTime=_now(), run=Run(runId=child, facets={**facets, **(extra or {})}),
            job=job, producer=PRODUCER, inputs=inputs, outputs=outputs,
        )), task)  # fmt: skip

    event(RunState.START)
    try:
        yield {
            "spark.openlineage.parentJobNamespace": namespace(),
            "spark.openlineage.parentJobName": task.task_family,
            "spark.openlineage.parentRunId": run_id(task),
        }
    except BaseException as err:
        error = error_message_run.ErrorMessageRunFacet(
            message=(str(err).splitlines() or [type(err).__name__])[0], programmingLanguage="PYTHON"
        )
        event(RunState.FAIL, {"errorMessage": error})
        raise
    event(RunState.COMPLETE)


# -- datasets -------------------------------------------------------------------------------


@attr.define
class _Dataset:
    namespace: str
    name: str
    facets: dict
    rows: int | None = None


def _datasets(targets, done: bool) -> list[_Dataset]:
    found: dict[tuple[str, str], _Dataset] = {}
    for target in luigi.task.flatten(targets):
        for dataset in _of_target(target, done):
            found.setdefault((dataset.namespace, dataset.name), dataset)
    return list(found.values())


def _of_target(target, done: bool) -> list[_Dataset]:
    if isinstance(target, ManifestTarget):
        space, name = location(target.path)
        columns, rows = _manifest_schema(target, done)
        return [_Dataset(space, name, _schema(columns), rows)]
    if isinstance(target, TopTenTarget):
        return [_Dataset(*location(target.path), _schema(_arrow(ranking.TOP_SCHEMA)))]
    if isinstance(target, RunLoadedTarget):
        url = urlsplit(normalise_url(target.url))
        space = f"postgres://{url.hostname or 'localhost'}:{url.port or 5432}"
        database = url.path.lstrip("/")
        tables = [*public.tables.values(), ufo_runs]
        return [
            _Dataset(
                space,
                f"{database}.public.{t.name}",
                _schema([(c.name, str(c.type)) for c in t.columns]),
            )  # fmt: skip
            for t in tables
        ]
    return []


def _manifest_schema(target: ManifestTarget, done: bool) -> tuple[list, int | None]:
    if target.dataset == AGGREGATED:
        return _arrow(ranking.AGGREGATE_SCHEMA), None
    if target.dataset == RAW and (done or target.exists()):
        manifest = target.manifest()
        return [(c, "string") for c in manifest.get("columns", [])], manifest.get("records")
    return [], None


def _arrow(schema: pa.Schema) -> list[tuple[str, str]]:
    return [(field.name, str(field.type)) for field in schema]


def _schema(columns: list[tuple[str, str]]) -> dict:
    from openlineage.client.facet_v2 import schema_dataset

    if not columns:
        return {}
    fields = [schema_dataset.SchemaDatasetFacetFields(name=n, type=t) for n, t in columns]
    return {"schema": schema_dataset.SchemaDatasetFacet(fields=fields)}


def _input(dataset: _Dataset):
    from openlineage.client.event_v2 import InputDataset

    return InputDataset(namespace=dataset.namespace, name=dataset.name, facets=dataset.facets)


def _output(dataset: _Dataset):
    from openlineage.client.event_v2 import OutputDataset
    from openlineage.client.facet_v2 import output_statistics_output_dataset as stats

    extra = {}
    if dataset.rows is not None:
        extra["outputStatistics"] = stats.OutputStatisticsOutputDatasetFacet(rowCount=dataset.rows)
    return OutputDataset(
        namespace=dataset.namespace, name=dataset.name, facets=dataset.facets, outputFacets=extra
    )


def _source(task: luigi.Task) -> list:
    """The source file, for the task that reads it."""
    if task.task_family != "ReadUFOs":
        return []
    source = task.settings.source
    return [_input(_Dataset(*location(source), {}))] if source else []


def location(uri: str) -> tuple[str, str]:
    """OpenLineage's (namespace, name) of a file or object: no credentials, no query."""
    parts = urlsplit(uri)
    if parts.scheme in ("", "file"):
        return "file", os.path.abspath(parts.path if parts.scheme else uri)
    if parts.scheme in ("s3", "s3a"):
        return f"s3://{parts.hostname}", parts.path.lstrip("/")
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}", parts.path or "/"


# -- run facets -----------------------------------------------------------------------------


def _date_facets(dates: tuple[dt.date, ...]) -> dict:
    from openlineage.client.facet_v2 import nominal_time_run

    if not dates:
        return {}
    start = dt.datetime.combine(dates[0], dt.time(), dt.UTC)
    end = dt.datetime.combine(dates[-1] + dt.timedelta(days=1), dt.time(), dt.UTC)
    return {
        "nominalTime": nominal_time_run.NominalTimeRunFacet(
            nominalStartTime=_iso(start), nominalEndTime=_iso(end)
        ),
        "ufo_runDates": _run_dates_facet()(dates=[d.isoformat() for d in dates]),
    }


@functools.cache
def _run_dates_facet() -> type:
    """The ``ufo_runDates`` run facet: every run date of a task run (a batch has many).
    Made on first use: OpenLineage's client is imported only when lineage is on."""
    from openlineage.client.facet_v2 import RunFacet

    @attr.define
    class RunDatesRunFacet(RunFacet):
        dates: list[str]

        @staticmethod
        def _get_schema() -> str:
            return "urn:ufo-pipeline:facets:RunDatesRunFacet"

    return RunDatesRunFacet


def _now() -> str:
    return _iso(dt.datetime.now(dt.UTC))


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
