"""``/metrics``: requests by route template, and the data's freshness read from real PostgreSQL.

Each test has an app of its own (its own registry), so every count starts at 0. The run dates
and figures are written here by hand; the expected instants are this file's own arithmetic.
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
import threading
import time

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from etl.adapters.database import schema
from producto.app import create_app
from producto.settings import Settings
from tests.producto.support import SMALL_NEW, SMALL_OLD
from tests.support import new_database

pytestmark = pytest.mark.integration

API = "/api/v1"
TOP_STATES = f"{API}/runs/{{run_date}}/top-states"
UNREACHABLE = "postgresql+psycopg2://nobody@127.0.0.1:1/ufo"
RUN_GAUGES = (
    "ufo_latest_run_date_seconds",
    "ufo_latest_run_age_seconds",
    "ufo_latest_run_finished_seconds",
    "ufo_latest_run_rows",
    "ufo_runs_loaded",
)

# (run_date, finished_at, valid, rejected), inserted out of date order.
RUNS = [
    (dt.date(2021, 5, 31), "2021-06-01T06:10:00+00:00", 120, 7),
    (dt.date(2021, 6, 30), "2021-06-30T23:45:30-04:00", 131, 9),
    (dt.date(2021, 4, 30), "2021-05-02T09:00:00+02:00", 100, 3),
]

Samples = dict[tuple[str, frozenset], float]


def client_for(url: str) -> TestClient:
    return TestClient(create_app(Settings(url)), raise_server_exceptions=False)


def scrape(client: TestClient) -> Samples:
    """Every sample of ``/metrics``, by name and labels."""
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def labelled(samples: Samples, name: str) -> dict[frozenset, float]:
    return {labels: v for (n, labels), v in samples.items() if n == name}


def end_of_day_utc(day: dt.date) -> int:
    """Unix seconds of the midnight (UTC) after ``day``."""
    return calendar.timegm((day + dt.timedelta(days=1)).timetuple())


def with_ufo_runs(postgres, runs: list[tuple[dt.date, str, int, int]]) -> str:
    """A new database with the loader's ``ufo_runs`` holding ``runs`` (and no other table)."""
    url = new_database(postgres)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        schema.ufo_runs.create(conn)
        rows = [{"d": d, "finished": f, "input": v + r, "valid": v, "rejected": r,
                 "reasons": json.dumps({"state": r})} for d, f, v, r in runs]  # fmt: skip
        if rows:
            conn.execute(
                sa.text(
                    "INSERT INTO ufo_runs (run_date, finished_at, source, input, header_repeat,"
                    " duplicate, after_run_date, valid, rejected, rejected_by_reason, layout)"
                    " VALUES (:d, :finished, 'hand-written', :input, 0, 0, 0, :valid, :rejected,"
                    " CAST(:reasons AS jsonb), 'index')"
                ),
                rows,
            )
    engine.dispose()
    return url


# --- requests ---------------------------------------------------------------------------------


def test_requests_are_counted_by_route_template_never_by_address(small_db):
    client = client_for(small_db)
    for day in (SMALL_OLD, SMALL_NEW):
        assert client.get(TOP_STATES.format(run_date=day)).status_code == 200
    samples = scrape(client)
    routes = {dict(labels)["route"] for labels in labelled(samples, "producto_http_requests_total")}
    assert routes == {TOP_STATES}
    ok = {"method": "GET", "route": TOP_STATES}
    assert value(samples, "producto_http_requests_total", **ok, status="200") == 2
    assert value(samples, "producto_http_request_duration_seconds_count", **ok) == 2
    assert value(samples, "producto_http_request_duration_seconds_sum", **ok) > 0

    unknown = dt.date(2020, 5, 31)
    assert client.get(TOP_STATES.format(run_date=unknown)).status_code == 404
    assert client.get("/nowhere").status_code == 404
    samples = scrape(client)
    assert value(samples, "producto_http_requests_total", **ok, status="200") == 2
    assert value(samples, "producto_http_requests_total", **ok, status="404") == 1
    assert value(samples, "producto_http_request_duration_seconds_count", **ok) == 3
    other = {"method": "GET", "route": "other", "status": "404"}
    assert value(samples, "producto_http_requests_total", **other) == 1
    # The first scrape is counted by the second, under its own route.
    scrapes = {"method": "GET", "route": "/metrics", "status": "200"}
    assert value(samples, "producto_http_requests_total", **scrapes) == 1
    assert not [(n, labels) for n, labels in samples if any("2020-" in v for _, v in labels)]


def test_a_500_is_counted_with_its_status(postgres):
    # ufo_runs without the figure tables: reading the top states fails.
    client = client_for(with_ufo_runs(postgres, RUNS[:1]))
    assert client.get(TOP_STATES.format(run_date=RUNS[0][0])).status_code == 500
    samples = scrape(client)
    failed = {"method": "GET", "route": TOP_STATES, "status": "500"}
    assert value(samples, "producto_http_requests_total", **failed) == 1


def test_static_files_count_under_their_mount():
    client = client_for(UNREACHABLE)
    assert client.get("/static/app.js").status_code == 200
    samples = scrape(client)
    static = {"method": "GET", "route": "/static/{path}", "status": "200"}
    assert value(samples, "producto_http_requests_total", **static) == 1


# --- the data's freshness -------------------------------------------------------------------


def test_freshness_gauges_are_those_of_the_newest_loaded_run(postgres):
    client = client_for(with_ufo_runs(postgres, RUNS))
    newest_date, finished, valid, rejected = max(RUNS)
    end = end_of_day_utc(newest_date)
    before = time.time()
    samples = scrape(client)
    after = time.time()

    assert value(samples, "ufo_database_up") == 1
    assert value(samples, "ufo_runs_loaded") == len(RUNS)
    assert value(samples, "ufo_latest_run_date_seconds") == end
    assert value(samples, "ufo_latest_run_finished_seconds") == pytest.approx(
        dt.datetime.fromisoformat(finished).timestamp()
    )
    assert value(samples, "ufo_latest_run_rows", outcome="valid") == valid
    assert value(samples, "ufo_latest_run_rows", outcome="rejected") == rejected
    age = value(samples, "ufo_latest_run_age_seconds")
    assert before - end - 1 <= age <= after - end + 1


def test_the_gauges_agree_with_the_database_itself(postgres):
    url = with_ufo_runs(postgres, RUNS)
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        loaded, end, finished = conn.execute(
            sa.text(
                "SELECT count(*) OVER (),"
                " extract(epoch FROM (run_date + 1)::timestamp AT TIME ZONE 'UTC'),"
                " extract(epoch FROM finished_at)"
                " FROM ufo_runs ORDER BY run_date DESC LIMIT 1"
            )
        ).one()
    engine.dispose()
    samples = scrape(client_for(url))
    assert value(samples, "ufo_runs_loaded") == loaded
    assert value(samples, "ufo_latest_run_date_seconds") == float(end)
    assert value(samples, "ufo_latest_run_finished_seconds") == pytest.approx(float(finished))


def test_an_empty_ufo_runs_is_up_with_no_run_loaded(postgres):
    samples = scrape(client_for(with_ufo_runs(postgres, [])))
    assert value(samples, "ufo_database_up") == 1
    assert value(samples, "ufo_runs_loaded") == 0
    assert not [n for n, _ in samples if n.startswith("ufo_latest_")]


@pytest.mark.parametrize("where", ["no ufo_runs table", "unreachable"])
def test_without_ufo_runs_or_a_database_the_scrape_answers_down(database_url, where):
    client = client_for(database_url if where == "no ufo_runs table" else UNREACHABLE)
    start = time.monotonic()
    samples = scrape(client)
    assert time.monotonic() - start < 5
    assert value(samples, "ufo_database_up") == 0
    assert not [n for n, _ in samples if n.startswith(RUN_GAUGES)]


def test_a_locked_ufo_runs_times_out_and_answers_down(postgres):
    # The pipeline's load holds such a lock on a table it replaces; a scrape must not wait on it.
    url = with_ufo_runs(postgres, RUNS)
    client = client_for(url)
    engine = sa.create_engine(url)
    locked, release = threading.Event(), threading.Event()

    def hold_lock() -> None:
        with engine.begin() as conn:
            conn.execute(sa.text("LOCK TABLE ufo_runs IN ACCESS EXCLUSIVE MODE"))
            locked.set()
            release.wait(30)

    holder = threading.Thread(target=hold_lock)
    holder.start()
    try:
        assert locked.wait(10)
        start = time.monotonic()
        samples = scrape(client)
        assert time.monotonic() - start < 5
    finally:
        release.set()
        holder.join()
        engine.dispose()
    assert value(samples, "ufo_database_up") == 0
    assert not [n for n, _ in samples if n.startswith(RUN_GAUGES)]
    assert value(scrape(client), "ufo_database_up") == 1  # the lock is gone


# --- the endpoint ---------------------------------------------------------------------------


def test_metrics_is_prometheus_text_with_the_security_headers_and_not_in_the_api_schema():
    client = client_for(UNREACHABLE)
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "# TYPE ufo_database_up gauge" in response.text
    head = client.head("/metrics")
    assert (head.status_code, head.content) == (200, b"")
    spec = client.get(f"{API}/openapi.json").json()
    assert "/metrics" not in spec["paths"]
    assert not [p for p in spec["paths"] if "metrics" in p]


def test_two_apps_in_one_process_keep_their_own_counts():
    first, second = client_for(UNREACHABLE), client_for(UNREACHABLE)
    first.get("/nowhere")
    other = {"method": "GET", "route": "other", "status": "404"}
    assert value(scrape(first), "producto_http_requests_total", **other) == 1
    assert value(scrape(second), "producto_http_requests_total", **other) is None
