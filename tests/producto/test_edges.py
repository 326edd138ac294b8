"""producto at its edges: HEAD, values it must refuse, spreadsheet formulas, and paging."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from producto import api, pages
from producto.app import create_app
from producto.settings import Settings
from tests.producto.support import MIXED_REAL, MIXED_SAMPLE

API = "/api/v1"


@pytest.fixture(scope="module")
def mixed(mixed_db) -> TestClient:
    return TestClient(create_app(Settings(mixed_db)))


@pytest.mark.parametrize("path", ["/", f"{API}/runs", f"{API}/runs/{MIXED_REAL}/rejects.csv",
                                  "/health"])  # fmt: skip
def test_head_answers_as_get_without_a_body(mixed, path):
    got, head = mixed.get(path), mixed.head(path)
    assert head.status_code == got.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == got.headers["content-type"]
    assert head.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("path", [f"{API}/runs/{MIXED_REAL}/rejects",
                                  f"{API}/runs/{MIXED_REAL}/rejects.csv"])  # fmt: skip
def test_an_unknown_reason_is_refused_naming_the_reasons(mixed, path):
    response = mixed.get(path, params={"reason": "bogus"})
    assert response.status_code == 422
    assert "reason must be one of columns, posted, sighting_date, state" in response.text
    assert mixed.get(path, params={"reason": "columns"}).status_code == 200


def test_per_capita_is_1_or_0_as_its_message_says(mixed):
    for value in ("yes", "true", "2", ""):
        response = mixed.get("/", params={"per_capita": value})
        assert response.status_code == 422, value
        assert "per_capita must be 1 or 0" in response.text
    assert '"perCapita": true' in mixed.get("/", params={"per_capita": "1"}).text


@pytest.mark.parametrize("value", ["=HYPERLINK(\"http://x\")", "+1", "-2+3", "@SUM(A1)",
                                   "\tx", "\r=1"])  # fmt: skip
def test_a_field_a_spreadsheet_would_run_gets_a_leading_quote(value):
    assert api._inert(value) == "'" + value
    assert api._inert("a=b") == "a=b" and api._inert("") == ""


def test_run_dates_are_paged(mixed):
    everything = mixed.get(f"{API}/runs").json()
    assert everything["total"] == 2 and everything["next"] is None
    first = mixed.get(f"{API}/runs", params={"limit": 1}).json()
    assert [r["run_date"] for r in first["runs"]] == [MIXED_SAMPLE.isoformat()]
    assert (first["total"], first["limit"], first["offset"]) == (2, 1, 0)
    second = mixed.get(first["next"]).json()
    assert [r["run_date"] for r in second["runs"]] == [MIXED_REAL.isoformat()]
    assert second["next"] is None
    for bad in ({"limit": 0}, {"limit": 1001}, {"offset": -1}):
        assert mixed.get(f"{API}/runs", params=bad).status_code == 422


def test_the_page_lists_the_newest_run_dates_and_says_where_the_rest_are(mixed, monkeypatch):
    monkeypatch.setattr(pages, "RUNS_LISTED", 1)
    html = mixed.get("/").text  # opens on the real run, older than the newest (a sample)
    assert f'value="{MIXED_REAL}"' in html and f'value="{MIXED_SAMPLE}"' in html
    monkeypatch.setattr(pages, "RUNS_LISTED", 1)
    html = mixed.get("/", params={"run_date": MIXED_SAMPLE.isoformat()}).text
    assert f'value="{MIXED_REAL}"' not in html
    assert 'id="more-runs"' in html and f"{API}/runs?offset=1" in html


@pytest.mark.parametrize(
    "params", [{"offset": "99999999999999999999"}, {"offset": "-1"}, {"limit": "1001"},
               {"limit": "99999999999999999999"}, {"offset": str(2**63)}],
)  # fmt: skip
def test_numbers_out_of_range_are_422_not_a_database_error(mixed, params):
    response = mixed.get(f"{API}/runs", params=params)
    assert response.status_code == 422, response.text
    name = next(iter(params))
    assert f"{name} must be a whole number from" in response.json()["detail"]


@pytest.mark.parametrize("path", [f"{API}/runs/{MIXED_REAL}/monthly", "/"])
@pytest.mark.parametrize("state", ["ZZ", "XX", "ca"])
def test_a_state_that_is_no_us_state_is_422_as_documented(mixed, path, state):
    response = mixed.get(path, params={"state": state})
    assert response.status_code == 422
    assert "state must be a two-letter US state code such as CA" in response.text
    assert mixed.get(path, params={"state": "CA"}).status_code == 200


def test_the_apis_states_are_the_pipelines():
    from producto.schemas import US_STATE_CODES
    from spark_jobs.layouts import US_STATES

    assert frozenset(US_STATE_CODES) == US_STATES


def test_a_header_cell_a_spreadsheet_would_run_gets_a_leading_quote_too():
    from producto.queries import Reject

    rows = [Reject("columns", 1, {"=HYPERLINK(1)": "=2", "@x": "y", "plain": "+3"})]
    text = api.rejects_csv(rows)
    header, row = text.splitlines()
    assert header == "'=HYPERLINK(1),'@x,plain,reason,row_number"
    assert row == "'=2,y,'+3,columns,1"
