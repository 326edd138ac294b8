"""The UFO sightings pipeline: ``python -m luigi --module etl TopStatesToDatabase --date ...``.

Importing this package registers the tasks and the failure and summary reporters; it touches
no network, Spark or database, and reads no clock. It sets logging up only under Luigi's
command line (which leaves logging to it, see luigi.cfg); other programs set it up themselves
(``etl.logs.configure``).

The packages, by role (imports run downwards only):

    etl.worker      the long-running service: run requests and the daily schedule
    etl.tools       local tooling: the demo, the local stack, a local PostgreSQL, the sample
                    generator, the Spark driver's class archive
    etl.pipeline    the four tasks, their targets, run dates, spark-submit, rejects, ranking
    etl.adapters    the outside world: the lake and its manifests, the database, the source,
                    how Spark is started
    etl.settings, etl.errors, etl.logs, etl.redact: shared by all of them
"""

from __future__ import annotations

import sys
import warnings

import luigi
from luigi.parameter import UnconsumedParameterWarning

from spark_jobs import arrowpool

arrowpool.use_jemalloc()  # before the tasks allocate: see spark_jobs/arrowpool.py

from etl import logs  # noqa: E402
from etl.pipeline import (  # noqa: E402
    AggregateUFOsByState,
    ReadUFOs,
    TopStatesToDatabase,
    TopTenStates,
    lineage,
    summary,
)
from etl.pipeline.checks import arm_held_exit  # noqa: E402
from etl.pipeline.reporting import (  # noqa: E402
    arm_alerts,
    report_done,
    report_failure,
    report_lost,
    report_start,
    report_success,
)

__all__ = ["ReadUFOs", "AggregateUFOsByState", "TopTenStates", "TopStatesToDatabase"]


if sys.argv and sys.argv[0].endswith(("luigi", "luigi/__main__.py")):
    logs.configure()
    arm_held_exit()  # before the alert and the last line: atexit runs it after them
    arm_alerts()
    summary.install()
# luigi.cfg's [core] rpc_retry_attempts and rpc_retry_wait are read by Luigi's scheduler client,
# not by its [core] config class, which warns about them on every run.
warnings.filterwarnings(
    "ignore",
    message=r"The configuration contains the parameter 'rpc_retry_(attempts|wait)'",
    category=UnconsumedParameterWarning,
)
# RangeDaily's ``param_name`` defaults to None, which Luigi warns about on every backfill.
warnings.filterwarnings(
    "ignore", message=r'Parameter "param_name" with value "None" is not of type string',
    category=UserWarning,
)  # fmt: skip
luigi.Task.event_handler(luigi.Event.START)(report_start)
luigi.Task.event_handler(luigi.Event.FAILURE)(report_failure)
luigi.Task.event_handler(luigi.Event.BROKEN_TASK)(report_failure)
luigi.Task.event_handler(luigi.Event.PROCESS_FAILURE)(report_lost)
luigi.Task.event_handler(luigi.Event.TIMEOUT)(report_lost)
luigi.Task.event_handler(luigi.Event.SUCCESS)(report_success)
luigi.Task.event_handler(luigi.Event.PROCESSING_TIME)(report_done)
luigi.Task.event_handler(luigi.Event.START)(lineage.on_start)
luigi.Task.event_handler(luigi.Event.SUCCESS)(lineage.on_success)
luigi.Task.event_handler(luigi.Event.FAILURE)(lineage.on_failure)
