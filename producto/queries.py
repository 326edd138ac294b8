"""Every SQL statement of the web app. Values are always bound parameters, never text in SQL.

The tables are those the pipeline loads (``etl/adapters/database/schema.py``): ``ufo_runs``,
``top_states``, ``state_sightings`` and ``reject_samples`` (up to ``UFO_REJECT_ROWS`` rejected rows per reason
and run date). Columns and tables the pipeline added later (``ufo_runs.layout``,
``reject_samples``) are looked up in the catalogue first, so the app also works on a database
loaded before they existed (``ufo_runs.checks`` too). The app only reads; its sessions
are read-only as well (see ``create_engine``).
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from producto import deadline


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
    layout: str | None = None
    checks: dict[str, Any] | None = None  # the snapshot's checks report (etl/pipeline/checks.py)


@dataclass(frozen=True)
class Reject:
    """One stored rejected row: its reason, its position among the run's rejects and its fields."""

    reason: str
    row_number: int
    fields: dict[str, Any]  # the source's column names -> values, in the source's order


@dataclass(frozen=True)
class NewestRun:
    """The newest loaded run date, when its run finished, and its valid and rejected rows."""

    run_date: dt.date
    finished_at: dt.datetime
    valid: int
    rejected: int


@dataclass(frozen=True)
class Freshness:
    """How many run dates are loaded, and the newest of them (None while none is)."""

    runs: int
    newest: NewestRun | None


#: The longest a request holds a database connection, waiting for it included: the docs
#: promise an answer within 2 s, 503 when the database does not answer (frozen included).
DEADLINE_SECONDS = 1.5
#: libpq's connect_timeout (its least: 1 counts as 2), for a database that does not answer.
CONNECT_TIMEOUT = 2


def create_engine(url: str) -> sa.Engine:
    """An engine whose sessions refuse writes, whatever the role may do, and whose every wait
    for the database is bounded (``producto.deadline``)."""
    statement_ms = int(DEADLINE_SECONDS * 1000)
    engine = sa.create_engine(
        url,
        pool_size=5,
        pool_timeout=DEADLINE_SECONDS,  # waiting for a free connection of the pool
        connect_args={
            "options": f"-c default_transaction_read_only=on -c statement_timeout={statement_ms}",
            "connect_timeout": CONNECT_TIMEOUT,
            # A vanished host (no answer, not even a reset) is noticed in about 10 s.
            "keepalives": 1,
            "keepalives_idle": 5,
            "keepalives_interval": 2,
            "keepalives_count": 2,
        },
    )
    deadline.bound(engine, DEADLINE_SECONDS)
    return engine


_PING = sa.text("SELECT 1")

# The tables exist only once the pipeline has loaded a run: before that the app shows "no run".
# ``layout`` and ``checks`` are later columns of ufo_runs (their types here); selecting each only
# when it exists keeps older databases working.
_LATER = {"layout": "text", "checks": "jsonb"}
_RUNS_SHAPE = sa.text(
    "SELECT to_regclass('ufo_runs') IS NOT NULL AS has_runs, ARRAY("
    " SELECT column_name::text FROM information_schema.columns"
    " WHERE table_schema = current_schema() AND table_name = 'ufo_runs'"
    " AND column_name IN ('layout', 'checks')) AS later"
)

_RUN_COLUMNS = (
    "run_date, finished_at, source, input, header_repeat, duplicate, after_run_date, valid, "
    "rejected, rejected_by_reason"
)
_RUN_COUNT = sa.text("SELECT count(*) FROM ufo_runs")


@functools.cache
def _run_queries(later: frozenset[str]) -> tuple[sa.TextClause, sa.TextClause]:
    """(the newest runs' query, one run's query) for a ufo_runs with the ``later`` columns."""
    columns = ", ".join(c if c in later else f"NULL::{t} AS {c}" for c, t in _LATER.items())
    select = f"SELECT {_RUN_COLUMNS}, {columns} FROM ufo_runs"
    return (
        sa.text(f"{select} ORDER BY run_date DESC LIMIT :limit OFFSET :offset"),
        sa.text(f"{select} WHERE run_date = :run_date"),
    )


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

_MONTHLY = sa.text(
    "SELECT period, SUM(sightings)::bigint FROM state_sightings "
    "WHERE run_date = :run_date AND period <> 'all' GROUP BY period ORDER BY period"
)

_MONTHLY_STATE = sa.text(
    "SELECT period, sightings FROM state_sightings "
    "WHERE run_date = :run_date AND period <> 'all' AND state = :state ORDER BY period"
)

_HAS_REJECTS = sa.text("SELECT to_regclass('reject_samples') IS NOT NULL")

# Up to :limit rows of each reason (or of the one asked for), in the order of the lake's files.
_REJECT_SAMPLE = sa.text(
    "SELECT reason, row_number, fields FROM ("
    " SELECT reason, row_number, fields,"
    "  row_number() OVER (PARTITION BY reason ORDER BY row_number) AS nth"
    " FROM reject_samples"
    " WHERE run_date = :run_date AND (CAST(:reason AS text) IS NULL OR reason = :reason)"
    ") AS numbered WHERE nth <= :limit ORDER BY reason, row_number"
)

_REJECTS_ALL = sa.text(
    "SELECT reason, row_number, fields FROM reject_samples "
    "WHERE run_date = :run_date AND (CAST(:reason AS text) IS NULL OR reason = :reason) "
    "ORDER BY row_number, reason"
)


_STORED_BY_REASON = sa.text(
    "SELECT reason, count(*) FROM reject_samples WHERE run_date = :run_date GROUP BY reason"
)


# Local to the transaction: the app's other statements keep the server's setting.
_STATEMENT_TIMEOUT = sa.text(
    "SELECT set_config('statement_timeout', CAST(:milliseconds AS text), true)"
)

# The window counts every run date: it is computed before LIMIT keeps the newest row.
_NEWEST_RUN = sa.text(
    "SELECT run_date, finished_at, valid, rejected, count(*) OVER () AS runs "
    "FROM ufo_runs ORDER BY run_date DESC LIMIT 1"
)


def ping(conn: sa.Connection) -> None:
    """Fail unless the database answers."""
    conn.execute(_PING).scalar_one()


def _runs_shape(conn: sa.Connection) -> tuple[bool, frozenset[str]]:
    has_runs, later = conn.execute(_RUNS_SHAPE).one()
    return bool(has_runs), frozenset(later or ())


def runs(conn: sa.Connection, limit: int | None = None, offset: int = 0) -> list[Run]:
    """Finished run dates, newest first: ``limit`` of them (all when None) from ``offset`` on
    (none when nothing has been loaded yet)."""
    has_runs, later = _runs_shape(conn)
    if not has_runs:
        return []
    rows = conn.execute(_run_queries(later)[0], {"limit": limit, "offset": offset})
    return [Run(**row._mapping) for row in rows]


def run_count(conn: sa.Connection) -> int:
    """How many run dates are loaded."""
    return int(conn.execute(_RUN_COUNT).scalar_one()) if _runs_shape(conn)[0] else 0


def run(conn: sa.Connection, run_date: dt.date) -> Run | None:
    """The run of ``run_date``, or None when that date has not been loaded."""
    has_runs, later = _runs_shape(conn)
    if not has_runs:
        return None
    row = conn.execute(_run_queries(later)[1], {"run_date": run_date}).first()
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


def monthly(conn: sa.Connection, run_date: dt.date, state: str | None) -> dict[str, int]:
    """Sightings per month (``YYYY-MM``) of the whole country or one state; months with none absent."""
    if state is None:
        rows = conn.execute(_MONTHLY, {"run_date": run_date})
    else:
        rows = conn.execute(_MONTHLY_STATE, {"run_date": run_date, "state": state})
    return {period: int(n) for period, n in rows}


def has_rejects(conn: sa.Connection) -> bool:
    """True when the loader stores rejected rows in this database (``reject_samples``)."""
    return bool(conn.execute(_HAS_REJECTS).scalar_one())


def reject_sample(
    conn: sa.Connection, run_date: dt.date, reason: str | None, limit: int
) -> list[Reject]:
    """Up to ``limit`` stored rejected rows per reason (or of one reason), in row order."""
    params = {"run_date": run_date, "reason": reason, "limit": limit}
    return [Reject(*row) for row in conn.execute(_REJECT_SAMPLE, params)]


def rejects(conn: sa.Connection, run_date: dt.date, reason: str | None) -> list[Reject]:
    """Every stored rejected row of a run (or of one reason), in row order."""
    params = {"run_date": run_date, "reason": reason}
    return [Reject(*row) for row in conn.execute(_REJECTS_ALL, params)]


def stored_by_reason(conn: sa.Connection, run_date: dt.date) -> dict[str, int]:
    """How many rejected rows of each reason are stored for a run (reasons with none absent)."""
    return {reason: int(n) for reason, n in conn.execute(_STORED_BY_REASON, {"run_date": run_date})}


def freshness(conn: sa.Connection, timeout_ms: int) -> Freshness | None:
    """The loaded run dates' count and the newest run, each statement cancelled after
    ``timeout_ms``; None when ``ufo_runs`` does not exist yet."""
    conn.execute(_STATEMENT_TIMEOUT, {"milliseconds": timeout_ms})
    if not _runs_shape(conn)[0]:
        return None
    row = conn.execute(_NEWEST_RUN).first()
    if row is None:
        return Freshness(runs=0, newest=None)
    return Freshness(runs=row.runs, newest=NewestRun(*row[:4]))
