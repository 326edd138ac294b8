"""The product database's schema: its tables, and the migrations that bring any database to it.

Tables (created and upgraded by ``migrate``, one serialised step, before any load):

* ``top_states(run_date, period, rank, state, sightings)``: the top ten states for all time
  (``period = 'all'``) and for each month (``period = 'YYYY-MM'``).
* ``state_sightings(run_date, period, state, sightings)``: every state's count per period,
  for the map in ``producto/``.
* ``ufo_runs(run_date, finished_at, ...)``: one row per loaded run date with its quality
  figures, its source (without credentials) and the source's layout; its presence marks the
  run date as loaded.
* ``reject_samples(run_date, reason, row_number, fields)``: up to ``UFO_REJECT_ROWS`` rejected
  rows per reason, each with its position among the run date's rejects and its fields as they
  came (a JSON object under the source's own column names, in the source's order).
* ``ufo_schema(version, applied_at)``: the migrations applied.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from etl.errors import DatabaseError

metadata = sa.MetaData()

top_states = sa.Table(
    "top_states",
    metadata,
    sa.Column("run_date", sa.Date, primary_key=True),
    sa.Column("period", sa.Text, primary_key=True),
    sa.Column("rank", sa.Integer, primary_key=True),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("sightings", sa.Integer, nullable=False),
)

state_sightings = sa.Table(
    "state_sightings",
    metadata,
    sa.Column("run_date", sa.Date, primary_key=True),
    sa.Column("period", sa.Text, primary_key=True),
    sa.Column("state", sa.Text, primary_key=True),
    sa.Column("sightings", sa.Integer, nullable=False),
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
)

reject_samples = sa.Table(
    "reject_samples",
    metadata,
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

schema_versions = sa.Table(
    "ufo_schema",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
)

#: The migrations, in order: version -> statements (SQL, or DDL of the tables above), each one
#: safe to run again. Version 1 is the first release's tables. A database made from scratch gets
#: the newest shape from ``metadata.create_all`` instead, from the same table definitions.
MIGRATIONS: dict[int, list[str | sa.schema.ExecutableDDLElement]] = {
    1: [],  # the tables of metadata, as first released (created by create_all below)
    2: ["ALTER TABLE ufo_runs ADD COLUMN IF NOT EXISTS layout text"],
    3: [
        sa.schema.CreateTable(reject_samples, if_not_exists=True),
        *(sa.schema.CreateIndex(ix, if_not_exists=True) for ix in reject_samples.indexes),
    ],
}
SCHEMA_VERSION = max(MIGRATIONS)

#: Advisory locks of this product: (namespace, 0) serialises migrations, (namespace, day) loads.
LOCK_NAMESPACE = 0x55464F  # "UFO"


def migrate(conn) -> None:
    """Bring the schema to SCHEMA_VERSION: one loader at a time, each migration once.

    Creating tables concurrently collides in PostgreSQL's catalog, so every loader takes the
    same advisory lock first. Tables of the same names but another shape fail with a message.
    """
    conn.execute(sa.select(sa.func.pg_advisory_xact_lock(LOCK_NAMESPACE, 0)))
    inspector = sa.inspect(conn)
    _check_foreign_tables(inspector)
    had_runs = inspector.has_table(ufo_runs.name)
    metadata.create_all(conn, tables=[top_states, state_sightings, schema_versions])
    applied = set(conn.execute(sa.select(schema_versions.c.version)).scalars())
    todo = [v for v in MIGRATIONS if v not in applied]
    if had_runs:
        for statement in (s for v in todo for s in MIGRATIONS[v]):
            conn.execute(sa.text(statement) if isinstance(statement, str) else statement)
    else:
        # A new database: every later table in its newest shape, indexes included.
        metadata.create_all(conn, tables=[ufo_runs, reject_samples])
    for version in todo:
        conn.execute(schema_versions.insert().values(version=version, applied_at=sa.func.now()))


#: Columns that a migration adds to an existing table: a database of an earlier schema version
#: lacks them until ``migrate`` has run, and is still this pipeline's.
MIGRATED_COLUMNS = frozenset({"layout"})


def _check_foreign_tables(inspector) -> None:
    """Refuse tables of this schema's names that are not this pipeline's."""
    for table in (top_states, state_sightings, ufo_runs, reject_samples):
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
