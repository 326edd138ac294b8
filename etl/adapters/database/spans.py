"""Figures stored once per span of run dates in which they hold (a slowly changing dimension).

A run date's snapshot (every state's count per period, the top tens, the sample rejects) differs
from the loaded date before it only where reports arrived in between: a few dozen rows of
thousands, often none. So each row is stored once with the span of run dates it holds for,
``valid_from`` (a loaded run date) up to ``valid_to`` (the next loaded run date where it
changed or went; NULL while it still holds), and the public views select, for a run date ``D``,
the rows whose span contains ``D``. Every span starts and ends at loaded run dates, so the rows
that hold on ``D`` are found by one range look-up.

Loading ``D`` (``apply``) rewrites only the rows whose value on ``D`` changes, and keeps every
other loaded date's figures exact: with ``N`` the next loaded date after ``D`` (or none), the new
values hold for ``[D, N)``; a changed row that held across ``D`` is cut at ``D`` and, if it held
beyond ``N``, resumes at ``N``; neighbouring spans left with equal values are joined, so dates
loaded out of order or loaded again store what loading them in order would.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa


@dataclass(frozen=True)
class Spanned:
    """One public table stored as spans: its view's name, key and value columns, and storage."""

    view: str
    keys: tuple[str, ...]
    values: tuple[str, ...]
    storage: sa.Table

    @property
    def columns(self) -> tuple[str, ...]:
        """The keys, then the values: the columns a date's rows are given in."""
        return (*self.keys, *self.values)

    @property
    def incoming(self) -> str:
        """The temporary table that holds the date's new rows while it is applied."""
        return f"ufo_incoming_{self.view}"

    @property
    def changed(self) -> str:
        """The temporary table of the keys a load changes: old and new values, the old span."""
        return f"ufo_changed_{self.view}"

    def view_sql(self, runs: str) -> str:
        """The public table: ``run_date`` and the columns in their first release's order."""
        columns = ", ".join(f"s.{c}" for c in self.public_columns)
        return (
            f"CREATE OR REPLACE VIEW {self.view} AS SELECT r.run_date, {columns} "
            f"FROM {runs} r JOIN {self.storage.name} s "
            "ON daterange(s.valid_from, s.valid_to) @> r.run_date"
        )

    @property
    def public_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.storage.columns if c.name not in SPAN_COLUMNS)


SPAN_COLUMNS = ("valid_from", "valid_to")


def spanned(metadata: sa.MetaData, public: sa.Table, keys: tuple[str, ...]) -> Spanned:
    """``public`` (a table of ``run_date`` and its columns) stored as spans: a ``<name>_spans``
    table of its other columns and the span, keyed by ``keys`` and the span's start, with the
    range index that finds the rows holding on a date."""
    columns = [c for c in public.columns if c.name != "run_date"]
    storage = sa.Table(
        f"{public.name}_spans",
        metadata,
        *(sa.Column(c.name, c.type, nullable=False) for c in columns),
        sa.Column("valid_from", sa.Date, nullable=False),
        sa.Column("valid_to", sa.Date, nullable=True),
        sa.PrimaryKeyConstraint(*keys, "valid_from"),
    )
    sa.Index(
        f"{storage.name}_valid",
        sa.func.daterange(storage.c.valid_from, storage.c.valid_to),
        postgresql_using="gist",
    )
    values = tuple(c.name for c in columns if c.name not in keys)
    return Spanned(public.name, keys, values, storage)


#: The column of a partial ``incoming`` that says whether its key holds on the date at all.
PRESENT = "present"


def stage(conn, spanned: Spanned) -> None:
    """An empty ``spanned.incoming`` for this transaction, for the date's rows to be copied in:
    every row that holds on the date, or only those that changed (with ``PRESENT``).

    It and ``spanned.changed`` are made once per connection and emptied by each commit: a
    backfill loads hundreds of changed dates on one connection, and making and dropping
    tables for each one was catalogue and file work on every date. Temporary tables are always
    named with ``pg_temp.`` when used, so that no table of the database's can be taken for one.
    """
    storage = spanned.storage.name
    conn.exec_driver_sql(
        f"CREATE TEMP TABLE IF NOT EXISTS {spanned.incoming} ON COMMIT DELETE ROWS AS "
        f"SELECT {', '.join(spanned.columns)}, true AS {PRESENT} FROM {storage} WITH NO DATA; "
        f"CREATE TEMP TABLE IF NOT EXISTS {spanned.changed} ON COMMIT DELETE ROWS AS SELECT "
        f"{', '.join(spanned.keys)}, {', '.join(f'{v} AS new_{v}' for v in spanned.values)}, "
        f"{', '.join(f'{v} AS old_{v}' for v in spanned.values)}, true AS {PRESENT}, "
        f"valid_from AS old_from, valid_to AS old_to FROM {storage} WITH NO DATA; "
        f"DELETE FROM pg_temp.{spanned.incoming}; DELETE FROM pg_temp.{spanned.changed}"
    )


def changes(spanned: Spanned, held: pa.Table, rows: pa.Table) -> pa.Table:
    """What turns ``held`` into ``rows`` (each one date's rows, in key order): each key
    whose values differ or that is new, with its values, and each key that went, with no values
    and ``PRESENT`` false. A backfill's changed date differs from the date before it in a few
    dozen of 17,000 counts; these are what ``apply(partial=True)`` is given instead of all."""
    keys, values = list(spanned.keys), list(spanned.values)
    if held.num_rows == rows.num_rows and all(held[k].equals(rows[k]) for k in keys):
        # The same keys in the same (key) order, the usual case: compare values in place.
        differs = pa.repeat(False, rows.num_rows)
        for v in values:
            differs = pc.or_(differs, pc.not_equal(rows[v], held[v].cast(rows[v].type)))
        found = rows.select([*keys, *values]).filter(differs)
        return found.append_column(PRESENT, pa.repeat(True, found.num_rows))
    shaped = rows.select([*keys, *values])
    new = shaped.append_column(PRESENT, pa.repeat(True, rows.num_rows))
    old = held.select([*keys, *values]).cast(shaped.schema)
    old = old.rename_columns([*keys, *(f"held_{v}" for v in values)])
    old = old.append_column("held", pa.repeat(True, old.num_rows))
    both = new.join(old, keys=keys, join_type="full outer", coalesce_keys=True)
    differs = pc.or_(pc.is_null(both[PRESENT]), pc.is_null(both["held"]))
    for v in values:
        differs = pc.or_(differs, pc.fill_null(pc.not_equal(both[v], both[f"held_{v}"]), False))
    found = both.filter(differs)
    present = pc.is_valid(found[PRESENT])
    return pa.table(
        [*(found[c] for c in (*keys, *values)), present], names=[*keys, *values, PRESENT]
    ).sort_by([(k, "ascending") for k in keys])


def apply(conn, spanned: Spanned, day, next_day, partial: bool = False) -> int:
    """Make the rows that hold on ``day`` (and up to ``next_day``, the next loaded date, or
    None) those of ``spanned.incoming``, changing only what differs; the number of keys that
    changed. ``partial``: ``incoming`` holds only the keys that changed since what holds now
    (``changes``), each with ``PRESENT``; otherwise every row that holds on ``day``.

    Two round trips: the keys that changed, then every change. A backfill applies hundreds of
    dates under the load lock, and each statement on its own was a round trip.
    """
    keys = ", ".join(spanned.keys)
    values = ", ".join(spanned.values)
    same_key = " AND ".join(f"s.{k} = c.{k}" for k in spanned.keys)
    storage = spanned.storage.name
    params = {"day": day, "next": next_day}
    day_, next_ = "CAST(%(day)s AS date)", "CAST(%(next)s AS date)"
    holds = f"daterange(c.valid_from, c.valid_to) @> {day_}"
    if partial:  # each changed key's span that holds on ``day``, found by the key's index
        given = ", ".join(f"n.{k}" for k in spanned.keys)
        rows = f"pg_temp.{spanned.incoming} n LEFT JOIN {storage} c ON " + " AND ".join(
            [*(f"n.{k} = c.{k}" for k in spanned.keys), holds]
        )
        present = f"n.{PRESENT}"
    else:  # every key that holds on ``day`` before or after
        given = keys
        rows = (
            f"pg_temp.{spanned.incoming} n FULL JOIN (SELECT * FROM {storage} c "
            f"WHERE {holds}) c USING ({keys})"
        )
        present = f"n.{spanned.keys[0]} IS NOT NULL"
    # Each key whose value on ``day`` differs: its old span (if any) and new value (if any).
    # Values are compared as text: json has no equality, and its text is what users read.
    differs = " OR ".join(f"n.{v}::text IS DISTINCT FROM c.{v}::text" for v in spanned.values)
    changed_ = f"pg_temp.{spanned.changed}"
    changed = conn.exec_driver_sql(
        f"INSERT INTO {changed_} SELECT "
        f"{given}, {', '.join(f'n.{v}' for v in spanned.values)}, "
        f"{', '.join(f'c.{v}' for v in spanned.values)}, "
        f"{present}, c.valid_from, c.valid_to FROM {rows} WHERE {differs}",
        params,
    ).rowcount
    if not changed:
        return 0
    old = ", ".join(f"old_{v}" for v in spanned.values)
    new = ", ".join(f"new_{v}" for v in spanned.values)
    into = f"INSERT INTO {storage} ({keys}, {values}, valid_from, valid_to)"
    statements = [
        # Its few rows counted, so that each statement finds its spans by their key's index:
        # without, the planner guessed hundreds and read the whole storage table each time.
        f"ANALYZE {changed_}",
        # An old value that held beyond the next loaded date resumes there.
        f"{into} SELECT {keys}, {old}, {next_}, old_to FROM {changed_} "
        f"WHERE old_from IS NOT NULL AND {next_} IS NOT NULL "
        f"AND (old_to IS NULL OR old_to > {next_})",
        # ... and ends at ``day``, or is gone if it started there (``day`` loaded again).
        f"UPDATE {storage} s SET valid_to = {day_} FROM {changed_} c "
        f"WHERE {same_key} AND s.valid_from = c.old_from AND c.old_from < {day_}",
        f"DELETE FROM {storage} s USING {changed_} c "
        f"WHERE {same_key} AND s.valid_from = c.old_from AND c.old_from = {day_}",
        f"{into} SELECT {keys}, {new}, {day_}, {next_} FROM {changed_} WHERE present",
        _join_at(spanned, day_),
    ]
    if next_day is not None:
        statements.append(_join_at(spanned, next_))
    conn.exec_driver_sql("; ".join(statements), params)
    return changed


def _join_at(spanned: Spanned, boundary: str) -> str:
    """The statement that joins each changed key's span that ends at ``boundary`` (an SQL date)
    with its next one, when both hold the same values."""
    keys = ", ".join(spanned.keys)
    storage, changed = spanned.storage.name, f"pg_temp.{spanned.changed}"
    equal = " AND ".join(f"a.{v}::text = b.{v}::text" for v in spanned.values)
    to_pair = " AND ".join(f"s.{k} = p.{k}" for k in spanned.keys)
    return (
        f"WITH pairs AS (SELECT {keys}, b.valid_to AS upto FROM {storage} a "
        f"JOIN {storage} b USING ({keys}) JOIN {changed} USING ({keys}) "
        f"WHERE a.valid_to = {boundary} AND b.valid_from = {boundary} "
        f"AND {equal}), "
        f"grown AS (UPDATE {storage} s SET valid_to = p.upto FROM pairs p "
        f"WHERE {to_pair} AND s.valid_to = {boundary}) "
        f"DELETE FROM {storage} s USING pairs p "
        f"WHERE {to_pair} AND s.valid_from = {boundary}"
    )
