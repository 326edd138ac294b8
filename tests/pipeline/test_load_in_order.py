"""load_in_order: one writer in date order, the next dates' files read ahead, a failure stops it."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest

from etl.pipeline.load import READ_AHEAD, load_in_order

DAYS = [dt.date(2019, 1, 1) + dt.timedelta(days=i) for i in range(12)]


class Writer:
    """Records what it loads and on which thread; fails on ``fail_on``."""

    def __init__(self, fail_on: dt.date | None = None):
        self.loaded: list[dt.date] = []
        self.threads: set[int] = set()
        self.fail_on = fail_on
        self.durable: list[dt.date] = []

    def load(self, results, durable: bool = True) -> None:
        if results == self.fail_on:
            raise RuntimeError(f"cannot load {results}")
        time.sleep(0.01)  # long enough for the readers to run ahead if they could
        self.loaded.append(results)
        if durable:
            self.durable.append(results)
        self.threads.add(threading.get_ident())


def test_dates_are_loaded_in_their_order_by_one_writer_and_read_at_most_read_ahead_early():
    writer, read, counted = Writer(), [], []

    def results(day):
        read.append(day)
        return day

    def loaded(done):
        counted.append(done)
        # Read so far: the dates loaded, plus at most READ_AHEAD beyond them.
        assert len(read) <= done + READ_AHEAD

    load_in_order(writer, DAYS, results, loaded)
    assert writer.loaded == DAYS
    assert writer.durable == DAYS[-1:]  # only the last commit waits for the disk
    assert writer.threads == {threading.get_ident()}
    assert counted == list(range(1, len(DAYS) + 1))
    assert sorted(read) == DAYS


def test_a_date_that_fails_stops_the_load_and_the_dates_after_it_are_not_loaded():
    writer = Writer(fail_on=DAYS[5])
    with pytest.raises(RuntimeError, match="cannot load 2019-01-06"):
        load_in_order(writer, DAYS, lambda day: day)
    assert writer.loaded == DAYS[:5]


def test_a_date_whose_files_cannot_be_read_fails_the_load_at_that_date():
    writer = Writer()

    def results(day):
        if day == DAYS[3]:
            raise OSError(f"no manifest for {day}")
        return day

    with pytest.raises(OSError, match="no manifest for 2019-01-04"):
        load_in_order(writer, DAYS, results)
    assert writer.loaded == DAYS[:3]
