"""The UFO sightings pipeline: ``python -m luigi --module etl TopStatesToDatabase --date ...``.

Importing this package registers the tasks and a failure reporter; it touches no network,
Spark or database.
"""

from __future__ import annotations

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


logs.configure()
luigi.Task.event_handler(luigi.Event.FAILURE)(report_failure)
luigi.Task.event_handler(luigi.Event.BROKEN_TASK)(report_failure)
luigi.Task.event_handler(luigi.Event.PROCESSING_TIME)(report_done)
