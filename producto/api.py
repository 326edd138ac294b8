"""The JSON API under ``/api/v1`` (and the CSV of rejected rows), plus ``/health``."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response

from producto import queries
from producto.schemas import (
    ErrorOut,
    HealthOut,
    Limit,
    MonthCount,
    MonthlyOut,
    Offset,
    Period,
    RankedState,
    Reason,
    ReasonRowsOut,
    RejectOut,
    RejectsOut,
    RunDate,
    RunDetailOut,
    RunOut,
    RunsLimit,
    RunsOut,
    StateCode,
    StateSightingsOut,
    TopStatesOut,
    lake_manifest,
)

API = "/api/v1"


def database(request: Request) -> sa.Engine:
    """The app's engine; handlers connect only after their parameters are valid."""
    return request.app.state.engine


Db = Annotated[sa.Engine, Depends(database)]

NOT_FOUND = {404: {"model": ErrorOut, "description": "no finished run for that date"}}

health_router = APIRouter(tags=["health"])
router = APIRouter(prefix=API, responses=NOT_FOUND)


def known_run(conn: sa.Connection, run_date: dt.date) -> queries.Run:
    """The run of ``run_date``; 404 when that date was never loaded."""
    found = queries.run(conn, run_date)
    if found is None:
        raise HTTPException(404, f"no finished run for run date {run_date.isoformat()}")
    return found


def month_range(first: str, last: str) -> list[str]:
    """Every month ``YYYY-MM`` from ``first`` to ``last``, both included."""
    year, month = map(int, first.split("-"))
    end = tuple(map(int, last.split("-")))
    out = []
    while (year, month) <= end:
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def reject_columns(rows: list[queries.Reject]) -> list[str]:
    """The column names of stored rejected rows: their objects' keys, in order (the source's
    columns, whichever layout it had)."""
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(map(str, row.fields)))
    return list(names)


def field_values(fields: dict[str, Any], columns: list[str]) -> list[str]:
    """A rejected row's fields under ``columns`` ("" for a column its layout does not have)."""
    values = [fields.get(name) for name in columns]
    return ["" if v is None else str(v) for v in values]


def rejects_summary(
    conn: sa.Connection, run: queries.Run, reason: str | None, stored: bool
) -> dict[str, ReasonRowsOut]:
    """Rows rejected and rows stored per reason of a run (or of one reason)."""
    counts = queries.stored_by_reason(conn, run.run_date) if stored else {}
    reasons = sorted({r for r, n in run.rejected_by_reason.items() if n} | set(counts))
    return {
        r: ReasonRowsOut(rejected=run.rejected_by_reason.get(r, 0), stored_rows=counts.get(r, 0))
        for r in reasons
        if reason is None or r == reason
    }


#: A cell a spreadsheet would run as a formula starts with one of these (OWASP, "CSV injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _inert(value: str) -> str:
    """A field as a spreadsheet shows it as text: a leading ``'`` before a formula's first sign."""
    return f"'{value}" if value.startswith(_FORMULA_START) else value


def rejects_csv(rows: list[queries.Reject]) -> str:
    """Rejected rows as CSV: the source's columns, then ``reason`` and ``row_number``; every
    cell from the source (column names too: a layout declares them) inert in a spreadsheet."""
    columns = reject_columns(rows)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([*map(_inert, columns), "reason", "row_number"])
    for row in rows:
        values = [_inert(v) for v in field_values(row.fields, columns)]
        writer.writerow([*values, row.reason, row.row_number])
    return out.getvalue()


@health_router.get(
    "/health",
    response_model=HealthOut,
    responses={503: {"model": ErrorOut, "description": "the database does not answer"}},
)
def health(db: Db) -> HealthOut:
    """Ready only when the database answers."""
    try:
        with db.connect() as conn:
            queries.ping(conn)
    except sa.exc.DBAPIError as err:
        raise HTTPException(503, "the product database is not answering") from err
    return HealthOut(status="ok")


@router.get("/runs", response_model=RunsOut, tags=["runs"])
def list_runs(db: Db, limit: RunsLimit = 100, offset: Offset = 0) -> RunsOut:
    """The finished run dates, newest first, each with its quality report: ``limit`` of them
    from ``offset`` on; ``next`` is the next page's address."""
    with db.connect() as conn:
        found = queries.runs(conn, limit, offset)
        total = queries.run_count(conn)
    following = offset + limit < total
    return RunsOut(
        runs=[RunOut.of(r) for r in found],
        total=total,
        limit=limit,
        offset=offset,
        next=f"{API}/runs?limit={limit}&offset={offset + limit}" if following else None,
    )


@router.get("/runs/{run_date}", response_model=RunDetailOut, tags=["runs"])
def get_run(run_date: RunDate, db: Db) -> RunDetailOut:
    """The quality report of one run date, and the months it has figures for."""
    with db.connect() as conn:
        found = known_run(conn, run_date)
        periods = queries.periods(conn, run_date)
    return RunDetailOut(**RunOut.of(found).model_dump(), periods=periods)


@router.get("/runs/{run_date}/top-states", response_model=TopStatesOut, tags=["sightings"])
def get_top_states(run_date: RunDate, db: Db, period: Period = "all") -> TopStatesOut:
    """The top ten states by sightings for all time or one month (empty for a month with none)."""
    with db.connect() as conn:
        known_run(conn, run_date)
        rows = queries.top_states(conn, run_date, period)
    states = [RankedState(rank=r, state=s, sightings=n) for r, s, n in rows]
    return TopStatesOut(run_date=run_date, period=period, states=states)


@router.get(
    "/runs/{run_date}/state-sightings", response_model=StateSightingsOut, tags=["sightings"]
)
def get_state_sightings(run_date: RunDate, db: Db, period: Period = "all") -> StateSightingsOut:
    """Every state's sightings for all time or one month (for the map)."""
    with db.connect() as conn:
        known_run(conn, run_date)
        counts = queries.state_sightings(conn, run_date, period)
    return StateSightingsOut(run_date=run_date, period=period, states=counts)


def monthly_series(conn: sa.Connection, run_date: dt.date, state: str | None) -> list[MonthCount]:
    """Sightings per month of the country or a state over every month of the run."""
    periods = queries.periods(conn, run_date)
    if not periods:
        return []
    counts = queries.monthly(conn, run_date, state)
    return [
        MonthCount(period=p, sightings=counts.get(p, 0))
        for p in month_range(periods[0], periods[-1])
    ]


@router.get("/runs/{run_date}/monthly", response_model=MonthlyOut, tags=["sightings"])
def get_monthly(run_date: RunDate, db: Db, state: StateCode = None) -> MonthlyOut:
    """Sightings per month over time, of the whole country or of one state (a line chart)."""
    with db.connect() as conn:
        known_run(conn, run_date)
        months = monthly_series(conn, run_date, state)
    return MonthlyOut(run_date=run_date, state=state, months=months)


@router.get("/runs/{run_date}/rejects", response_model=RejectsOut, tags=["quality"])
def get_rejects(run_date: RunDate, db: Db, reason: Reason = None, limit: Limit = 10) -> RejectsOut:
    """Sample rejected rows of a run, up to ``limit`` per reason, and how many of each reason the
    database holds (at most the loader's ``UFO_REJECT_ROWS``; the lake has them all)."""
    with db.connect() as conn:
        found = known_run(conn, run_date)
        stored = queries.has_rejects(conn)
        rows = queries.reject_sample(conn, run_date, reason, limit) if stored else []
        by_reason = rejects_summary(conn, found, reason, stored)
    return RejectsOut(
        run_date=run_date,
        reason=reason,
        stored=stored,
        by_reason=by_reason,
        all_stored=all(r.stored_rows >= r.rejected for r in by_reason.values()),
        complete_rejects=lake_manifest(run_date),
        rejects=[RejectOut(**vars(r)) for r in rows],
    )


@router.get(
    "/runs/{run_date}/rejects.csv",
    tags=["quality"],
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "every stored rejected row"}},
)
def get_rejects_csv(run_date: RunDate, db: Db, reason: Reason = None) -> Response:
    """Every stored rejected row of a run as CSV: the source's columns, then ``reason`` and
    ``row_number`` (only the header while none are stored)."""
    with db.connect() as conn:
        known_run(conn, run_date)
        rows = queries.rejects(conn, run_date, reason) if queries.has_rejects(conn) else []
    name = f"rejects-{run_date.isoformat()}{'-' + reason if reason else ''}.csv"
    return Response(
        rejects_csv(rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
