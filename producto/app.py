"""The web app: the page at ``/``, the JSON API under ``/api/v1``, and ``/health``.

``create_app(settings)`` builds it; ``app`` (for ``uvicorn producto.app:app``) is built from the
environment on first use, so importing this module needs no configuration and no database.
"""

from __future__ import annotations

import datetime as dt
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

import sqlalchemy as sa
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from producto import queries
from producto.settings import Settings

HERE = Path(__file__).resolve().parent
API = "/api/v1"
PERIOD_PATTERN = r"^(all|[0-9]{4}-(0[1-9]|1[0-2]))$"

# What a user is told about a bad value, by parameter name.
_BAD_VALUE = {
    "period": "period must be 'all' or a month as YYYY-MM (for example 2018-07)",
    "run_date": "run_date must be a date as YYYY-MM-DD (for example 2019-03-29)",
}
# Nothing the page uses comes from anywhere but this app.
_CSP = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
REASONS = {
    "posted": "posted date missing or unreadable",
    "sighting_date": "sighting date missing or unreadable",
    "state": "not a US state or DC",
}


class RunOut(BaseModel):
    """One finished run date and its quality report."""

    run_date: dt.date
    finished_at: dt.datetime
    source: str
    input: int = Field(description="data rows read from the source file")
    header_repeat: int = Field(description="repeated header rows, skipped")
    duplicate: int = Field(description="exact duplicate rows, skipped")
    after_run_date: int = Field(description="reports posted after the run date, not yet counted")
    valid: int = Field(description="reports counted")
    rejected: int = Field(description="reports rejected as unusable")
    rejected_by_reason: dict[str, int]


class RunDetailOut(RunOut):
    periods: list[str] = Field(description="months (YYYY-MM) with sightings, oldest first")


class RunsOut(BaseModel):
    runs: list[RunOut] = Field(description="finished run dates, newest first")


class RankedState(BaseModel):
    rank: int
    state: str
    sightings: int


class TopStatesOut(BaseModel):
    run_date: dt.date
    period: str
    states: list[RankedState] = Field(description="the top ten states, best first")


class StateSightingsOut(BaseModel):
    run_date: dt.date
    period: str
    states: dict[str, int] = Field(description="sightings by state; states with none are absent")


class HealthOut(BaseModel):
    status: str


class ErrorOut(BaseModel):
    detail: str


RunDate = Annotated[dt.date, PathParam(description="a run date, YYYY-MM-DD")]
Period = Annotated[
    str, Query(pattern=PERIOD_PATTERN, description="'all' for all time, or a month as YYYY-MM")
]


def database(request: Request) -> sa.Engine:
    """The app's engine; handlers connect only after their parameters are valid."""
    return request.app.state.engine


Db = Annotated[sa.Engine, Depends(database)]


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app over the database of ``settings`` (from the environment when not given)."""
    settings = settings or Settings.from_env()
    engine = queries.create_engine(settings.database_url)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        engine.dispose()

    app = FastAPI(
        title="producto: UFO sightings by US state",
        version="1.0.0",
        description="Read-only figures of the NUFORC UFO pipeline, by run date.",
        openapi_url=f"{API}/openapi.json",
        docs_url=None,  # Swagger UI and ReDoc load from a CDN: the OpenAPI JSON is enough.
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.engine = engine
    templates = Jinja2Templates(directory=HERE / "templates")
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    def known_run(conn: sa.Connection, run_date: dt.date) -> queries.Run:
        found = queries.run(conn, run_date)
        if found is None:
            raise HTTPException(404, f"no finished run for run date {run_date.isoformat()}")
        return found

    def wants_html(request: Request) -> bool:
        return not request.url.path.startswith((API, "/health"))

    def error_page(request: Request, status: int, message: str) -> Response:
        if wants_html(request):
            return templates.TemplateResponse(
                request, "error.html", {"status": status, "message": message}, status_code=status
            )
        return JSONResponse({"detail": message}, status_code=status)

    @app.exception_handler(RequestValidationError)
    async def bad_value(request: Request, exc: RequestValidationError) -> Response:
        names = [str(err["loc"][-1]) for err in exc.errors() if err.get("loc")]
        message = "; ".join(_BAD_VALUE.get(name, f"{name} is not valid") for name in names)
        return error_page(request, 422, message or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return error_page(request, exc.status_code, str(exc.detail))

    @app.exception_handler(sa.exc.OperationalError)
    async def database_down(request: Request, exc: sa.exc.OperationalError) -> Response:
        return error_page(request, 503, "the product database is not answering; try again later")

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", _CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        return response

    @app.get(
        "/health",
        response_model=HealthOut,
        responses={503: {"model": ErrorOut, "description": "the database does not answer"}},
        tags=["health"],
    )
    def health() -> HealthOut:
        """Ready only when the database answers."""
        try:
            with engine.connect() as conn:
                queries.ping(conn)
        except sa.exc.DBAPIError as err:
            raise HTTPException(503, "the product database is not answering") from err
        return HealthOut(status="ok")

    @app.get(f"{API}/runs", response_model=RunsOut, tags=["runs"])
    def list_runs(db: Db) -> RunsOut:
        """The finished run dates, newest first, each with its quality report."""
        with db.connect() as conn:
            return RunsOut(runs=[RunOut(**vars(r)) for r in queries.runs(conn)])

    not_found = {404: {"model": ErrorOut, "description": "no finished run for that date"}}

    @app.get(
        f"{API}/runs/{{run_date}}", response_model=RunDetailOut, responses=not_found, tags=["runs"]
    )
    def get_run(run_date: RunDate, db: Db) -> RunDetailOut:
        """The quality report of one run date, and the months it has figures for."""
        with db.connect() as conn:
            found = known_run(conn, run_date)
            return RunDetailOut(**vars(found), periods=queries.periods(conn, run_date))

    @app.get(
        f"{API}/runs/{{run_date}}/top-states",
        response_model=TopStatesOut,
        responses=not_found,
        tags=["sightings"],
    )
    def get_top_states(run_date: RunDate, db: Db, period: Period = "all") -> TopStatesOut:
        """The top ten states by sightings for all time or one month (empty for a month with none)."""
        with db.connect() as conn:
            known_run(conn, run_date)
            rows = queries.top_states(conn, run_date, period)
        states = [RankedState(rank=r, state=s, sightings=n) for r, s, n in rows]
        return TopStatesOut(run_date=run_date, period=period, states=states)

    @app.get(
        f"{API}/runs/{{run_date}}/state-sightings",
        response_model=StateSightingsOut,
        responses=not_found,
        tags=["sightings"],
    )
    def get_state_sightings(run_date: RunDate, db: Db, period: Period = "all") -> StateSightingsOut:
        """Every state's sightings for all time or one month (for the map)."""
        with db.connect() as conn:
            known_run(conn, run_date)
            counts = queries.state_sightings(conn, run_date, period)
        return StateSightingsOut(run_date=run_date, period=period, states=counts)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page(
        request: Request,
        db: Db,
        run_date: Annotated[dt.date | None, Query()] = None,
        period: Period = "all",
    ) -> Response:
        with db.connect() as conn:
            all_runs = queries.runs(conn)
            if not all_runs:
                return templates.TemplateResponse(request, "empty.html", {})
            shown = known_run(conn, run_date) if run_date else all_runs[0]
            top = queries.top_states(conn, shown.run_date, period)
            initial = {
                "api": API,
                "runDate": shown.run_date.isoformat(),
                "period": period,
                "periods": queries.periods(conn, shown.run_date),
                "top": [{"rank": r, "state": s, "sightings": n} for r, s, n in top],
                "counts": queries.state_sightings(conn, shown.run_date, period),
            }
        share = shown.rejected / shown.input if shown.input else 0.0
        return templates.TemplateResponse(
            request,
            "index.html",
            {
                "run": shown,
                "runs": all_runs,
                "initial": initial,
                "rejected_share": share,
                "reasons": [
                    (REASONS.get(key, key), n)
                    for key, n in sorted(shown.rejected_by_reason.items(), key=lambda kv: -kv[1])
                ],
            },
        )

    return app


def __getattr__(name: str) -> FastAPI:
    # `uvicorn producto.app:app` builds the app from the environment only when asked for it.
    if name == "app":
        built = create_app()
        globals()["app"] = built
        return built
    raise AttributeError(name)
