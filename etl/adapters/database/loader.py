"""Loading one run date's results into the product database, in one transaction.

Loading a run date makes its figures those of ``results`` in every public table in one
transaction, under an advisory lock (loads take turns: dates share spans), so a reader never
sees a half-load. Each table's rows are digested first: when the digest equals that of the rows
already holding on the date (most days, nothing was posted), nothing is written but the date's
run and digests; otherwise the rows go with PostgreSQL's COPY into a temporary table, and only
those that differ from what the spans hold on that date are written (``spans.apply``).
``loaded.RunLoadedTarget`` says whether a date is loaded (its ``ufo_runs`` row).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import shlex
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.csv as pa_csv
import sqlalchemy as sa

from etl.adapters.database import spans
from etl.adapters.database.schema import (
    LOAD_LOCK,
    LOCK_NAMESPACE,
    REJECT_SAMPLES,
    SPANNED,
    STATE_SIGHTINGS,
    TOP_STATES,
    migrate,
    snapshot_digests,
    ufo_runs,
)
from etl.adapters.database.spans import Spanned
from etl.errors import DatabaseError, shown
from etl.settings import setting


def normalise_url(url: str) -> str:
    """Use psycopg2 for plain ``postgresql://`` URLs (SQLAlchemy 2.1 would pick psycopg 3)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix) :]
    return url


def safe_url(url: str) -> str:
    """The URL without its password, for messages and logs (a password may hold ``@`` or ``/``)."""
    scheme, sep, rest = normalise_url(url).partition("://")
    if not sep:
        return "<unparsable URL>"
    userinfo, at, hostpart = rest.rpartition("@")
    if not at:
        return f"{scheme}://{rest}"
    user, colon, _password = userinfo.partition(":")
    return f"{scheme}://{user}{':***' if colon else ''}@{hostpart}"


def _timeouts() -> dict:
    """libpq connection settings: give up on a server that accepts but never answers."""
    connect = setting("db_connect_timeout")
    statement_ms = int(setting("db_statement_timeout") * 1000)
    return {
        "connect_timeout": connect,
        "options": f"-c statement_timeout={statement_ms}",
        # A silent server after the connection: the kernel gives up on unacknowledged data.
        "tcp_user_timeout": connect * 1000,
        "keepalives": 1,
        "keepalives_idle": 10,
        "keepalives_interval": 5,
        "keepalives_count": 3,
    }


def engine(url: str) -> sa.Engine:
    if not normalise_url(url).startswith("postgresql+psycopg2://"):
        raise DatabaseError(
            f"UFO_DATABASE_URL={safe_url(url)} is not a PostgreSQL URL: use "
            "postgresql://user:password@host:port/database."
        )
    try:
        return sa.create_engine(normalise_url(url), pool_pre_ping=True, connect_args=_timeouts())
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ValueError) as err:
        raise DatabaseError(
            f"UFO_DATABASE_URL is not a usable database URL ({type(err).__name__}): "
            "use postgresql+psycopg2://user:password@host:port/database."
        ) from err


def connect_error(url: str, err: Exception) -> DatabaseError:
    """What failed, in words, with what to do: the libpq message's first line says which."""
    detail = (str(getattr(err, "orig", err)).strip().splitlines() or ["no detail"])[0]
    try:
        parts = sa.engine.make_url(normalise_url(url))
        user, host, port = parts.username, parts.host or "localhost", parts.port or 5432
        database = parts.database
    except Exception:  # an unparsable URL fails before it connects; never show it whole
        user = host = port = database = "?"
    fix = "in UFO_DATABASE_URL"
    if "password authentication failed" in detail or "no password supplied" in detail:
        said = f"the server refused the password of user {shown(user)}: fix the password {fix}."
    elif 'database "' in detail and "does not exist" in detail:
        said = f"the server has no database {shown(database)}: create it, or fix its name {fix}."
    elif 'role "' in detail and "does not exist" in detail:
        said = f"the server has no user {shown(user)}: create it, or fix the user {fix}."
    elif "Connection refused" in detail:
        said = f"nothing listens at {host}:{port} (connection refused): {_remedy(url)}"
    elif "could not translate host name" in detail:
        said = f"the host {shown(host)} is not known: fix the host {fix}."
    elif "timeout expired" in detail:
        said = (
            f"{host}:{port} did not answer within {setting('db_connect_timeout')} s (connect "
            "timeout, UFO_DB_CONNECT_TIMEOUT): check that PostgreSQL runs there and answers."
        )
    elif "statement timeout" in detail:
        said = (
            f"a statement took longer than {setting('db_statement_timeout')} s "
            "(UFO_DB_STATEMENT_TIMEOUT): raise it, or look for what holds the tables' locks."
        )
    else:
        said = f"{detail.split(' failed: ', 1)[-1].strip()}: {_remedy(url)}"
    return DatabaseError(f"Cannot use the database {safe_url(url)}: {said}")


def _remedy(url: str) -> str:
    """What brings the database back: the demo's own (``demo.env`` in UFO_RUN_DIR names it,
    and ``make stop`` stops it) is started by ``make``; any other by whoever runs it."""
    demo_env = setting("run_dir") / "demo.env"
    try:
        lines = demo_env.read_text().splitlines()
    except OSError:
        lines = []
    if f"UFO_DATABASE_URL={shlex.quote(url)}" in lines:
        return (
            f"it is the demo's PostgreSQL ({demo_env.parent / 'postgres'}), stopped by `make "
            "stop`: `make up` starts it again on the same port with the rest of the local "
            "product; `make demo` starts it with a new demo run (then load demo.env again)."
        )
    return "start PostgreSQL or fix UFO_DATABASE_URL."


@dataclass(frozen=True)
class RunResults:
    """What one run date puts into the database."""

    run_date: dt.date
    source: str
    layout: str | None
    quality: dict
    top: pa.Table  # period, rank, state, sightings (topten.TOP_SCHEMA)
    counts: pa.Table  # period, state, sightings: every state (topten.COUNT_SCHEMA)
    rejects: Sequence[tuple[str, int, str]] = ()  # (reason, row_number, fields: a JSON object)
    checks: dict | None = None  # the snapshot's checks report (etl/pipeline/checks.py)


class Loader:
    """Loads run dates into one database: the schema migrated once, each date in its own transaction."""

    def __init__(self, url: str):
        self.url = url
        self._engine = engine(url)
        self._recent: dict[int, tuple[object, bytes, str]] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> Loader:
        try:
            with self._engine.begin() as conn:
                migrate(conn)
        except sa.exc.OperationalError as err:
            self._engine.dispose()
            raise connect_error(self.url, err) from err
        return self

    def __exit__(self, *exc) -> None:
        self._engine.dispose()

    def load(self, results: RunResults) -> None:
        """Load ``results.run_date`` in one transaction."""
        encoded = [
            (table, *self._encoded(table, rows))
            for table, rows in ((TOP_STATES, results.top), (STATE_SIGHTINGS, results.counts),
                                (REJECT_SAMPLES, results.rejects))
        ]  # fmt: skip
        try:
            with self._engine.begin() as conn:
                _replace(conn, results, encoded)
        except sa.exc.OperationalError as err:
            raise connect_error(self.url, err) from err
        finally:
            for listener in LOADED:
                listener(self.url)

    def _encoded(self, table: Spanned, rows: pa.Table | Sequence[tuple]) -> tuple[bytes, str]:
        """``rows`` as COPY reads them, in key order, and their digest. Dates with the same
        snapshot are usually given the same objects: each (immutable) one is encoded once, and
        kept while it is among the last few seen (the object too, so its ``id`` stays its own)."""
        with self._lock:
            found = self._recent.get(id(rows))
        if found is None or not isinstance(rows, (pa.Table, tuple)):  # lists may change
            arrow = rows if isinstance(rows, pa.Table) else _rejects_table(rows)
            data = _csv(
                arrow.select(list(table.columns)).sort_by([(k, "ascending") for k in table.keys])
            )
            found = (rows, data, hashlib.sha256(data).hexdigest())
            with self._lock:
                self._recent[id(rows)] = found
                while len(self._recent) > RECENT_ROWS:
                    self._recent.pop(next(iter(self._recent)))
        return found[1], found[2]


#: Called with the URL after every load in this process, whatever its outcome (``loaded.py``
#: forgets what it read ahead of the database).
LOADED: list = []

#: Encoded row sets a loader keeps for the next dates (a few, for its threads' dates).
RECENT_ROWS = 12


def _replace(conn, results: RunResults, encoded: list[tuple[Spanned, bytes, str]]) -> None:
    """Load ``results.run_date``: its spans changed where its figures differ, its run recorded.

    The fixed statements go in two round trips, the lock and what holds, then the run's rows: a
    backfill loads thousands of dates, most of which change nothing but their run's row, and
    each statement on its own was a round trip under the lock that every load waits for.
    """
    day = results.run_date
    holding, next_day = _lock_and_read(conn, day)
    for table, data, digest in encoded:
        if holding.get(table.view) != digest:  # else the same rows hold on this date already
            spans.stage(conn, table)
            _copy(conn, f"pg_temp.{table.incoming}", table.columns, data)
            spans.apply(conn, table, day, next_day)
    _record(conn, results, [(table.view, digest) for table, _, digest in encoded])


#: Take the load lock; then the latest loaded date on or before the date (spans change only at
#: loaded dates), the next loaded date after it, and the digests of the latest one's rows.
_READ = (
    "SELECT pg_advisory_xact_lock(%(namespace)s, %(lock)s); "
    f"SELECT l.latest, (SELECT min(run_date) FROM {ufo_runs.name} WHERE run_date > %(day)s), "
    f"d.table_name, d.digest FROM (SELECT max(run_date) AS latest FROM {ufo_runs.name} "
    f"WHERE run_date <= %(day)s) l LEFT JOIN {snapshot_digests.name} d ON d.run_date = l.latest"
)


def _lock_and_read(conn, day: dt.date) -> tuple[dict[str, str], dt.date | None]:
    """Under the load lock: the digests of the rows each spanned table holds on ``day`` now (of
    no rows if no date is loaded on or before it; a table loaded before digests were kept is
    missing), and the next loaded date after ``day`` (None if none)."""
    params = {"namespace": LOCK_NAMESPACE, "lock": LOAD_LOCK, "day": day}
    rows = conn.exec_driver_sql(_READ, params).all()
    latest, next_day = rows[0][0], rows[0][1]
    if latest is None:
        return {table.view: NO_ROWS for table in SPANNED}, next_day
    return {name: digest for _, _, name, digest in rows if name is not None}, next_day


#: The run's counts, in ``ufo_runs``' columns of the same names.
RUN_COUNTS = ("input", "header_repeat", "duplicate", "after_run_date", "valid", "rejected")


def _record(conn, results: RunResults, digests: list[tuple[str, str]]) -> None:
    """Record the run of ``results.run_date`` and its tables' digests, replacing earlier ones."""
    q = results.quality
    params = {
        "day": results.run_date, "source": results.source, "layout": results.layout,
        # As SQLAlchemy's JSON types store them: a missing report is JSON's null.
        "checks": json.dumps(results.checks), "by_reason": json.dumps(q["rejected_by_reason"]),
        **{k: q[k] for k in RUN_COUNTS},
    }  # fmt: skip
    for i, (name, digest) in enumerate(digests):
        params[f"table{i}"], params[f"digest{i}"] = name, digest
    rows = [f"(%(day)s, %(table{i})s, %(digest{i})s)" for i in range(len(digests))]
    counts = ", ".join(RUN_COUNTS)
    conn.exec_driver_sql(
        f"DELETE FROM {ufo_runs.name} WHERE run_date = %(day)s; "
        f"DELETE FROM {snapshot_digests.name} WHERE run_date = %(day)s; "
        f"INSERT INTO {snapshot_digests.name} (run_date, table_name, digest) "
        f"VALUES {', '.join(rows)}; "
        f"INSERT INTO {ufo_runs.name} (run_date, finished_at, source, layout, checks, "
        f"rejected_by_reason, {counts}) VALUES (%(day)s, now(), %(source)s, %(layout)s, "
        f"%(checks)s::jsonb, %(by_reason)s::jsonb, {', '.join(f'%({k})s' for k in RUN_COUNTS)})",
        params,
    )


def _rejects_table(rows: Sequence[tuple[str, int, str]]) -> pa.Table:
    """The sample rejects ``(reason, row_number, fields)`` as a table."""
    names, types = ("reason", "row_number", "fields"), (pa.string(), pa.int64(), pa.string())
    columns = list(zip(*rows)) or [() for _ in names]
    return pa.table([pa.array(c, t) for c, t in zip(columns, types)], names=list(names))


def _csv(rows: pa.Table) -> bytes:
    """``rows`` as COPY reads them. Written by Arrow, not by a Python call per value: a year of
    backfill is millions of rows, and the loader's Python competes with PostgreSQL for the same
    cores."""
    buffer = io.BytesIO()
    if rows.num_rows:
        pa_csv.write_csv(rows, buffer, pa_csv.WriteOptions(include_header=False))
    return buffer.getvalue()


#: The digest of no rows.
NO_ROWS = hashlib.sha256(b"").hexdigest()


def _copy(conn, target: str, columns: Sequence[str], data: bytes) -> None:
    """COPY ``data`` (CSV of ``columns``) into ``target``, inside the open transaction."""
    if not data:
        return
    cursor = conn.connection.driver_connection.cursor()
    try:
        cursor.copy_expert(
            f"COPY {target} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv)", io.BytesIO(data)
        )
    finally:
        cursor.close()


#: Engines kept for the quick reads of one process, by (process, URL, timeouts).
_READERS: dict[tuple, sa.Engine] = {}
_READERS_LOCK = threading.Lock()


def _reader_key(url: str) -> tuple:
    return (os.getpid(), url, tuple(sorted(_timeouts().items())))


def reader(url: str) -> sa.Engine:
    """An engine kept for quick reads (is a date loaded, and when): Luigi asks about every date
    of a backfill several times, and a new connection for each took longer than the query.
    Keyed by process too: a pooled connection must not cross a fork."""
    key = _reader_key(url)
    with _READERS_LOCK:
        if key not in _READERS:
            _READERS[key] = engine(url)
        return _READERS[key]


def drop_reader(url: str) -> None:
    """Forget the kept engine of ``url`` after a connection error: the next read connects anew."""
    with _READERS_LOCK:
        found = _READERS.pop(_reader_key(url), None)
    if found is not None:
        found.dispose()
