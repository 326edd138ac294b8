"""loaded_recently: a date's loaded state read with its neighbours', fresh for a moment, and
forgotten by a load in the same process; RunLoadedTarget always asks."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import pytest
import sqlalchemy as sa

from etl.adapters.database import RunLoadedTarget, loaded
from etl.adapters.database.loaded import loaded_recently
from tests.adapters.test_spans import load

DAYS = [dt.date(2019, 3, 1) + dt.timedelta(days=i) for i in range(6)]
SNAPSHOT = {"counts": {("2019-02", "WA"): 3}, "rejects": []}


@pytest.fixture
def queries(monkeypatch) -> list[tuple]:
    """The reads of loaded dates made, by their range."""
    made: list[tuple] = []
    real = loaded.loaded_times

    def counted(url, start=None, end=None):
        made.append((start, end))
        return real(url, start, end)

    monkeypatch.setattr(loaded, "loaded_times", counted)
    return made


def insert_run_elsewhere(url: str, day: dt.date) -> None:
    """A run row written by another process, as another worker's load would."""
    code = (
        "import sys, sqlalchemy as sa\n"
        "from etl.adapters.database.connection import normalise_url\n"
        "with sa.create_engine(normalise_url(sys.argv[1])).begin() as c:\n"
        '    c.exec_driver_sql("INSERT INTO ufo_runs (run_date, finished_at, source, input, '
        "header_repeat, duplicate, after_run_date, valid, rejected, rejected_by_reason) VALUES "
        "(%(d)s, now(), 'elsewhere', 0, 0, 0, 0, 0, 0, '{}')\", {'d': sys.argv[2]})\n"
    )
    subprocess.run([sys.executable, "-c", code, url, day.isoformat()], check=True)


def test_neighbouring_dates_are_answered_by_one_query(database_url, queries):
    load(database_url, DAYS[1], SNAPSHOT)
    load(database_url, DAYS[3], SNAPSHOT)
    answers = [loaded_recently(database_url, day) for day in DAYS]
    assert answers == [False, True, False, True, False, False]
    assert len(queries) == 1


def test_a_load_in_this_process_is_seen_at_once(database_url, queries):
    assert loaded_recently(database_url, DAYS[0]) is False  # read and kept
    load(database_url, DAYS[0], SNAPSHOT)
    assert loaded_recently(database_url, DAYS[0]) is True
    assert len(queries) == 2


def test_a_load_by_another_process_is_seen_once_the_answer_is_stale(
    database_url, queries, monkeypatch
):
    load(database_url, DAYS[5], SNAPSHOT)  # the tables exist
    assert loaded_recently(database_url, DAYS[2]) is False
    insert_run_elsewhere(database_url, DAYS[2])
    assert loaded_recently(database_url, DAYS[2]) is False  # the answer of a moment ago
    assert RunLoadedTarget(database_url, DAYS[2]).exists()  # the target always asks
    clock = [loaded.time.monotonic() + loaded.FRESH_SECONDS + 0.1]
    monkeypatch.setattr(loaded.time, "monotonic", lambda: clock[0])
    assert loaded_recently(database_url, DAYS[2]) is True
    assert len(queries) == 2


def test_a_date_far_from_the_last_read_is_read_again(database_url, queries):
    load(database_url, DAYS[0], SNAPSHOT)
    far = DAYS[0] + loaded.AROUND + dt.timedelta(days=1)
    assert loaded_recently(database_url, DAYS[0]) is True
    assert loaded_recently(database_url, far) is False
    assert len(queries) == 2


def test_a_database_with_nothing_loaded_yet_has_no_date_loaded(database_url, queries):
    with sa.create_engine(
        database_url.replace("postgresql://", "postgresql+psycopg2://")
    ).begin() as c:
        assert not sa.inspect(c).has_table("ufo_runs")
    assert loaded_recently(database_url, DAYS[0]) is False
    assert not RunLoadedTarget(database_url, DAYS[0]).exists()


def test_a_load_through_the_same_database_spelled_otherwise_is_seen_at_once(database_url, queries):
    plain = database_url.replace("postgresql+psycopg2://", "postgresql://", 1)
    assert plain != database_url
    assert loaded_recently(plain, DAYS[4]) is False
    load(database_url, DAYS[4], SNAPSHOT)
    assert loaded_recently(plain, DAYS[4]) is True
