"""The rejected rows the loader stores in ``reject_samples``, checked against the reference.

The real run (default ``UFO_REJECT_ROWS``) and loads of its lake into new databases with small
limits: a load needs no Spark once the aggregate is published.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from tests.pipeline.support import check_against_reference, stored_rejects
from tests.support import new_database, pipeline_env, run_luigi

pytestmark = [pytest.mark.integration, pytest.mark.spark, pytest.mark.shared_data]

INDEX_COLUMNS = ["Date / Time", "City", "State", "Shape", "Duration", "Summary", "Posted"]


def lake_rejects(run) -> list[list[str]]:
    """The run date's rejected rows as the lake's files list them (header rows left out)."""
    manifest = json.loads(
        (run.storage / f"aggregated/date={run.run_date}/_MANIFEST.json").read_text()
    )
    rows = []
    for rel in manifest["files"]["rejects"]:
        with open(run.storage / rel, encoding="utf-8", newline="") as handle:
            rows += list(csv.reader(handle))[1:]
    return rows


def load(run, url: str, *flags: str, **env):
    result = run_luigi(
        "TopStatesToDatabase", "--date", run.run_date.isoformat(), "--local-scheduler", *flags,
        env=pipeline_env(str(run.storage), url, str(run.source), **env),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    return result


def test_the_real_run_stores_the_references_rejects_up_to_the_default(real_run, real_expected):
    stored = stored_rejects(real_run.database_url, real_run.run_date)
    check_against_reference(stored, real_expected, 1000, INDEX_COLUMNS)
    # 261 sighting_date (all of them) and 1,000 of the 13,533 state rejects (SOURCE.md's figures).
    assert len(stored) == 261 + 1000
    # row_number: the row's position among the date's rejects as the lake's files list them.
    listed = lake_rejects(real_run)
    assert len(listed) == real_expected.quality()["rejected"]
    for reason, number, fields in stored:
        assert listed[number - 1] == [
            *fields.values(),
            "",
            reason,
        ]  # no _record: no columns rejects


def test_a_small_limit_replaces_and_zero_stores_none(real_run, real_expected, postgres):
    from producto.app import create_app
    from producto.settings import Settings

    url = new_database(postgres)
    day = real_run.run_date
    load(real_run, url, UFO_REJECT_ROWS="7")
    stored = stored_rejects(url, day)
    check_against_reference(stored, real_expected, 7, INDEX_COLUMNS)

    # The API returns them, says how many of each reason it holds and where the rest are.
    client = TestClient(create_app(Settings(url)))
    body = client.get(f"/api/v1/runs/{day}/rejects", params={"limit": 1000}).json()
    assert [(r["reason"], r["row_number"], r["fields"]) for r in body["rejects"]] == sorted(
        stored, key=lambda r: (r[0], r[1])
    )
    reasons = real_expected.quality()["rejected_by_reason"]
    assert body["by_reason"] == {
        r: {"rejected": n, "stored_rows": min(7, n)} for r, n in reasons.items() if n
    }
    assert body["all_stored"] is False
    assert body["complete_rejects"] == f"aggregated/date={day}/_MANIFEST.json"
    csv_rows = list(
        csv.reader(io.StringIO(client.get(f"/api/v1/runs/{day}/rejects.csv").text, newline=""))
    )
    assert csv_rows[0] == [*INDEX_COLUMNS, "reason", "row_number"]
    assert Counter((tuple(r[:7]), r[7]) for r in csv_rows[1:]) <= Counter(real_expected.rejects)
    assert len(csv_rows) - 1 == len(stored)
    assert 'id="rejects-partial"' in client.get("/").text

    # A rerun of the date replaces its rows: fewer, then none.
    load(real_run, url, "--force", UFO_REJECT_ROWS="3")
    check_against_reference(stored_rejects(url, day), real_expected, 3, INDEX_COLUMNS)
    load(real_run, url, "--force", UFO_REJECT_ROWS="0")
    assert stored_rejects(url, day) == []
    body = client.get(f"/api/v1/runs/{day}/rejects").json()
    assert body["stored"] is True and body["rejects"] == [] and body["all_stored"] is False


def test_a_database_of_the_previous_schema_is_migrated_like_a_new_one(postgres):
    from etl.adapters import database as db

    old = new_database(postgres)
    engine = sa.create_engine(old)
    with engine.begin() as conn:  # version 2, as an earlier release left it
        db.public.create_all(conn, tables=[db.top_states, db.state_sightings])
        db.metadata.create_all(conn, tables=[db.ufo_runs, db.schema_versions])
        conn.execute(sa.text("INSERT INTO ufo_schema VALUES (1, now()), (2, now())"))
    engine.dispose()
    fresh = new_database(postgres)
    for url in (old, fresh):
        with db.Loader(url):
            pass

    def shape(url: str) -> tuple:
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            inspector = sa.inspect(conn)
            columns = [(c["name"], str(c["type"]), c["nullable"])
                       for c in inspector.get_columns("reject_samples")]  # fmt: skip
            stored = "reject_samples_spans"  # where the view's rows are kept (schema version 4)
            indexes = [(i["name"], i["column_names"]) for i in inspector.get_indexes(stored)]
            key = inspector.get_pk_constraint(stored)["constrained_columns"]
            versions = list(
                conn.execute(sa.text("SELECT version FROM ufo_schema ORDER BY 1")).scalars()
            )
        engine.dispose()
        return columns, indexes, key, versions

    assert shape(old) == shape(fresh)
    columns, indexes, key, versions = shape(old)
    assert [c[:2] for c in columns] == [
        ("run_date", "DATE"), ("reason", "TEXT"), ("row_number", "INTEGER"), ("fields", "JSON"),
    ]  # fmt: skip
    assert [name for name, _ in indexes] == ["reject_samples_spans_valid"]  # the range look-up
    assert key == ["row_number", "valid_from"]
    assert versions == [1, 2, 3, 4, 5]
