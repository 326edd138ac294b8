"""A run date's tasks as luigid's task history keeps them: each task's state, start, time, tries.

luigid (``etl.worker.luigid_server``) records every task it schedules in its ``[task_history]``
database (Luigi's ``tasks``, ``task_parameters`` and ``task_events`` tables): one row per task
it held in memory, with an event for each state it reached. A date's task is each row whose
``date`` parameter is that date, or a batch of dates that holds it (a backfill's
``AggregateUFOsByState(date=A..B)``). Read only, and only when the console is given that
database (``UFO_CONSOLE_LUIGID_DB``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa

from etl.adapters.database.connection import connect_error, drop_reader, reader
from etl.pipeline.rundates import RunDateParameter, RunDates

#: The chain's order, for showing a date's tasks as they run.
CHAIN = ("ReadUFOs", "AggregateUFOsByState", "TopTenStates", "TopStatesToDatabase")
ENDED = ("DONE", "FAILED", "DISABLED")


@dataclass(frozen=True)
class TaskRun:
    """What luigid's history says of one task for one date, over all its tries."""

    name: str
    dates: str  # as the task was given them: the date, or the batch that held it
    state: str  # the last event: PENDING, RUNNING, DONE, FAILED, DISABLED
    started: dt.datetime | None  # the last try's start
    seconds: float | None  # the last try's time, once it ended
    tries: int  # times it was set RUNNING
    host: str | None


def _holds(value: str, day: dt.date) -> bool:
    if value == day.isoformat():
        return True
    try:
        parsed = RunDateParameter().parse(value)
    except (ValueError, TypeError):
        return False
    return isinstance(parsed, RunDates) and day in parsed


def task_runs(url: str, day: dt.date) -> list[TaskRun]:
    """The tasks that ran (or waited) for ``day``, in the chain's order; DatabaseError (what to
    fix) when luigid's database cannot be read."""
    text = day.isoformat()
    # A batch's value is FIRST..LAST or spans of them: only those that may hold the date.
    query = sa.text(
        "SELECT t.id, t.name, t.host, p.value, e.event_name, e.ts "
        "FROM task_parameters p JOIN tasks t ON t.id = p.task_id "
        "LEFT JOIN task_events e ON e.task_id = t.id "
        "WHERE p.name = 'date' AND (p.value = :day OR (p.value LIKE '%..%' "
        "AND p.value <= :day || '~')) ORDER BY e.ts, e.id"
    )
    try:
        with reader(url).connect() as conn:
            rows = conn.execute(query, {"day": text}).all()
    except sa.exc.OperationalError as err:
        drop_reader(url)
        raise connect_error(url, err) from err
    except sa.exc.ProgrammingError:
        return []  # no history yet: luigid makes its tables on its first recorded task
    by_task: dict[tuple[str, str], dict] = {}
    for _id, name, host, value, event, ts in rows:
        if not _holds(value, day):
            continue
        found = by_task.setdefault((name, value), {"events": [], "host": None})
        found["host"] = host or found["host"]
        if event is not None:
            found["events"].append((event, ts))
    runs = []
    for (name, value), found in by_task.items():
        events = found["events"]
        starts = [ts for event, ts in events if event == "RUNNING"]
        state = events[-1][0] if events else "PENDING"
        started = starts[-1] if starts else None
        ended = [ts for event, ts in events if event in ENDED and started and ts >= started]
        seconds = (ended[-1] - started).total_seconds() if ended and started else None
        runs.append(TaskRun(name, value, state, started, seconds, len(starts), found["host"]))
    order = {name: n for n, name in enumerate(CHAIN)}
    return sorted(runs, key=lambda r: (order.get(r.name, len(CHAIN)), r.name, r.dates))
