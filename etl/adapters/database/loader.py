"""Loading one run date's results into the product database, in one transaction.

Loading a run date makes its figures those of ``results`` in every public table in one
transaction, under an advisory lock (loads take turns: dates share spans), so a reader never
sees a half-load. Each table's rows are digested first: when the digest equals that of the rows
already holding on the date (most days, nothing was posted), nothing is written but the date's
run and digests; otherwise the rows go with PostgreSQL's COPY into a temporary table, and only
those that differ from what the spans hold on that date are written (``spans.apply``).
``loaded.RunLoadedTarget`` says whether a date is loaded (its ``ufo_runs`` row); ``connection``
connects.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.csv as pa_csv
import sqlalchemy as sa

from etl.adapters.database import spans
from etl.adapters.database.connection import connect_error, engine
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
    """Loads run dates into one database: the schema migrated once, each date in its own
    transaction, on one connection kept for the loader's life (a backfill's thousands of dates
    each took a connection from the pool, and a ping to check it)."""

    def __init__(self, url: str):
        self.url = url
        self._engine = engine(url)
        self._conn: sa.Connection | None = None
        self._recent: dict[int, tuple[object, bytes, str, pa.Table]] = {}
        self._lock = threading.Lock()
        #: Each spanned table's last rows this loader committed, by view: (digest, rows).
        self._held: dict[str, tuple[str, pa.Table]] = {}

    def __enter__(self) -> Loader:
        try:
            with self._engine.begin() as conn:
                migrate(conn)
        except sa.exc.OperationalError as err:
            self._engine.dispose()
            raise connect_error(self.url, err) from err
        return self

    def __exit__(self, *exc) -> None:
        self._forget_connection()
        self._engine.dispose()

    def _forget_connection(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                conn.close()
            except sa.exc.DBAPIError:
                pass  # already gone with its server

    def load(self, results: RunResults, durable: bool = True) -> None:
        """Load ``results.run_date`` in one transaction.

        ``durable``: its commit waits until it is on disk. A backfill loads every date but its
        last with ``durable=False`` (PostgreSQL's ``synchronous_commit = off``): such a commit
        is seen at once and reaches the disk within a fraction of a second, and the last date's
        durable commit waits for every earlier one too. A server that stops in between loses
        at most those dates, whole (each with its ``ufo_runs`` row): their task did not finish,
        and its next run loads them again. 3,652 commits that each waited for the disk were
        2.4 s of a ten-year backfill.
        """
        encoded = [
            (table, *self._encoded(table, rows))
            for table, rows in ((TOP_STATES, results.top), (STATE_SIGHTINGS, results.counts),
                                (REJECT_SAMPLES, results.rejects))
        ]  # fmt: skip
        held, self._held = self._held, {}  # known again only once this date commits
        try:
            for attempt in (1, 2):
                kept = self._conn is not None
                if not kept:
                    self._conn = self._engine.connect()
                try:
                    with self._conn.begin():
                        _replace(self._conn, results, encoded, held, durable)
                    break
                except sa.exc.DBAPIError as err:
                    self._forget_connection()
                    # A kept connection that the server dropped since its last date (a restart,
                    # an idle timeout): the date is tried once more on a new one.
                    if not (kept and err.connection_invalidated and attempt == 1):
                        raise
        except sa.exc.OperationalError as err:
            raise connect_error(self.url, err) from err
        finally:
            for listener in LOADED:
                listener(self.url)
        self._held = {table.view: (digest, rows) for table, _, digest, rows in encoded}

    def _encoded(
        self, table: Spanned, rows: pa.Table | Sequence[tuple]
    ) -> tuple[bytes, str, pa.Table]:
        """``rows`` as COPY reads them, in key order, their digest, and they as a table. Dates
        with the same snapshot are usually given the same objects: each (immutable) one is
        encoded once, and kept while it is among the last few seen (the object too, so its
        ``id`` stays its own)."""
        with self._lock:
            found = self._recent.get(id(rows))
        if found is None or not isinstance(rows, (pa.Table, tuple)):  # lists may change
            arrow = rows if isinstance(rows, pa.Table) else _rejects_table(rows)
            arrow = arrow.select(list(table.columns)).sort_by(
                [(k, "ascending") for k in table.keys]
            )
            data = _csv(arrow)
            found = (rows, data, hashlib.sha256(data).hexdigest(), arrow)
            with self._lock:
                self._recent[id(rows)] = found
                while len(self._recent) > RECENT_ROWS:
                    self._recent.pop(next(iter(self._recent)))
        return found[1], found[2], found[3]


#: Called with the URL after every load in this process, whatever its outcome (``loaded.py``
#: forgets what it read ahead of the database).
LOADED: list = []

#: Encoded row sets a loader keeps for the next dates (a few, for its threads' dates).
RECENT_ROWS = 12


def _replace(
    conn,
    results: RunResults,
    encoded: list[tuple[Spanned, bytes, str, pa.Table]],
    held: dict[str, tuple[str, pa.Table]],
    durable: bool = True,
) -> None:
    """Load ``results.run_date``: its spans changed where its figures differ, its run recorded
    (``durable``: see ``Loader.load``).

    The fixed statements go in two round trips, the lock and what holds, then the run's rows: a
    backfill loads thousands of dates, most of which change nothing but their run's row, and
    each statement on its own was a round trip under the lock that every load waits for.

    When the rows that hold on the date now are rows this loader committed (``held``: their
    digest is the one the database keeps), only the difference is sent and compared: a
    backfill's changed date sends a few dozen rows, not every count.
    """
    day = results.run_date
    holding, next_day = _lock_and_read(conn, day, durable)
    for table, data, digest, rows in encoded:
        now = holding.get(table.view)
        if now == digest:  # the same rows hold on this date already
            continue
        spans.stage(conn, table)
        before = held.get(table.view)
        partial = before is not None and before[0] == now
        if partial:
            changes = spans.changes(table, before[1], rows)
            _copy(conn, f"pg_temp.{table.incoming}", changes.column_names, _csv(changes))
        else:
            _copy(conn, f"pg_temp.{table.incoming}", table.columns, data)
        spans.apply(conn, table, day, next_day, partial=partial)
    _record(conn, results, [(table.view, digest) for table, _, digest, _ in encoded])


#: Take the load lock; then the latest loaded date on or before the date (spans change only at
#: loaded dates), the next loaded date after it, and the digests of the latest one's rows.
_READ = (
    "SELECT pg_advisory_xact_lock(%(namespace)s, %(lock)s); "
    f"SELECT l.latest, (SELECT min(run_date) FROM {ufo_runs.name} WHERE run_date > %(day)s), "
    f"d.table_name, d.digest FROM (SELECT max(run_date) AS latest FROM {ufo_runs.name} "
    f"WHERE run_date <= %(day)s) l LEFT JOIN {snapshot_digests.name} d ON d.run_date = l.latest"
)


def _lock_and_read(
    conn, day: dt.date, durable: bool = True
) -> tuple[dict[str, str], dt.date | None]:
    """Under the load lock: the digests of the rows each spanned table holds on ``day`` now (of
    no rows if no date is loaded on or before it; a table loaded before digests were kept is
    missing), and the next loaded date after ``day`` (None if none). Not ``durable``: the
    transaction's commit will not wait for the disk (said in the same round trip)."""
    params = {"namespace": LOCK_NAMESPACE, "lock": LOAD_LOCK, "day": day}
    said = "" if durable else "SET LOCAL synchronous_commit = off; "
    rows = conn.exec_driver_sql(said + _READ, params).all()
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
