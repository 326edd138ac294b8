"""The product database: its tables, and loading one run date's results in one transaction.

Tables (created on first load):

* ``top_states(run_date, period, rank, state, sightings)``: the top ten states for all time
  (``period = 'all'``) and for each month (``period = 'YYYY-MM'``).
* ``state_sightings(run_date, period, state, sightings)``: every state's count per period,
  for the map in ``producto/``.
* ``ufo_runs(run_date, finished_at, ...)``: one row per loaded run date with its quality
  figures; its presence marks the run date as loaded.

Loading a run date replaces that date's rows in all three tables in one transaction, under an
advisory lock, so concurrent loads of one date serialise and a reader never sees a half-load.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

import luigi
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
)

_LOCK_NAMESPACE = 0x55464F  # "UFO": advisory locks of this product


def normalise_url(url: str) -> str:
    """Use psycopg2 for plain ``postgresql://`` URLs (SQLAlchemy 2.1 would pick psycopg 3)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix) :]
    return url


def safe_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    try:
        return sa.engine.make_url(normalise_url(url)).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "<unparsable URL>"


def engine(url: str) -> sa.Engine:
    try:
        return sa.create_engine(normalise_url(url), pool_pre_ping=True)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError) as err:
        raise DatabaseError(
            f"UFO_DATABASE_URL is not a usable database URL ({err}): "
            "use postgresql+psycopg2://user:password@host:port/database."
        ) from err


def _connect_error(url: str, err: Exception) -> DatabaseError:
    detail = str(getattr(err, "orig", err)).strip().splitlines()[0]
    return DatabaseError(
        f"Cannot use the database {safe_url(url)} ({detail}): start PostgreSQL or fix "
        "UFO_DATABASE_URL."
    )


@dataclass(frozen=True)
class RunResults:
    """What one run date puts into the database."""

    run_date: dt.date
    source: str
    quality: dict
    top: list[tuple[str, int, str, int]]  # (period, rank, state, sightings)
    counts: list[tuple[str, str, int]]  # (period, state, sightings), every state


def load_run(url: str, results: RunResults) -> None:
    """Replace the rows of ``results.run_date`` in one transaction."""
    eng = engine(url)
    try:
        with eng.begin() as conn:
            metadata.create_all(conn)
            conn.execute(
                sa.select(
                    sa.func.pg_advisory_xact_lock(_LOCK_NAMESPACE, _day_number(results.run_date))
                )
            )
            for table in (top_states, state_sightings, ufo_runs):
                conn.execute(table.delete().where(table.c.run_date == results.run_date))
            _insert(
                conn,
                top_states,
                results.run_date,
                ("period", "rank", "state", "sightings"),
                results.top,
            )
            _insert(
                conn,
                state_sightings,
                results.run_date,
                ("period", "state", "sightings"),
                results.counts,
            )
            q = results.quality
            conn.execute(
                ufo_runs.insert().values(
                    run_date=results.run_date,
                    finished_at=sa.func.now(),
                    source=results.source,
                    rejected_by_reason=q["rejected_by_reason"],
                    **{
                        k: q[k]
                        for k in (
                            "input",
                            "header_repeat",
                            "duplicate",
                            "after_run_date",
                            "valid",
                            "rejected",
                        )
                    },
                )
            )
    except sa.exc.OperationalError as err:
        raise _connect_error(url, err) from err
    finally:
        eng.dispose()


def _insert(
    conn, table: sa.Table, run_date: dt.date, names: tuple[str, ...], rows: Iterable[tuple]
) -> None:
    values = [{"run_date": run_date, **dict(zip(names, row))} for row in rows]
    if values:
        conn.execute(table.insert(), values)


def _day_number(day: dt.date) -> int:
    return day.toordinal()


def run_loaded(url: str, run_date: dt.date) -> bool:
    """Whether ``run_date`` has been loaded completely."""
    eng = engine(url)
    try:
        with eng.connect() as conn:
            if not sa.inspect(conn).has_table(ufo_runs.name):
                return False
            found = conn.execute(
                sa.select(ufo_runs.c.run_date).where(ufo_runs.c.run_date == run_date)
            )
            return found.first() is not None
    except sa.exc.OperationalError as err:
        raise _connect_error(url, err) from err
    finally:
        eng.dispose()


class RunLoadedTarget(luigi.Target):
    """Exists when a run date's results are in the database (its ``ufo_runs`` row)."""

    def __init__(self, url: str, run_date: dt.date):
        self.url = url
        self.run_date = run_date

    def exists(self) -> bool:
        return run_loaded(self.url, self.run_date)

    def modified_at(self) -> float:
        """When the run date was last loaded (the database's clock)."""
        eng = engine(self.url)
        try:
            with eng.connect() as conn:
                found = conn.execute(
                    sa.select(ufo_runs.c.finished_at).where(ufo_runs.c.run_date == self.run_date)
                ).scalar_one()
        except sa.exc.OperationalError as err:
            raise _connect_error(self.url, err) from err
        finally:
            eng.dispose()
        return found.timestamp()

    def __repr__(self) -> str:
        return f"RunLoadedTarget({safe_url(self.url)}, {self.run_date})"
