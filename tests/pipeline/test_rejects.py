"""Which rejected rows the loader stores: the first N of each reason, numbered in file order."""

from __future__ import annotations

import json

import pytest

from etl.errors import ConfigError, DataError
from etl.pipeline.rejects import read_rejects, reject_sample
from etl.settings import load_settings

HEADER = "Date / Time,City,State,Shape,Duration,Summary,Posted,reason\n"
# Two files as the Spark job writes them (sorted by reason within a file), one quoted newline.
FIRST = HEADER + (
    '1/2/19,Paris,,Disk,1 min,"line one\nline two",1/3/19,state\n'
    "1/4/19,Lyon,FR,Orb,,,1/5/19,state\n"
    "1/6/19,Nice,FR,Orb,,,1/7/19,state\n"
)
SECOND = HEADER + (
    "13/45/19,Austin,TX,Orb,2 min,=1+1,1/8/19,sighting_date\n1/9/19,Rome,IT,Orb,,,1/9/19,state\n"
)
COUNTS = {"posted": 0, "sighting_date": 1, "state": 4}


def sample(texts, limit, counts=COUNTS):
    return reject_sample((read_rejects(t) for t in texts), limit, counts)


def stored(texts, limit, counts=COUNTS):
    return [(reason, n, json.loads(fields)) for reason, n, fields in sample(texts, limit, counts)]


def test_every_row_with_its_position_and_fields_in_the_header_order():
    rows = stored([FIRST, SECOND], 1000)
    assert [(r, n) for r, n, _ in rows] == [
        ("state", 1), ("state", 2), ("state", 3), ("sighting_date", 4), ("state", 5),
    ]  # fmt: skip
    fields = rows[0][2]
    assert list(fields) == HEADER.strip().split(",")[:-1]  # the source's order, no reason
    assert fields["Summary"] == "line one\nline two"
    assert rows[3][2]["Summary"] == "=1+1"


def test_at_most_limit_rows_per_reason_numbered_among_all_rejects():
    assert [(r, n) for r, n, _ in stored([FIRST, SECOND], 2)] == [
        ("state", 1), ("state", 2), ("sighting_date", 4),
    ]  # fmt: skip


def test_reading_stops_once_every_reason_has_its_rows():
    # The second file is never needed: one row of each reason was found in the files before it.
    counts = {"state": 3}
    assert [(r, n) for r, n, _ in stored([FIRST, "not, a\nreject file"], 1, counts)] == [
        ("state", 1)
    ]


def test_limit_zero_stores_none_and_reads_nothing():
    def files():
        raise AssertionError("read")
        yield  # pragma: no cover

    assert reject_sample(files(), 0, COUNTS) == []


def test_files_that_disagree_with_the_quality_report_fail():
    with pytest.raises(DataError, match="quality report"):
        sample([FIRST], 1000, COUNTS)
    with pytest.raises(DataError, match="fields under a header"):
        sample([HEADER + "a,b,state\n"], 1000, {"state": 1})


@pytest.mark.parametrize("value", ["-1", "many", "1.5"])
def test_a_bad_reject_rows_setting_says_what_to_give(monkeypatch, value):
    monkeypatch.setenv("UFO_REJECT_ROWS", value)
    with pytest.raises(ConfigError, match="UFO_REJECT_ROWS") as err:
        load_settings()
    assert "expected a whole number of rows, 0 for none" in str(err.value)


def test_the_reject_rows_setting(monkeypatch):
    monkeypatch.delenv("UFO_REJECT_ROWS", raising=False)
    assert load_settings().reject_rows == 1000
    monkeypatch.setenv("UFO_REJECT_ROWS", "0")
    assert load_settings().reject_rows == 0
