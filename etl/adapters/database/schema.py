"""The product database's schema: its tables, and the migrations that bring any database to it.

The public tables, queried by ``run_date`` (created and upgraded by ``migrate``, one serialised
step, before any load); ``top_states``, ``state_sightings`` and ``reject_samples`` are views
over tables that store each row once for the span of run dates it holds in (``spans``), since
consecutive dates share almost all of them:

* ``top_states(run_date, period, rank, state, sightings)``: the top ten states for all time
  (``period = 'all'``) and for each month (``period = 'YYYY-MM'``).
* ``state_sightings(run_date, period, state, sightings)``: every state's count per period,
  for the map in ``producto/``.
* ``ufo_runs(run_date, finished_at, ...)``: one row per loaded run date with its quality
  figures, its source (without credentials), the source's layout and its snapshot's checks;
  its presence marks the run date as loaded.
* ``reject_samples(run_date, reason, row_number, fields)``: up to ``UFO_REJECT_ROWS`` rejected
  rows per reason, each with its position among the run date's rejects and its fields as they
  came (a JSON object under the source's own column names, in the source's order).
* ``ufo_schema(version, applied_at)``: the migrations applied.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from etl.adapters.database import spans
from etl.adapters.database.spans import spanned
from etl.errors import DatabaseError

#: The tables this schema stores (created by ``migrate``).
metadata = sa.MetaData()
#: The public tables' shape: how users query them, and how schema versions 1-3 stored them (as
#: tables of one row per run date and key; ``migrate`` turns those into the views below).
public = sa.MetaData()

top_states = sa.Table(
    "top_states",
    public,
    sa.Column("run_date", sa.Date, primary_key=True),
    sa.Column("period", sa.Text, primary_key=True),
    sa.Column("rank", sa.Integer, primary_key=True),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("sightings", sa.Integer, nullable=False),
)

state_sightings = sa.Table(
    "state_sightings",
    public,
    sa.Column("run_date", sa.Date, primary_key=True),
    sa.Column("period", sa.Text, primary_key=True),
    sa.Column("state", sa.Text, primary_key=True),
    sa.Column("sightings", sa.Integer, nullable=False),
)

reject_samples = sa.Table(
    "reject_samples",
    public,
    sa.Column("run_date", sa.Date, primary_key=True),
    sa.Column("reason", sa.Text, nullable=False),
    # The row's 1-based position among the run date's rejects as the lake's files list them
    # (the Spark job writes them sorted by reason), not its line in the source file.
    sa.Column("row_number", sa.Integer, primary_key=True),
    # json, not jsonb: json keeps the object's keys in the source's column order (jsonb sorts
    # them) and its text exactly as it came (jsonb refuses \u0000); the app writes the CSV
    # download in that order.
    sa.Column("fields", sa.JSON, nullable=False),
    sa.Index("reject_samples_run_date_reason_row", "run_date", "reason", "row_number"),
)

ufo_runs = sa.Table(
    "ufo_runs",
    metadata,
    sa.Column("run_date", sa.Date, primary_key=True),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("input", sa.Integer, nullable=False),
    sa.Column("header_repeat", sa.Integer, nullable=False),
    sa.Column("duplicate", sa.Integer, nullable=False),
    sa.Column("after_run_date", sa.Integer, nullable=False),
    sa.Column("valid", sa.Integer, nullable=False),
    sa.Column("rejected", sa.Integer, nullable=False),
    sa.Column("rejected_by_reason", JSONB, nullable=False),
    sa.Column("layout", sa.Text, nullable=True),
    # The snapshot's checks report (etl/pipeline/checks.py): each check's figures, and who
    # accepted failed ones; null for a date loaded before the checks existed.
    sa.Column("checks", JSONB, nullable=True),
)

#: A digest of each loaded date's rows per spanned table, so that a load whose figures equal
#: those already holding on its date (most days: nothing was posted) changes nothing without
#: comparing its rows one by one. Internal; a date without digests is compared row by row.
snapshot_digests = sa.Table(
    "ufo_snapshot_digests",
    metadata,
    sa.Column("run_date", sa.Date, primary_key=True),
    sa.Column("table_name", sa.Text, primary_key=True),
    sa.Column("digest", sa.Text, nullable=False),
)

#: The public tables other than ``ufo_runs``, each stored as spans of run dates (``spans``).
TOP_STATES = spanned(metadata, top_states, keys=("period", "rank"))
STATE_SIGHTINGS = spanned(metadata, state_sightings, keys=("period", "state"))
REJECT_SAMPLES = spanned(metadata, reject_samples, keys=("row_number",))
SPANNED = (TOP_STATES, STATE_SIGHTINGS, REJECT_SAMPLES)

schema_versions = sa.Table(
    "ufo_schema",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
)

#: Advisory locks of this product: (namespace, 0) serialises migrations, (namespace, 1) loads
#: (a load rewrites spans that other run dates share, so loads of any dates take turns).
LOCK_NAMESPACE = 0x55464F  # "UFO"
MIGRATION_LOCK, LOAD_LOCK = 0, 1


def _create_views(conn) -> None:
    for table in SPANNED:
        conn.execute(sa.text(table.view_sql(ufo_runs.name)))


def _to_spans(conn) -> None:
    """Version 4: the public tables' rows of every loaded date replayed, in date order, into
    spans, then the tables replaced by views of the same names and columns."""
    metadata.create_all(conn, tables=[snapshot_digests, *(t.storage for t in SPANNED)])
    days = conn.execute(sa.select(ufo_runs.c.run_date).order_by(ufo_runs.c.run_date)).scalars()
    for day in list(days):
        for table in SPANNED:
            columns = ", ".join(table.columns)
            spans.stage(conn, table)
            conn.execute(
                sa.text(
                    f"INSERT INTO pg_temp.{table.incoming} ({columns}) "
                    f"SELECT {columns} FROM {table.view} WHERE run_date = :day"
                ),
                {"day": day},
            )
            spans.apply(conn, table, day, None)  # in date order: the latest loaded so far
    for table in SPANNED:
        conn.execute(sa.text(f"DROP TABLE {table.view}"))
    _create_views(conn)


#: The migrations, in order: version -> steps (SQL, DDL, or a function of the connection),
#: each one safe to run again. A database made from scratch gets the newest shape instead.
MIGRATIONS: dict[int, list] = {
    1: [lambda conn: public.create_all(conn, tables=[top_states, state_sightings])],
    2: ["ALTER TABLE ufo_runs ADD COLUMN IF NOT EXISTS layout text"],
    3: [lambda conn: public.create_all(conn, tables=[reject_samples])],
    4: [_to_spans],
    5: ["ALTER TABLE ufo_runs ADD COLUMN IF NOT EXISTS checks jsonb"],
}
SCHEMA_VERSION = max(MIGRATIONS)


def migrate(conn) -> None:
    """Bring the schema to SCHEMA_VERSION: one loader at a time, each migration once.

    Creating tables concurrently collides in PostgreSQL's catalog, so every loader takes the
    same advisory lock first. Tables of the same names but another shape fail with a message.
    """
    conn.execute(sa.select(sa.func.pg_advisory_xact_lock(LOCK_NAMESPACE, MIGRATION_LOCK)))
    inspector = sa.inspect(conn)
    _check_foreign_tables(inspector)
    had_runs = inspector.has_table(ufo_runs.name)
    metadata.create_all(conn, tables=[schema_versions])
    applied = set(conn.execute(sa.select(schema_versions.c.version)).scalars())
    todo = [v for v in MIGRATIONS if v not in applied]
    if had_runs:
        for step in (s for v in todo for s in MIGRATIONS[v]):
            if callable(step):
                step(conn)
            else:
                conn.execute(sa.text(step) if isinstance(step, str) else step)
    elif todo:
        # A new database: every table in its newest shape, indexes included, and the views.
        metadata.create_all(conn)
        _create_views(conn)
    for version in todo:
        conn.execute(schema_versions.insert().values(version=version, applied_at=sa.func.now()))


#: Columns that a migration adds to an existing table: a database of an earlier schema version
#: lacks them until ``migrate`` has run, and is still this pipeline's.
MIGRATED_COLUMNS = frozenset({"layout", "checks"})


def _check_foreign_tables(inspector) -> None:
    """Refuse tables of this schema's names that are not this pipeline's."""
    stored = (t.storage for t in SPANNED)
    for table in (top_states, state_sightings, ufo_runs, reject_samples, *stored):
        if not inspector.has_table(table.name):
            continue
        present = {c["name"] for c in inspector.get_columns(table.name)}
        missing = sorted(
            {c.name for c in table.columns if c.name not in MIGRATED_COLUMNS} - present
        )
        if missing:
            raise DatabaseError(
                f"The table {table.name!r} exists but is not this pipeline's (no column(s) "
                f"{', '.join(missing)}): use another database, or drop or rename that table."
            )
