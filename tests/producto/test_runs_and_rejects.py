"""Sources, layouts, monthly series, rejected rows and the headers of every answer.

Over hand-written databases (``mixed_db``: layout column and ``reject_samples`` present;
``small_db``: the tables as the pipeline made them before both), so every expected figure is written
here by hand.
"""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from etl.adapters.database import schema
from producto.app import create_app
from producto.settings import Settings
from tests.producto.support import (
    MIXED_REAL,
    MIXED_SAMPLE,
    SMALL_NEW,
)
from tests.support import new_database

pytestmark = pytest.mark.integration

API = "/api/v1"
# The password and the token's value; the user name and parameter names may be shown.
SECRETS = ("s3cr3t", "abc123")


@pytest.fixture(scope="module")
def mixed(mixed_db) -> TestClient:
    return TestClient(create_app(Settings(mixed_db)))


@pytest.fixture(scope="module")
def small(small_db) -> TestClient:
    return TestClient(create_app(Settings(small_db)))


# --- sources and layouts ------------------------------------------------------------------


def test_runs_show_the_source_without_credentials_and_its_kind(mixed):
    response = mixed.get(f"{API}/runs")
    runs = {r["run_date"]: r for r in response.json()["runs"]}
    real, sample = runs[MIXED_REAL.isoformat()], runs[MIXED_SAMPLE.isoformat()]
    assert real["source"].startswith("https://")
    assert "data.example.org/nuforc/index.csv" in real["source"]
    assert real["source_kind"] == "real data"
    assert real["layout"] == "export"
    assert sample["source"] == "/home/someone/ufo/.run/sample/nuforc_sample_2021-06-30.csv"
    assert sample["source_kind"] == "generated sample"
    assert sample["layout"] is None
    for secret in SECRETS:
        assert secret not in response.text
        assert secret not in mixed.get(f"{API}/runs/{MIXED_REAL}").text


def test_layouts_have_a_readers_name_and_a_declared_one_shows_its_own():
    from producto import sources

    assert sources.layout_label("kaggle") == "Kaggle UFO Sightings layout"
    assert sources.layout_label("reports-db") == "reports-db"  # declared in UFO_LAYOUTS


def test_without_a_layout_column_the_layout_is_null(small):
    body = small.get(f"{API}/runs/{SMALL_NEW}").json()
    assert body["layout"] is None
    assert body["source"] == "hand-written"
    assert body["source_kind"] == "real data"


def test_page_opens_on_the_newest_real_run_not_the_newer_sample(mixed):
    html = mixed.get("/").text
    assert f'Run date <strong id="shown-run-date">{MIXED_REAL}' in html
    assert ">real data</span>" in html
    assert "data.example.org/nuforc/index.csv" in html
    assert "NUFORC site export layout" in html
    assert f"{MIXED_SAMPLE} (generated sample)</option>" in html
    for secret in SECRETS:
        assert secret not in html


def test_page_labels_a_generated_sample_when_asked_for_it(mixed):
    html = mixed.get("/", params={"run_date": MIXED_SAMPLE.isoformat()}).text
    assert f'Run date <strong id="shown-run-date">{MIXED_SAMPLE}' in html
    assert 'id="source-kind">generated sample</span>' in html
    assert 'id="source-layout"' not in html


def test_page_opens_on_the_newest_sample_when_there_is_no_real_data():
    from producto import queries
    from producto.pages import default_run

    def run(day: int, source: str) -> queries.Run:
        return queries.Run(dt.date(2021, 1, day), dt.datetime(2021, 1, day), source,
                           1, 0, 0, 0, 1, 0, {})  # fmt: skip

    samples = [run(3, "/x/nuforc_sample_3.csv"), run(2, "s3://b/nuforc_sample_2.csv")]
    assert default_run(samples).run_date == dt.date(2021, 1, 3)
    assert default_run([*samples, run(1, "/data/index.csv")]).run_date == dt.date(2021, 1, 1)
    # The real run is older than the page the page lists: it is looked for, page by page.
    older = {2: [run(1, "/data/index.csv")]}
    assert default_run(samples, lambda offset: older.get(offset, [])).run_date.day == 1


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        (
            "s3://AKIAEXAMPLE:wJalrXUtnFEMI@bucket/in/x.csv?X-Amz-Signature=f00",
            "s3://bucket/in/x.csv",
        ),
        ("https://u:p@host:8443/a/b.csv.gz?sig=1#frag", "https://host:8443/a/b.csv.gz"),
        ("http://host/plain.csv", "http://host/plain.csv"),
        ("/data/nuforc.csv", "/data/nuforc.csv"),
        ("file:///data/nuforc.csv", "file:///data/nuforc.csv"),
    ],
)
def test_the_local_redaction_rule(uri, shown):
    from producto.sources import _local_redact

    assert _local_redact(uri) == shown


# --- sightings by month ------------------------------------------------------------------


def test_monthly_series_of_the_country_and_of_a_state_fill_empty_months(mixed):
    url = f"{API}/runs/{MIXED_REAL}/monthly"
    months = ["2021-01", "2021-02", "2021-03", "2021-04"]
    for state, counts in ((None, [5, 1, 0, 2]), ("CA", [3, 0, 0, 2]), ("WA", [2, 0, 0, 0]),
                          ("WY", [0, 0, 0, 0])):  # fmt: skip
        body = mixed.get(url, params={"state": state} if state else {}).json()
        assert body["state"] == state
        assert body["months"] == [{"period": p, "sightings": n} for p, n in zip(months, counts)]


def test_monthly_series_refuses_a_bad_state_and_an_unknown_run(mixed):
    for state in ("ca", "CAL", "C1"):
        response = mixed.get(f"{API}/runs/{MIXED_REAL}/monthly", params={"state": state})
        assert response.status_code == 422
        assert "two-letter US state code" in response.json()["detail"]
    assert mixed.get(f"{API}/runs/2001-01-01/monthly").status_code == 404


# --- rejected rows -----------------------------------------------------------------------


def test_rejects_sample_per_reason_in_source_order(mixed):
    url = f"{API}/runs/{MIXED_REAL}/rejects"
    body = mixed.get(url).json()
    assert body["stored"] is True
    got = [(r["reason"], r["row_number"]) for r in body["rejects"]]
    assert got == [("sighting_date", 7), ("state", 4), ("state", 9), ("state", 12)]
    assert body["rejects"][0]["fields"]["Summary"] == "=1+1"
    two = mixed.get(url, params={"limit": 2}).json()["rejects"]
    assert [(r["reason"], r["row_number"]) for r in two] == [
        ("sighting_date", 7), ("state", 4), ("state", 9),
    ]  # fmt: skip
    one = mixed.get(url, params={"reason": "state", "limit": 1}).json()
    assert one["reason"] == "state"
    assert [(r["reason"], r["row_number"]) for r in one["rejects"]] == [("state", 4)]
    assert mixed.get(url, params={"reason": "posted"}).json()["rejects"] == []


def test_rejects_say_how_many_rows_of_each_reason_are_stored(mixed):
    body = mixed.get(f"{API}/runs/{MIXED_REAL}/rejects").json()
    assert body["by_reason"] == {"sighting_date": {"rejected": 1, "stored_rows": 1},
                                 "state": {"rejected": 3, "stored_rows": 3}}  # fmt: skip
    assert body["all_stored"] is True
    one = mixed.get(f"{API}/runs/{MIXED_REAL}/rejects", params={"reason": "state"}).json()
    assert one["by_reason"] == {"state": {"rejected": 3, "stored_rows": 3}}


def test_rejects_of_a_run_without_stored_rows_is_empty_and_says_where_they_are(mixed):
    body = mixed.get(f"{API}/runs/{MIXED_SAMPLE}/rejects").json()
    assert body == {"run_date": MIXED_SAMPLE.isoformat(), "reason": None, "stored": True,
                    "by_reason": {"state": {"rejected": 4, "stored_rows": 0}},
                    "all_stored": False,
                    "complete_rejects": f"aggregated/date={MIXED_SAMPLE}/_MANIFEST.json",
                    "rejects": []}  # fmt: skip


def test_rejects_without_the_table_is_an_empty_list_and_a_header_only_csv(small):
    body = small.get(f"{API}/runs/{SMALL_NEW}/rejects").json()
    assert body["stored"] is False
    assert body["rejects"] == []
    response = small.get(f"{API}/runs/{SMALL_NEW}/rejects.csv")
    assert response.status_code == 200
    assert response.text == "reason,row_number\r\n"
    assert body["by_reason"] == {"sighting_date": {"rejected": 1, "stored_rows": 0},
                                 "state": {"rejected": 1, "stored_rows": 0}}  # fmt: skip
    assert body["all_stored"] is False


def test_rejects_csv_holds_every_row_with_its_fields_as_they_came(mixed):
    response = mixed.get(f"{API}/runs/{MIXED_REAL}/rejects.csv")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert f'filename="rejects-{MIXED_REAL}.csv"' in response.headers["content-disposition"]
    assert response.headers["x-content-type-options"] == "nosniff"
    rows = list(csv.reader(io.StringIO(response.text, newline="")))
    # The stored rows' own columns in their order (the source's), then reason and row number.
    assert rows == [
        ["Date / Time", "City", "State", "Shape", "Duration", "Summary", "Posted", "reason", "row_number"],
        ["1/2/21 20:00", "Toronto", "ON", "Light", "5 min", 'Lights, "three"', "1/3/21", "state", "4"],
        # A field a spreadsheet would run as a formula gets a leading ' (shown as text).
        ["13/45/21", "Austin", "TX", "Orb", "2 min", "'=1+1", "1/8/21", "sighting_date", "7"],
        ["1/5/21", "Paris", "", "Disk", "1 min", "line one\nline two", "1/6/21", "state", "9"],
        ["2/1/21", "Lyon", "FR", "Orb", "", "", "2/2/21", "state", "12"],
    ]  # fmt: skip
    only = mixed.get(f"{API}/runs/{MIXED_REAL}/rejects.csv", params={"reason": "sighting_date"})
    assert [r[-2:] for r in csv.reader(io.StringIO(only.text, newline=""))][1:] == [
        ["sighting_date", "7"]
    ]


def test_csv_columns_are_the_stored_rows_own_keys():
    from producto.api import field_values, reject_columns
    from producto.queries import Reject

    export = {"details": "d", "date": "1/2/2021", "city": "X", "state": "-", "country": "UK"}
    rows = [Reject("state", 1, export), Reject("posted", 2, {"details": "e", "posted_date": ""})]
    columns = reject_columns(rows)
    assert columns == ["details", "date", "city", "state", "country", "posted_date"]
    assert field_values(export, columns) == ["d", "1/2/2021", "X", "-", "UK", ""]


@pytest.mark.parametrize(
    ("params", "message"),
    [({"reason": "State!"}, "reason must be"), ({"limit": 0}, "limit must be"),
     ({"limit": 1001}, "limit must be")],
)  # fmt: skip
def test_rejects_refuse_bad_values(mixed, params, message):
    response = mixed.get(f"{API}/runs/{MIXED_REAL}/rejects", params=params)
    assert response.status_code == 422
    assert message in response.json()["detail"]


def test_rejects_of_an_unknown_run_are_404(mixed):
    for suffix in ("rejects", "rejects.csv"):
        assert mixed.get(f"{API}/runs/2001-01-01/{suffix}").status_code == 404


def test_page_shows_stored_rejects_or_says_why_there_are_none(mixed, small):
    html = mixed.get("/").text
    assert 'id="reject-rows"' in html
    assert html.count('<tr data-reason="state">') == 3
    assert html.count('<tr data-reason="sighting_date">') == 1
    assert f'href="{API}/runs/{MIXED_REAL}/rejects.csv"' in html
    assert 'id="rejects-partial"' not in html
    assert '<td class="num stored-rows">3</td>' in html
    none_stored = mixed.get("/", params={"run_date": str(MIXED_SAMPLE)}).text
    assert 'id="rejects-none"' in none_stored
    # Fewer rows stored than rejected: the page says where all of them are.
    assert 'id="rejects-partial"' in none_stored
    assert f"<code>aggregated/date={MIXED_SAMPLE}/_MANIFEST.json</code>" in none_stored
    missing = small.get("/").text
    assert 'id="rejects-missing"' in missing
    assert "reject_samples" in missing


def test_page_shows_the_rejected_share_of_every_run_date(mixed):
    html = mixed.get("/").text
    # 4 of 20 rows rejected on the real run, 4 of 40 on the sample.
    assert f'<tr data-run-date="{MIXED_REAL}" data-share="0.2000" class="current">' in html
    assert f'<tr data-run-date="{MIXED_SAMPLE}" data-share="0.1000">' in html
    assert "20.0%" in html and "10.0%" in html


# --- run dates, headers on errors --------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["1553817600", "2019-03-29T00:00:00", "20190329", "2019-3-29", "2019-03-29 ", "+2019-03-29"],
)
def test_run_dates_are_accepted_only_as_yyyy_mm_dd(small, value):
    for path in (
        f"{API}/runs/{value}",
        f"{API}/runs/{value}/top-states",
        f"{API}/runs/{value}/rejects",
    ):
        response = small.get(path)
        assert response.status_code == 422, path
        assert "run_date must be a date as YYYY-MM-DD" in response.json()["detail"]
    assert small.get("/", params={"run_date": value}).status_code == 422


@pytest.fixture(scope="module")
def broken(postgres) -> TestClient:
    """A database with a run but without the figure tables: reading them fails (500)."""
    url = new_database(postgres)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        schema.ufo_runs.create(conn)
        conn.execute(sa.text(
            "INSERT INTO ufo_runs VALUES ('2021-01-31', now(), 'x.csv', 1, 0, 0, 0, 1, 0, '{}')"
        ))  # fmt: skip
    engine.dispose()
    return TestClient(create_app(Settings(url)), raise_server_exceptions=False)


@pytest.mark.parametrize("path", ["/", f"{API}/runs/2021-01-31/top-states"])
def test_a_500_carries_the_security_headers_and_no_details(broken, path):
    response = broken.get(path)
    assert response.status_code == 500
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "top_states" not in response.text  # the database's message stays in the log


@pytest.mark.parametrize("path", ["/", "/nowhere", f"{API}/runs/bad", "/static/app.js", "/health"])
def test_every_answer_carries_the_security_headers(small, path):
    response = small.get(path)
    assert "default-src 'self'" in response.headers["content-security-policy"], path
    assert response.headers["x-content-type-options"] == "nosniff", path


def test_a_snapshots_checks_and_who_accepted_them_are_shown(postgres):
    """A run date published after a failed check that a person accepted: the API gives the
    checks as recorded, the page says which failed and who accepted it."""
    import json

    from tests.producto.conftest import create_tables

    report = {
        "run_date": "2021-07-02", "held": False,
        "accepted": {"by": "alice", "why": "NUFORC removed duplicates", "at": "2021-07-02T09:00:00+00:00"},
        "checks": [
            {"name": "valid_drop", "status": "failed", "value": 900, "baseline": 1000,
             "threshold": 0.02, "detail": "900 valid against 1,000 on 2021-07-01"},
            {"name": "input_drop", "status": "passed", "detail": "950 records against 1,000"},
            {"name": "layout", "status": "passed", "detail": "index, as on 2021-07-01"},
        ],
    }  # fmt: skip
    url = new_database(postgres, "producto_checks")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        create_tables(conn, layout=True, rejects=True)
        conn.execute(
            sa.text(
                "INSERT INTO ufo_runs VALUES ('2021-07-02', '2021-07-02T09:00:00+00', 'hand', 950,"
                " 0, 0, 0, 900, 50, CAST(:r AS jsonb), 'index', CAST(:c AS jsonb))"
            ),
            {"r": json.dumps({"state": 50}), "c": json.dumps(report)},
        )
        conn.execute(sa.text("INSERT INTO top_states VALUES ('2021-07-02', 'all', 1, 'CA', 900)"))
        conn.execute(sa.text("INSERT INTO state_sightings VALUES ('2021-07-02', 'all', 'CA', 900)"))
    engine.dispose()
    client = TestClient(create_app(Settings(url)))
    checks = client.get(f"{API}/runs/2021-07-02").json()["checks"]
    assert checks["held"] is False and checks["accepted"]["by"] == "alice"
    assert [(c["name"], c["status"]) for c in checks["checks"]] == [
        ("valid_drop", "failed"), ("input_drop", "passed"), ("layout", "passed"),
    ]  # fmt: skip
    assert checks["checks"][0]["baseline"] == 1000  # the figures as recorded
    listed = client.get(f"{API}/runs").json()["runs"]
    assert listed[0]["checks"]["accepted"]["why"] == "NUFORC removed duplicates"
    html = client.get("/").text
    assert "Checks before publishing: 2 of 3 passed" in html
    assert "<code>valid_drop</code> failed (900 valid against 1,000 on 2021-07-01)" in html
    assert 'accepted by <strong id="checks-accepted-by">alice</strong>' in html


def test_a_date_loaded_before_the_checks_has_none(mixed):
    body = mixed.get(f"{API}/runs/{MIXED_REAL}").json()
    assert body["checks"] is None
    assert 'id="checks"' not in mixed.get("/").text
