"""The UFO sightings pipeline: ``python -m luigi --module etl TopStatesToDatabase --date ...``.

Importing this package registers the tasks and a failure reporter; it touches no network,
Spark or database.
"""

from __future__ import annotations

import sys

import luigi

from etl.errors import UfoError
from etl.tasks import AggregateUFOsByState, ReadUFOs, TopStatesToDatabase, TopTenStates

__all__ = ["ReadUFOs", "AggregateUFOsByState", "TopTenStates", "TopStatesToDatabase"]


def _one_line_reason(task: luigi.Task, exception: BaseException) -> None:
    """Print one line saying what failed and what to do, after Luigi's own traceback."""
    if isinstance(exception, UfoError):
        message = str(exception)
    else:
        message = f"{type(exception).__name__}: {exception}".splitlines()[0]
    print(f"ufo: error: {task.task_id}: {message}", file=sys.stderr, flush=True)


luigi.Task.event_handler(luigi.Event.FAILURE)(_one_line_reason)
luigi.Task.event_handler(luigi.Event.BROKEN_TASK)(_one_line_reason)
