"""Prometheus metrics at ``/metrics``: requests by route, and how fresh the product's data is.

``install(app, engine, registry)`` serves ``registry`` (one per app, so that several apps in a
process do not share counters) with

* ``producto_http_requests_total{method, route, status}`` and
  ``producto_http_request_duration_seconds{method, route}``, recorded by ``RequestMetrics``;
  ``route`` is the route's path template (``other`` when no route matched), never the address,
  so that the label has a handful of values;
* the ``ufo_*`` gauges of ``DataFreshness``, read from ``ufo_runs`` at every scrape.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator

import sqlalchemy as sa
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client import generate_latest as exposition
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from producto import queries

# A scrape waits at most this long for the database (Prometheus gives up after 10 s by default).
QUERY_TIMEOUT_MS = 2000
# Methods a client may send are unbounded; any other is counted as ``other``.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "other"

router = APIRouter(include_in_schema=False)


class RequestMetrics:
    """Counts and times every HTTP answer by method, route template and status."""

    def __init__(self, app: ASGIApp, requests: Counter, durations: Histogram) -> None:
        self.app = app
        self.requests = requests
        self.durations = durations

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # An exception that escapes here becomes Starlette's 500 answer, outside this middleware.
        status = 500

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        start = time.perf_counter()
        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            method = scope["method"] if scope["method"] in METHODS else UNMATCHED
            route = route_template(scope)
            self.durations.labels(method, route).observe(time.perf_counter() - start)
            self.requests.labels(method, route, str(status)).inc()


def route_template(scope: Scope) -> str:
    """The path template of the route that answered (``/static/{path}`` for the static files)."""
    route = scope.get("route")
    if route is None and "endpoint" in scope:
        # FastAPI's router notes the endpoint of a matched mount, but not the mount itself.
        mounts = (r for r in scope["app"].routes if isinstance(r, Mount))
        route = next((m for m in mounts if m.app is scope["endpoint"]), None)
    return getattr(route, "path_format", None) or UNMATCHED


def end_of_day(day: dt.date) -> float:
    """Unix seconds at the end of ``day`` in UTC: a run date covers reports posted on it."""
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC).timestamp()


class DataFreshness(Collector):
    """The ``ufo_*`` gauges: the newest loaded run date, its age, finish and rows, the loaded
    run dates, and whether the database answered."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        try:
            with self.engine.connect() as conn:
                found = queries.freshness(conn, QUERY_TIMEOUT_MS)
        except sa.exc.DBAPIError:
            # The answer is the 0 below: a scrape that failed would hide the request metrics too.
            found = None
        yield GaugeMetricFamily(
            "ufo_database_up",
            "1 when the product database answered and holds ufo_runs, else 0",
            value=0 if found is None else 1,
        )
        if found is None:
            return
        yield GaugeMetricFamily("ufo_runs_loaded", "run dates loaded", value=found.runs)
        if found.newest is None:
            return
        newest = found.newest
        end = end_of_day(newest.run_date)
        yield GaugeMetricFamily(
            "ufo_latest_run_date_seconds",
            "the newest loaded run date, as Unix seconds at the end of that day (UTC)",
            value=end,
        )
        yield GaugeMetricFamily(
            "ufo_latest_run_age_seconds",
            "seconds since the end of the newest loaded run date (how old the newest data is)",
            value=time.time() - end,
        )
        yield GaugeMetricFamily(
            "ufo_latest_run_finished_seconds",
            "when the newest run date's run finished, as Unix seconds",
            value=newest.finished_at.timestamp(),
        )
        rows = GaugeMetricFamily(
            "ufo_latest_run_rows",
            "rows of the newest run date, by outcome",
            labels=["outcome"],
        )
        rows.add_metric(["valid"], newest.valid)
        rows.add_metric(["rejected"], newest.rejected)
        yield rows


@router.get("/metrics")
def metrics(request: Request) -> Response:
    """The app's metrics in Prometheus's text format."""
    # A plain ``def``: the database query of DataFreshness runs in the thread pool, not the loop.
    return Response(exposition(request.app.state.metrics), media_type=CONTENT_TYPE_LATEST)


def install(app: FastAPI, engine: sa.Engine, registry: CollectorRegistry) -> None:
    """Serve ``registry`` at ``/metrics``, holding the request metrics and the data's freshness."""
    requests = Counter(
        "producto_http_requests",
        "HTTP requests answered, by method, route template and status",
        ["method", "route", "status"],
        registry=registry,
    )
    durations = Histogram(
        "producto_http_request_duration_seconds",
        "time to answer an HTTP request, by method and route template",
        ["method", "route"],
        registry=registry,
    )
    registry.register(DataFreshness(engine))
    app.state.metrics = registry
    app.include_router(router)
    app.add_middleware(RequestMetrics, requests=requests, durations=durations)
