"""The UFO sightings pipeline: ``python -m luigi --module etl TopStatesToDatabase --date ...``.

Importing this package registers the tasks and the failure and summary reporters; it touches
no network, Spark or database, and reads no clock. It sets logging up only under Luigi's
command line (which leaves logging to it, see luigi.cfg); other programs set it up themselves
(``etl.logs.configure``).
"""

from __future__ import annotations

import sys

import luigi

from etl import logs
from etl.tasks import (
    AggregateUFOsByState,
    ReadUFOs,
    TopStatesToDatabase,
    TopTenStates,
    report_done,
    report_failure,
)

__all__ = ["ReadUFOs", "AggregateUFOsByState", "TopTenStates", "TopStatesToDatabase"]


if sys.argv and sys.argv[0].endswith(("luigi", "luigi/__main__.py")):
    logs.configure()
luigi.Task.event_handler(luigi.Event.FAILURE)(report_failure)
luigi.Task.event_handler(luigi.Event.BROKEN_TASK)(report_failure)
luigi.Task.event_handler(luigi.Event.PROCESSING_TIME)(report_done)
