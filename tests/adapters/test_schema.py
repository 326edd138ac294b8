"""Schema migrations on a real PostgreSQL: a new database, one of the first release, a foreign one.

The expected columns are written out here, from the documented tables
(docs/reference/database-and-api.md), not read from the schema module.
"""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from etl.adapters.database import SCHEMA_VERSION, migrate
from etl.errors import DatabaseError

pytestmark = pytest.mark.integration

COLUMNS = {
    "top_states": {"run_date", "period", "rank", "state", "sightings"},
    "state_sightings": {"run_date", "period", "state", "sightings"},
    "ufo_runs": {
        "run_date", "finished_at", "source", "input", "header_repeat", "duplicate",
        "after_run_date", "valid", "rejected", "rejected_by_reason", "layout", "checks",
    },
    "reject_samples": {"run_date", "reason", "row_number", "fields"},
    "ufo_schema": {"version", "applied_at"},
}  # fmt: skip
#: Where the public tables' rows are stored since version 4: once per span of run dates.
SPAN = {"valid_from", "valid_to"}
STORAGE = {
    "top_states_spans": {"period", "rank", "state", "sightings"} | SPAN,
    "state_sightings_spans": {"period", "state", "sightings"} | SPAN,
    "reject_samples_spans": {"reason", "row_number", "fields"} | SPAN,
    "ufo_snapshot_digests": {"run_date", "table_name", "digest"},
}

#: The tables as the first release made them (schema version 1), with a loaded date.
FIRST_RELEASE = [
    "CREATE TABLE top_states (run_date date, period text, rank integer, state text NOT NULL,"
    " sightings integer NOT NULL, PRIMARY KEY (run_date, period, rank))",
    "CREATE TABLE state_sightings (run_date date, period text, state text, sightings integer"
    " NOT NULL, PRIMARY KEY (run_date, period, state))",
    "CREATE TABLE ufo_runs (run_date date PRIMARY KEY, finished_at timestamptz NOT NULL,"
    " source text NOT NULL, input integer NOT NULL, header_repeat integer NOT NULL,"
    " duplicate integer NOT NULL, after_run_date integer NOT NULL, valid integer NOT NULL,"
    " rejected integer NOT NULL, rejected_by_reason jsonb NOT NULL)",
    "CREATE TABLE ufo_schema (version integer PRIMARY KEY, applied_at timestamptz NOT NULL)",
    "INSERT INTO ufo_schema VALUES (1, now())",
    "INSERT INTO top_states VALUES ('2019-03-29', 'all', 1, 'CA', 10)",
    "INSERT INTO state_sightings VALUES ('2019-03-29', 'all', 'CA', 10)",
    "INSERT INTO ufo_runs VALUES ('2019-03-29', now(), 'index.csv', 12, 0, 0, 0, 10, 2,"
    """ '{"state": 2}')""",
]


def columns(engine: sa.Engine) -> dict[str, set[str]]:
    """Every table's and view's columns."""
    inspector = sa.inspect(engine)
    names = inspector.get_table_names() + inspector.get_view_names()
    return {t: {c["name"] for c in inspector.get_columns(t)} for t in names}


def versions(engine: sa.Engine) -> list[int]:
    with engine.connect() as conn:
        return list(conn.execute(sa.text("SELECT version FROM ufo_schema ORDER BY 1")).scalars())


def test_a_new_database_gets_every_table_at_the_newest_version(database_url):
    engine = sa.create_engine(database_url)
    with engine.begin() as conn:
        migrate(conn)
    assert columns(engine) == COLUMNS | STORAGE
    assert versions(engine) == list(range(1, SCHEMA_VERSION + 1))
    with engine.begin() as conn:
        migrate(conn)  # again: nothing to do, nothing fails
    assert versions(engine) == list(range(1, SCHEMA_VERSION + 1))
    engine.dispose()


def test_a_first_release_database_is_brought_up_to_date_without_losing_a_row(database_url):
    engine = sa.create_engine(database_url)
    with engine.begin() as conn:
        for statement in FIRST_RELEASE:
            conn.execute(sa.text(statement))
    with engine.begin() as conn:
        migrate(conn)
    assert columns(engine) == COLUMNS | STORAGE
    assert versions(engine) == list(range(1, SCHEMA_VERSION + 1))
    with engine.connect() as conn:
        run = conn.execute(sa.text("SELECT valid, rejected, layout FROM ufo_runs")).one()
        top = conn.execute(sa.text("SELECT state, sightings FROM top_states")).one()
    assert tuple(run) == (10, 2, None) and tuple(top) == ("CA", 10)
    engine.dispose()


def test_a_table_of_the_same_name_but_another_shape_is_refused(database_url):
    engine = sa.create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE top_states (id serial PRIMARY KEY, name text)"))
    with pytest.raises(DatabaseError, match="The table 'top_states' exists but is not this"):
        with engine.begin() as conn:
            migrate(conn)
    assert set(columns(engine)) == {"top_states"}  # nothing else was created
    engine.dispose()


def test_loaders_migrating_at_once_take_turns(database_url):
    engine = sa.create_engine(database_url, pool_size=4)
    errors: list[BaseException] = []

    def one() -> None:
        try:
            with engine.begin() as conn:
                migrate(conn)
        except BaseException as err:  # noqa: BLE001 - reported by the assertion below
            errors.append(err)

    threads = [threading.Thread(target=one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert versions(engine) == list(range(1, SCHEMA_VERSION + 1))
    engine.dispose()
