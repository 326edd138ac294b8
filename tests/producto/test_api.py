"""The JSON API and the page, over real PostgreSQL loaded by the real pipeline.

Expected figures come from ``tests.reference`` (plain Python over the same file), never from
the app or the pipeline.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from producto.app import create_app
from producto.settings import Settings
from tests.producto.support import SMALL_NEW, SMALL_OLD
from tests.support import new_database

pytestmark = pytest.mark.integration

API = "/api/v1"


def client_for(url: str) -> TestClient:
    return TestClient(create_app(Settings(url)))


@pytest.fixture(scope="module")
def real(real_run) -> TestClient:
    return client_for(real_run.database_url)


@pytest.fixture(scope="module")
def small(small_db) -> TestClient:
    return client_for(small_db)


# --- figures, against the independent computation -------------------------------------------


def test_runs_lists_the_run_with_its_quality_report(real, real_run, real_expected):
    runs = real.get(f"{API}/runs").json()["runs"]
    assert [r["run_date"] for r in runs] == [real_run.run_date.isoformat()]
    quality = real_expected.quality()
    assert {k: runs[0][k] for k in quality} == quality
    assert runs[0]["finished_at"]


def test_run_detail_lists_every_month_with_sightings(real, real_run, real_expected):
    body = real.get(f"{API}/runs/{real_run.run_date}").json()
    assert body["periods"] == real_expected.months()
    assert body["rejected_by_reason"] == real_expected.quality()["rejected_by_reason"]


def test_top_ten_for_all_time(real, real_run, real_expected):
    body = real.get(f"{API}/runs/{real_run.run_date}/top-states").json()
    assert body["period"] == "all"
    got = [(s["state"], s["sightings"]) for s in body["states"]]
    assert got == real_expected.top_ten()
    assert [s["rank"] for s in body["states"]] == list(range(1, 11))


def test_top_ten_of_every_month(real, real_run, real_expected):
    months = real_expected.months()
    assert len(months) > 100
    for month in months:
        body = real.get(f"{API}/runs/{real_run.run_date}/top-states", params={"period": month})
        got = [(s["state"], s["sightings"]) for s in body.json()["states"]]
        assert got == real_expected.top_ten(month), month


def test_every_state_count_for_all_time_and_some_months(real, real_run, real_expected):
    months = real_expected.months()
    busiest = max(months, key=lambda m: sum(real_expected.totals(m).values()))
    for period, month in (("all", None), (months[0], months[0]), (busiest, busiest)):
        url = f"{API}/runs/{real_run.run_date}/state-sightings"
        got = real.get(url, params={"period": period}).json()["states"]
        assert got == dict(real_expected.totals(month)), period


def test_a_month_without_sightings_is_empty_not_an_error(real, real_run):
    body = real.get(f"{API}/runs/{real_run.run_date}/top-states", params={"period": "1066-10"})
    assert body.status_code == 200
    assert body.json()["states"] == []


def test_page_shows_the_run_its_top_state_and_the_rejected_share(real, real_run, real_expected):
    page = real.get("/")
    assert page.status_code == 200
    html = page.text
    assert real_run.run_date.isoformat() in html
    quality = real_expected.quality()
    assert f"{100 * quality['rejected'] / quality['input']:.1f}%" in html
    assert f"{quality['rejected']:,}" in html
    top_state = real_expected.top_ten()[0][0]
    assert f'"state": "{top_state}"' in html
    assert "default-src 'self'" in page.headers["content-security-policy"]


def test_health_is_ready_when_the_database_answers(real):
    assert real.get("/health").json() == {"status": "ok"}


# --- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        f"{API}/runs/2019-02-30",
        f"{API}/runs/yesterday/top-states",
        f"{API}/runs/2019-03-29'; DROP TABLE top_states;--/top-states",
    ],
)
def test_bad_run_date_is_422_with_a_message(small, path):
    response = small.get(path)
    assert response.status_code == 422
    assert "run_date must be a date as YYYY-MM-DD" in response.json()["detail"]


@pytest.mark.parametrize(
    "period", ["2019-13", "2019-00", "2019-7", "19-07", "ALL", "all' OR '1'='1", "2019-07-01"]
)
def test_bad_period_is_422_with_a_message(small, period):
    for path in (f"{API}/runs/{SMALL_NEW}/top-states", f"{API}/runs/{SMALL_NEW}/state-sightings"):
        response = small.get(path, params={"period": period})
        assert response.status_code == 422, period
        assert "period must be 'all' or a month as YYYY-MM" in response.json()["detail"]


def test_bad_period_on_the_page_is_a_422_page(small):
    response = small.get("/", params={"period": "2019-13"})
    assert response.status_code == 422
    assert "text/html" in response.headers["content-type"]
    assert "period must be" in response.text


@pytest.mark.parametrize("suffix", ["", "/top-states", "/state-sightings"])
def test_unknown_run_date_is_404(small, suffix):
    response = small.get(f"{API}/runs/2001-01-01{suffix}")
    assert response.status_code == 404
    assert response.json() == {"detail": "no finished run for run date 2001-01-01"}
    assert small.get("/", params={"run_date": "2001-01-01"}).status_code == 404


# --- several run dates ------------------------------------------------------------------


def test_runs_are_newest_first_and_each_keeps_its_own_figures(small):
    assert [r["run_date"] for r in small.get(f"{API}/runs").json()["runs"]] == [
        SMALL_NEW.isoformat(),
        SMALL_OLD.isoformat(),
    ]
    for run_date, ca in ((SMALL_OLD, 3), (SMALL_NEW, 4)):
        body = small.get(f"{API}/runs/{run_date}/top-states", params={"period": "2019-07"})
        assert body.json()["states"] == [{"rank": 1, "state": "CA", "sightings": ca}]


def test_page_shows_the_newest_run_unless_asked_for_another(small):
    assert f'Run date <strong id="shown-run-date">{SMALL_NEW}' in small.get("/").text
    older = small.get("/", params={"run_date": SMALL_OLD.isoformat(), "period": "2019-07"})
    assert f'Run date <strong id="shown-run-date">{SMALL_OLD}' in older.text


# --- empty database, read-only role ------------------------------------------------------


def test_empty_database_page_says_no_run_has_finished(database_url):
    client = client_for(database_url)
    page = client.get("/")
    assert page.status_code == 200
    assert "No run has finished yet" in page.text
    assert client.get(f"{API}/runs").json() == {"runs": [], "total": 0, "limit": 100,
                                                "offset": 0, "next": None}  # fmt: skip
    assert client.get(f"{API}/runs/2019-03-29").status_code == 404
    assert client.get("/health").status_code == 200


def test_works_with_a_role_that_may_only_select(postgres, small_db):
    name = small_db.rsplit("/", 1)[1]
    admin = sa.create_engine(small_db, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text("DROP ROLE IF EXISTS producto_ro_test"))
        conn.execute(sa.text("CREATE ROLE producto_ro_test LOGIN"))
        conn.execute(sa.text(f'GRANT CONNECT ON DATABASE "{name}" TO producto_ro_test'))
        conn.execute(sa.text("GRANT USAGE ON SCHEMA public TO producto_ro_test"))
        conn.execute(sa.text("GRANT SELECT ON ALL TABLES IN SCHEMA public TO producto_ro_test"))
    admin.dispose()
    server = small_db.rsplit("/", 1)[0].replace("//postgres@", "//producto_ro_test@")
    client = client_for(f"{server}/{name}")
    for path in ("/", "/health", f"{API}/runs", f"{API}/runs/{SMALL_NEW}/top-states"):
        assert client.get(path).status_code == 200, path


def test_the_apps_sessions_refuse_writes_even_for_a_superuser(postgres):
    from producto import queries

    url = new_database(postgres)
    engine = queries.create_engine(url)
    with pytest.raises(sa.exc.InternalError, match="read-only transaction"):
        with engine.connect() as conn:
            conn.execute(sa.text("CREATE TABLE written (x int)"))
    engine.dispose()


def test_rejects_csv_holds_every_rejected_row_of_the_real_file(real, real_run, real_expected):
    import csv
    import io
    from collections import Counter

    response = real.get(f"{API}/runs/{real_run.run_date}/rejects.csv")
    header, *rows = csv.reader(io.StringIO(response.text, newline=""))
    assert header == ["Date / Time", "City", "State", "Shape", "Duration", "Summary", "Posted",
                      "reason", "row_number"]  # fmt: skip

    # Fields a spreadsheet would run as formulas (= + - @ tab CR first) carry a leading '.
    def shown(value: str) -> str:
        return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value

    expected = Counter((tuple(map(shown, row)), reason) for row, reason in real_expected.rejects)
    assert Counter((tuple(r[:7]), r[7]) for r in rows) == expected
    sample = real.get(f"{API}/runs/{real_run.run_date}/rejects", params={"limit": 3}).json()
    reasons = Counter(r["reason"] for r in sample["rejects"])
    assert all(
        n == min(3, real_expected.quality()["rejected_by_reason"][k]) for k, n in reasons.items()
    )


def test_monthly_series_matches_every_months_total(real, real_run, real_expected):
    body = real.get(f"{API}/runs/{real_run.run_date}/monthly", params={"state": "TX"}).json()
    months = real_expected.months()
    assert body["months"][0]["period"] == months[0] and body["months"][-1]["period"] == months[-1]
    for entry in body["months"]:
        assert entry["sightings"] == real_expected.totals(entry["period"]).get("TX", 0)
