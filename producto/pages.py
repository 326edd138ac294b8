"""The page at ``/``: one run date's top ten, map, trends and report quality."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates

from producto import queries, sources
from producto.api import (
    API,
    Db,
    field_values,
    known_run,
    monthly_series,
    reject_columns,
    rejects_summary,
)
from producto.schemas import US_STATE_CODES, IsoDate, Period, lake_manifest

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(include_in_schema=False)

REASONS = {
    "columns": "more or fewer fields than the header",
    "posted": "posted date missing or unreadable",
    "sighting_date": "sighting date missing or unreadable",
    "state": "not a US state or DC",
}
# Run dates the page lists, newest first (the API pages through all of them).
RUNS_LISTED = 60
# Rejected rows shown per reason on the page; the CSV has them all.
SAMPLE_ROWS = 5
# The page's form sends an empty state for "no single state".
PageState = Annotated[str, Query(pattern=rf"^({'|'.join(US_STATE_CODES)})?$")]


def default_run(
    listed: list[queries.Run], older: Callable[[int], list[queries.Run]] = lambda _: []
) -> queries.Run:
    """The newest run of real data, or the newest run when every run is a generated sample.

    ``listed``: the newest runs; ``older(offset)`` gives the next page of older ones, read
    only while none is real data."""
    page, offset = listed, 0
    while page:
        real = [r for r in page if not sources.is_generated_sample(r.source)]
        if real:
            return real[0]
        offset += len(page)
        page = older(offset)
    return listed[0]


def describe(run: queries.Run) -> dict:
    """What the page says about a run besides its figures."""
    return {
        "run": run,
        "source": sources.redact(run.source),
        "kind": sources.kind(run.source),
        "sample": sources.is_generated_sample(run.source),
        "layout": sources.layout_label(run.layout),
        "share": run.rejected / run.input if run.input else 0.0,
        "checks": checks_summary(run.checks),
    }


def checks_summary(report: dict | None) -> dict | None:
    """What the page says of a snapshot's checks: how many passed, those that did not (failed
    and accepted, or warned), and who accepted them; None for a date loaded before the checks."""
    if not report:
        return None
    checks = report.get("checks", [])
    return {
        "passed": sum(1 for c in checks if c.get("status") == "passed"),
        "total": len(checks),
        "flagged": [c for c in checks if c.get("status") in ("failed", "warned")],
        "accepted": report.get("accepted"),
    }


@router.get("/", response_class=HTMLResponse)
def page(
    request: Request,
    db: Db,
    run_date: Annotated[IsoDate | None, Query()] = None,
    period: Period = "all",
    per_capita: Annotated[str, Query(pattern=r"^[01]$")] = "0",
    state: PageState = "",
) -> Response:
    """The page of one run date (by default the newest run of real data)."""
    chosen = state or None
    with db.connect() as conn:
        all_runs = queries.runs(conn, RUNS_LISTED)
        if not all_runs:
            return templates.TemplateResponse(request, "empty.html", {})
        shown = (
            known_run(conn, run_date)
            if run_date
            else default_run(all_runs, lambda offset: queries.runs(conn, RUNS_LISTED, offset))
        )
        total_runs = queries.run_count(conn)
        if shown not in all_runs:
            all_runs = sorted([*all_runs, shown], key=lambda r: r.run_date, reverse=True)
        top = queries.top_states(conn, shown.run_date, period)
        stored = queries.has_rejects(conn)
        sample = queries.reject_sample(conn, shown.run_date, None, SAMPLE_ROWS) if stored else []
        by_reason = rejects_summary(conn, shown, None, stored)
        initial = {
            "api": API,
            "runDate": shown.run_date.isoformat(),
            "period": period,
            "perCapita": per_capita == "1",
            "state": chosen,
            "periods": queries.periods(conn, shown.run_date),
            "top": [{"rank": r, "state": s, "sightings": n} for r, s, n in top],
            "counts": queries.state_sightings(conn, shown.run_date, period),
            "states": sorted(queries.state_sightings(conn, shown.run_date, "all")),
            "country": [m.model_dump() for m in monthly_series(conn, shown.run_date, None)],
            "stateSeries": (
                [m.model_dump() for m in monthly_series(conn, shown.run_date, chosen)]
                if chosen
                else None
            ),
        }
    columns = reject_columns(sample)
    return templates.TemplateResponse(
        request,
        "index.html",
        {
            **describe(shown),
            "runs": [describe(r) for r in all_runs],
            "more_runs": total_runs - len(all_runs),
            "initial": initial,
            "rejected_share": describe(shown)["share"],
            "checks": checks_summary(shown.checks),
            "reasons": [
                (
                    key,
                    REASONS.get(key, key),
                    n,
                    by_reason[key].stored_rows if key in by_reason else 0,
                )
                for key, n in sorted(shown.rejected_by_reason.items(), key=lambda kv: -kv[1])
            ],
            "rejects_stored": stored,
            "all_stored": all(r.stored_rows >= r.rejected for r in by_reason.values()),
            "stored_total": sum(r.stored_rows for r in by_reason.values()),
            "lake_manifest": lake_manifest(shown.run_date),
            "reject_sample": [(r, field_values(r.fields, columns)) for r in sample],
            "api": API,
            "states": initial["states"],
            "columns": columns,
            "sample_rows": SAMPLE_ROWS,
        },
    )
