"""Figures stored once per span of run dates, on a real PostgreSQL.

Run dates are loaded in and out of order and loaded again, each with a snapshot drawn here; the
public tables read back for every loaded date must equal that date's snapshot, exactly, and
the spans stored must be as few as an independent count over the dates says (one per key and
run of equal values across the loaded dates in date order).
"""

from __future__ import annotations

import datetime as dt
import json
import random

import pyarrow as pa
import pytest
import sqlalchemy as sa

from etl.adapters.database import Loader, RunResults

pytestmark = pytest.mark.integration

PERIODS = ["all", "2019-01", "2019-02", "2019-03"]
STATES = ["CA", "WA", "TX", "FL", "NY"]
FIRST = dt.date(2019, 3, 1)


def draw_snapshots(rng: random.Random, days: int) -> list[dict]:
    """Consecutive dates' figures: each date changes a few counts of the one before, often back
    to an earlier value, sometimes removes one, and adds rejected rows now and then."""
    counts: dict[tuple[str, str], int] = {}
    rejects: list[tuple[str, str]] = []
    out = []
    for _ in range(days):
        for _ in range(rng.randint(0, 4)):
            key = (rng.choice(PERIODS), rng.choice(STATES))
            if key in counts and rng.random() < 0.2:
                del counts[key]
            else:
                counts[key] = rng.randint(1, 3)
        if rng.random() < 0.3:
            reason = rng.choice(["state", "posted"])
            rejects.append((reason, json.dumps({"State": "ZZ", "Summary": f"é {len(rejects)}"})))
        out.append({"counts": dict(counts), "rejects": list(rejects)})
    return out


def top_of(counts: dict[tuple[str, str], int]) -> dict[tuple[str, int], tuple[str, int]]:
    """The top three states of each period: most sightings first, then by name."""
    top = {}
    for period in PERIODS:
        ranked = sorted((-n, s) for (p, s), n in counts.items() if p == period)[:3]
        for rank, (n, state) in enumerate(ranked, start=1):
            top[(period, rank)] = (state, -n)
    return top


def results(day: dt.date, snapshot: dict) -> RunResults:
    counts = snapshot["counts"]
    top = top_of(counts)
    return RunResults(
        run_date=day,
        source="drawn",
        layout="index",
        quality={"input": 1, "header_repeat": 0, "duplicate": 0, "after_run_date": 0,
                 "valid": len(counts), "rejected": 0, "rejected_by_reason": {}},
        top=pa.table({
            "period": [p for p, _ in top], "rank": [r for _, r in top],
            "state": [s for s, _ in top.values()], "sightings": [n for _, n in top.values()],
        }),
        counts=pa.table({
            "period": [p for p, _ in counts], "state": [s for _, s in counts],
            "sightings": list(counts.values()),
        }),
        rejects=[(reason, n, fields) for n, (reason, fields) in enumerate(snapshot["rejects"], 1)],
    )  # fmt: skip


def read_back(engine: sa.Engine) -> dict[dt.date, dict]:
    """Every loaded date's figures, as the public tables give them."""
    found: dict[dt.date, dict] = {}
    with engine.connect() as conn:
        for (day,) in conn.execute(sa.text("SELECT run_date FROM ufo_runs")):
            found[day] = {"counts": {}, "top": {}, "rejects": []}
        for day, period, state, n in conn.execute(sa.text("SELECT * FROM state_sightings")):
            found[day]["counts"][(period, state)] = n
        for day, period, rank, state, n in conn.execute(sa.text("SELECT * FROM top_states")):
            found[day]["top"][(period, rank)] = (state, n)
        rows = conn.execute(
            sa.text(
                "SELECT run_date, reason, row_number, fields::text FROM reject_samples "
                "ORDER BY run_date, row_number"
            )
        )
        for day, reason, number, fields in rows:
            assert number == len(found[day]["rejects"]) + 1
            found[day]["rejects"].append((reason, fields))
    return found


def expected(snapshots: dict[dt.date, dict]) -> dict[dt.date, dict]:
    return {
        day: {"counts": s["counts"], "top": top_of(s["counts"]), "rejects": s["rejects"]}
        for day, s in snapshots.items()
    }


def fewest_spans(loaded: dict[dt.date, dict]) -> dict[str, int]:
    """Spans needed per table: for each key, the runs of equal values over the loaded dates."""

    def runs(values_by_date: list[dict]) -> int:
        total, before = 0, {}
        for values in values_by_date:
            total += sum(1 for key, value in values.items() if before.get(key) != value)
            before = values
        return total

    ordered = [loaded[day] for day in sorted(loaded)]
    return {
        "state_sightings_spans": runs([s["counts"] for s in ordered]),
        "top_states_spans": runs([s["top"] for s in ordered]),
        "reject_samples_spans": runs([dict(enumerate(s["rejects"])) for s in ordered]),
    }


def stored(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            table: conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in ("state_sightings_spans", "top_states_spans", "reject_samples_spans")
        }


def load(url: str, day: dt.date, snapshot: dict) -> None:
    with Loader(url) as loader:
        loader.load(results(day, snapshot))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_dates_loaded_in_any_order_and_again_read_back_exactly(database_url, seed):
    rng = random.Random(seed)
    drawn = draw_snapshots(rng, 30)
    days = [FIRST + dt.timedelta(days=n) for n in range(len(drawn))]
    truth = dict(zip(days, drawn))
    truth[days[0]] = {"counts": {}, "rejects": []}  # before every report: an empty snapshot
    order = days[:]
    rng.shuffle(order)
    engine = sa.create_engine(database_url)
    loaded: dict[dt.date, dict] = {}
    for step, day in enumerate(order):
        load(database_url, day, truth[day])
        loaded[day] = truth[day]
        if step % 7 == 3:  # a forced re-run with other figures, then with the right ones
            again = rng.choice(sorted(loaded))
            load(database_url, again, truth[rng.choice(days)])
            load(database_url, again, truth[again])
        assert read_back(engine) == expected(loaded)
        assert stored(engine) == fewest_spans(expected(loaded))
    engine.dispose()


def test_a_date_whose_figures_changed_stays_changed_until_a_later_date_says_otherwise(
    database_url,
):
    """Loaded 1, 3, 5 with equal figures, then 4 with other ones: 5 keeps its own figures."""
    same = {"counts": {("all", "CA"): 2}, "rejects": []}
    other = {"counts": {("all", "CA"): 3, ("all", "WA"): 1}, "rejects": [("state", "{}")]}
    days = [FIRST + dt.timedelta(days=n) for n in range(6)]
    for day in (days[1], days[3], days[5]):
        load(database_url, day, same)
    engine = sa.create_engine(database_url)
    assert stored(engine)["state_sightings_spans"] == 1  # one span holds for all three
    load(database_url, days[4], other)
    want = {days[1]: same, days[3]: same, days[4]: other, days[5]: same}
    assert read_back(engine) == expected(want)
    assert stored(engine) == fewest_spans(expected(want))
    assert days[2] not in read_back(engine)  # a date never loaded has no figures
    engine.dispose()


def test_a_day_in_order_writes_only_what_changed(database_url):
    """The daily case: 40 dates in order, a few changes each; storage grows by the changes."""
    drawn = draw_snapshots(random.Random(7), 40)
    days = [FIRST + dt.timedelta(days=n) for n in range(len(drawn))]
    engine = sa.create_engine(database_url)
    for day, snapshot in zip(days, drawn):
        load(database_url, day, snapshot)
    want = expected(dict(zip(days, drawn)))
    assert read_back(engine) == want
    spans = stored(engine)
    assert spans == fewest_spans(want)
    rows = sum(len(s["counts"]) for s in drawn)
    assert spans["state_sightings_spans"] < rows / 4, (spans, rows)
    engine.dispose()


def test_a_version_3_database_is_migrated_to_spans_without_changing_a_date(database_url):
    """Dates stored as schema version 3 stored them (a row per date and key) read back the same
    after the migration, from the fewest spans; the next load goes on from there."""
    from etl.adapters.database import schema

    drawn = draw_snapshots(random.Random(11), 25)
    days = [FIRST + dt.timedelta(days=2 * n) for n in range(len(drawn))]  # with gaps
    engine = sa.create_engine(database_url)
    with engine.begin() as conn:
        schema.public.create_all(conn)
        schema.metadata.create_all(conn, tables=[schema.ufo_runs, schema.schema_versions])
        conn.execute(sa.text("INSERT INTO ufo_schema VALUES (1, now()), (2, now()), (3, now())"))
        for day, snapshot in zip(days, drawn):
            want = expected({day: snapshot})[day]
            conn.execute(
                sa.text(
                    "INSERT INTO ufo_runs VALUES (:d, now(), 's', 1, 0, 0, 0, 1, 0, '{}', 'index')"
                ),
                {"d": day},
            )
            for table, rows in (
                ("state_sightings", [(*k, n) for k, n in want["counts"].items()]),
                ("top_states", [(*k, *v) for k, v in want["top"].items()]),
                ("reject_samples", [(r, n, f) for n, (r, f) in enumerate(want["rejects"], 1)]),
            ):
                for row in rows:
                    marks = ", ".join(f":v{i}" for i in range(len(row)))
                    conn.execute(
                        sa.text(f"INSERT INTO {table} VALUES (:d, {marks})"),
                        {"d": day, **{f"v{i}": v for i, v in enumerate(row)}},
                    )
    before = read_back(engine)
    assert before == expected(dict(zip(days, drawn)))

    later = FIRST + dt.timedelta(days=2 * len(drawn))
    load(database_url, later, drawn[-1])  # migrates, then loads
    with engine.connect() as conn:
        versions = conn.execute(sa.text("SELECT version FROM ufo_schema ORDER BY 1")).scalars()
        assert list(versions) == list(range(1, schema.SCHEMA_VERSION + 1))
    after = read_back(engine)
    assert after == {**before, later: expected({later: drawn[-1]})[later]}
    assert stored(engine) == fewest_spans(after)
    engine.dispose()


@pytest.mark.parametrize("seed", [4, 5])
def test_loaders_kept_open_send_only_what_changed_and_read_back_exactly(
    database_url, seed, monkeypatch
):
    """Two loaders kept open load dates in order, then again out of order, taking turns at
    random. A loader whose last committed rows are what holds on the date sends only their
    difference (``spans.changes``); one whose rows are not (the other loaded in between) sends
    every row. Either way every date reads back exactly, from the fewest spans."""
    from etl.adapters.database import spans

    partial = []
    monkeypatch.setattr(
        spans, "changes", lambda *a, _real=spans.changes: partial.append(1) or _real(*a)
    )
    rng = random.Random(seed)
    drawn = draw_snapshots(rng, 40)
    days = [FIRST + dt.timedelta(days=n) for n in range(len(drawn))]
    truth = dict(zip(days, drawn))
    order = days + rng.sample(days, 15)  # in order, then some again out of order
    engine = sa.create_engine(database_url)
    loaded: dict[dt.date, dict] = {}
    with Loader(database_url) as one, Loader(database_url) as other:
        for step, day in enumerate(order):
            loader = one if step < 20 or rng.random() < 0.5 else other
            loader.load(results(day, truth[day]))
            loaded[day] = truth[day]
            if step % 5 == 4:
                assert read_back(engine) == expected(loaded)
                assert stored(engine) == fewest_spans(expected(loaded))
    assert read_back(engine) == expected(loaded)
    assert stored(engine) == fewest_spans(expected(loaded))
    assert len(partial) >= 19, "the in-order dates sent only their changes"
    engine.dispose()


def test_changes_are_what_turns_one_date_into_the_next():
    """``spans.changes`` against a plain dictionary comparison, on random tables with keys that
    come, go and change, and with the same keys and some values changed."""
    from etl.adapters.database import spans
    from etl.adapters.database.schema import STATE_SIGHTINGS

    rng = random.Random(9)
    for _ in range(200):
        keys = [(p, s) for p in PERIODS for s in STATES]
        held = {k: rng.randint(1, 3) for k in rng.sample(keys, rng.randint(0, len(keys)))}
        rows = {k: rng.randint(1, 3) for k in rng.sample(keys, rng.randint(0, len(keys)))}
        if rng.random() < 0.4:  # the usual case: the same keys, some values changed
            rows = {k: rng.choice([n, n, 4]) for k, n in held.items()}

        def table(d):  # in key order, as the loader keeps a date's rows
            d = dict(sorted(d.items()))
            return pa.table(
                {"period": pa.array([p for p, _ in d], pa.string()),
                 "state": pa.array([s for _, s in d], pa.string()),
                 "sightings": pa.array(list(d.values()), pa.int64())}
            )  # fmt: skip

        got = spans.changes(STATE_SIGHTINGS, table(held), table(rows)).to_pylist()
        want = sorted(
            [{"period": p, "state": s, "sightings": n, "present": True}
             for (p, s), n in rows.items() if held.get((p, s)) != n]
            + [{"period": p, "state": s, "sightings": None, "present": False}
               for (p, s) in held if (p, s) not in rows],
            key=lambda r: (r["period"], r["state"]),
        )  # fmt: skip
        assert got == want


def test_a_kept_connection_the_server_dropped_is_replaced_for_the_next_date(database_url):
    """The server ends the loader's connection between two dates (a restart, an idle timeout):
    the next date is loaded on a new connection, not failed."""
    drawn = draw_snapshots(random.Random(3), 3)
    days = [FIRST + dt.timedelta(days=n) for n in range(3)]
    engine = sa.create_engine(database_url)
    with Loader(database_url) as loader:
        loader.load(results(days[0], drawn[0]))
        with engine.begin() as conn:
            ended = conn.execute(
                sa.text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            ).scalar_one()
        assert ended >= 1
        loader.load(results(days[1], drawn[1]))
        loader.load(results(days[2], drawn[2]))
    assert read_back(engine) == expected(dict(zip(days, drawn)))
    engine.dispose()


def test_only_a_durable_load_waits_for_the_disk_and_the_setting_ends_with_its_date(database_url):
    """A backfill's dates but its last commit with ``synchronous_commit`` off; each date's
    setting is its own (``SET LOCAL``), and the dates read back exactly either way."""
    drawn = draw_snapshots(random.Random(6), 4)
    days = [FIRST + dt.timedelta(days=n) for n in range(4)]
    seen = []
    with Loader(database_url) as loader:

        def at_commit(conn):
            seen.append(conn.exec_driver_sql("SHOW synchronous_commit").scalar_one())

        sa.event.listen(loader._engine, "commit", at_commit)
        for n, day in enumerate(days):
            loader.load(results(day, drawn[n]), durable=n in (1, 3))
    assert seen == ["off", "on", "off", "on"]
    engine = sa.create_engine(database_url)
    assert read_back(engine) == expected(dict(zip(days, drawn)))
    engine.dispose()


def test_a_date_loaded_again_has_only_its_last_runs_record_and_digests(database_url):
    """Loading a date again leaves the last load's record of its run whole, and no digest of a
    table that load did not name."""
    rng = random.Random(6)
    first, second = draw_snapshots(rng, 2)
    engine = sa.create_engine(database_url)
    load(database_url, FIRST, first)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO ufo_snapshot_digests VALUES (:d, 'retired_table', 'x')"),
                     {"d": FIRST})  # fmt: skip
        before = conn.execute(sa.text("SELECT finished_at FROM ufo_runs")).scalar_one()
    again = results(FIRST, second)
    again = RunResults(**{**again.__dict__, "source": "another", "layout": "declared",
                          "checks": {"coverage": {"ok": True}},
                          "quality": {**again.quality, "input": 7, "rejected": 2,
                                      "rejected_by_reason": {"state": 2}}})  # fmt: skip
    with Loader(database_url) as loader:
        loader.load(again)
    with engine.connect() as conn:
        run = conn.execute(sa.text("SELECT * FROM ufo_runs")).mappings().one()
        digests = conn.execute(
            sa.text("SELECT table_name FROM ufo_snapshot_digests ORDER BY 1")
        ).scalars()
        assert sorted(digests) == ["reject_samples", "state_sightings", "top_states"]
    recorded = {k: run[k] for k in ("source", "layout", "checks", "input", "rejected_by_reason")}
    assert recorded == {
        "source": "another", "layout": "declared", "checks": {"coverage": {"ok": True}},
        "input": 7, "rejected_by_reason": {"state": 2},
    }  # fmt: skip
    assert run["finished_at"] > before
    assert read_back(engine) == expected({FIRST: second})
    engine.dispose()
