"""Every SQL statement of the web app. Values are always bound parameters, never text in SQL.

The tables are those the pipeline loads (``etl/db.py``): ``ufo_runs``, ``top_states`` and
``state_sightings``. The app only reads; its sessions are read-only as well (see ``connect``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa


@dataclass(frozen=True)
class Run:
    """One finished run date and its quality report."""

    run_date: dt.date
    finished_at: dt.datetime
    source: str
    input: int
    header_repeat: int
    duplicate: int
    after_run_date: int
    valid: int
    rejected: int
    rejected_by_reason: dict[str, int]


def create_engine(url: str) -> sa.Engine:
    """An engine whose sessions refuse writes, whatever the role may do."""
    return sa.create_engine(
        url,
        pool_pre_ping=True,
        pool_size=5,
        connect_args={"options": "-c default_transaction_read_only=on", "connect_timeout": 5},
    )


_PING = sa.text("SELECT 1")

# The tables exist only once the pipeline has loaded a run: before that the app shows "no run".
_HAS_RUNS_TABLE = sa.text("SELECT to_regclass('ufo_runs') IS NOT NULL")

_RUN_COLUMNS = (
    "run_date, finished_at, source, input, header_repeat, duplicate, after_run_date, valid, "
    "rejected, rejected_by_reason"
)
_RUNS = sa.text(f"SELECT {_RUN_COLUMNS} FROM ufo_runs ORDER BY run_date DESC")
_RUN = sa.text(f"SELECT {_RUN_COLUMNS} FROM ufo_runs WHERE run_date = :run_date")

_PERIODS = sa.text(
    "SELECT DISTINCT period FROM state_sightings "
    "WHERE run_date = :run_date AND period <> 'all' ORDER BY period"
)

_TOP_STATES = sa.text(
    "SELECT rank, state, sightings FROM top_states "
    "WHERE run_date = :run_date AND period = :period ORDER BY rank"
)

_STATE_SIGHTINGS = sa.text(
    "SELECT state, sightings FROM state_sightings "
    "WHERE run_date = :run_date AND period = :period ORDER BY state"
)


def ping(conn: sa.Connection) -> None:
    conn.execute(_PING).scalar_one()


def runs(conn: sa.Connection) -> list[Run]:
    """Every finished run date, newest first (none when nothing has been loaded yet)."""
    if not conn.execute(_HAS_RUNS_TABLE).scalar_one():
        return []
    return [Run(**row._mapping) for row in conn.execute(_RUNS)]


def run(conn: sa.Connection, run_date: dt.date) -> Run | None:
    """The run of ``run_date``, or None when that date has not been loaded."""
    if not conn.execute(_HAS_RUNS_TABLE).scalar_one():
        return None
    row = conn.execute(_RUN, {"run_date": run_date}).first()
    return Run(**row._mapping) if row else None


def periods(conn: sa.Connection, run_date: dt.date) -> list[str]:
    """The months (``YYYY-MM``) with sightings in a run, oldest first."""
    return list(conn.execute(_PERIODS, {"run_date": run_date}).scalars())


def top_states(conn: sa.Connection, run_date: dt.date, period: str) -> list[tuple[int, str, int]]:
    """``(rank, state, sightings)`` of the top ten states of a period, best first."""
    rows = conn.execute(_TOP_STATES, {"run_date": run_date, "period": period})
    return [tuple(row) for row in rows]


def state_sightings(conn: sa.Connection, run_date: dt.date, period: str) -> dict[str, int]:
    """Every state's sightings in a period (states with none are absent)."""
    rows = conn.execute(_STATE_SIGHTINGS, {"run_date": run_date, "period": period})
    return {state: sightings for state, sightings in rows}
