"""The data contract's rules for the Kaggle layout, a declared ISO-dated layout and ragged rows,
in the Spark job's transforms. Expected outcomes are the data contract's rules
(docs/reference/data-contract.md), written out by hand."""

from __future__ import annotations

import datetime as dt

import pytest

from spark_jobs import aggregate_by_state as job
from spark_jobs import layouts
from tests.support import DECLARED_LAYOUT

pytestmark = pytest.mark.spark

RUN = dt.date(2014, 5, 8)
KAGGLE = [*layouts.KAGGLE.columns[:-1], "longitude "]


def kaggle_row(when="10/10/1949 20:30", state="tx", country="us", posted="4/27/2004"):
    return [when, "san marcos", state, country, "cylinder", "2700", "45 minutes",
            "This event took place in early fall&#44 1949", posted, "29.8830556", "-97.9411111"]  # fmt: skip


def outcome_on(got, run_date=RUN) -> str:
    """A classified row's outcome on ``run_date`` (data rule 7)."""
    if got["posted_date"] is not None and got["posted_date"] > run_date:
        return "after_run_date"
    return got["outcome"]


def classify(spark, rows, header, declared=()):
    raw = spark.createDataFrame(rows, schema=list(header))
    layout, _names, selected = job.transform_select_columns(raw, declared)
    return layout, job.transform_classify(
        job.transform_distinct_by_text(selected), layout
    ).collect()


@pytest.mark.parametrize(
    ("when", "state", "country", "posted", "outcome"),
    [
        ("10/10/1949 20:30", "tx", "us", "4/27/2004", "valid"),
        ("10/10/1949 20:30", " TX ", " US ", " 4/27/2004 ", "valid"),
        ("10/10/1949 20:30", "tx", "", "4/27/2004", "valid"),  # the country left empty
        ("1/1/2000", "ny", "us", "1/5/2000", "valid"),  # no time
        ("12/31/1999 24:00", "ny", "us", "1/5/2000", "valid"),  # midnight as 24:00
        ("12/31/1999 24:60", "ny", "us", "1/5/2000", "sighting_date"),
        ("12/31/1999 25:00", "ny", "us", "1/5/2000", "sighting_date"),
        ("39345", "ny", "us", "1/5/2000", "sighting_date"),  # a spreadsheet's serial date
        ("10/10/49 20:30", "tx", "us", "4/27/2004", "sighting_date"),  # a 2-digit year
        ("2/30/2010 20:00", "tx", "us", "4/27/2011", "sighting_date"),  # no such day
        ("10/10/1949 20:30", "tx", "us", "4/27/04", "posted"),
        ("10/10/1949 20:30", "tx", "us", "38104", "posted"),
        ("10/10/1949 20:30", "tx", "us", "", "posted"),
        ("5/1/2014 20:30", "tx", "us", "5/9/2014", "after_run_date"),
        ("10/10/1949 20:30", "tx", "ca", "4/27/2004", "state"),  # a Canadian "tx"? not a state
        ("10/10/1949 20:30", "on", "ca", "4/27/2004", "state"),
        ("10/10/1949 20:30", "", "gb", "4/27/2004", "state"),
        ("10/10/1949 20:30", "wa", "au", "4/27/2004", "state"),  # Western Australia
        ("10/10/1949 20:30", "pr", "us", "4/27/2004", "state"),  # Puerto Rico: not one of the 51
    ],
)
def test_the_kaggle_layout(spark, when, state, country, posted, outcome):
    layout, [got] = classify(spark, [kaggle_row(when, state, country, posted)], KAGGLE)
    assert layout.name == "kaggle"
    assert outcome_on(got) == outcome
    if outcome == "valid":
        year, month = when.split()[0].split("/")[2], when.split("/")[0]
        assert got["month"] == f"{year}-{int(month):02d}"
        assert got["state_code"] == state.strip().upper()


ISO = layouts.read_declarations(DECLARED_LAYOUT, "test")


@pytest.mark.parametrize(
    ("observed", "entered", "nation", "outcome"),
    [
        ("2014-03-01T22:15", "2014-03-02", "USA", "valid"),
        ("2014-03-01 22:15:30", "2014-03-02T08:00:00", "united states", "valid"),
        ("2014-03-01", "2014-03-02 08:00", "USA", "valid"),
        ("2014-03-01T24:00", "2014-03-02", "USA", "valid"),
        ("2014-3-1", "2014-03-02", "USA", "sighting_date"),  # not zero-padded: not ISO 8601
        ("2014-03-01T22", "2014-03-02", "USA", "sighting_date"),
        ("2014-03-01T22:15:61", "2014-03-02", "USA", "sighting_date"),
        ("3/1/2014 22:15", "2014-03-02", "USA", "sighting_date"),
        ("2014-02-29", "2014-03-02", "USA", "sighting_date"),
        ("2014-03-01", "2014-03-02T08:61", "USA", "posted"),
        ("2014-03-01", "3/2/2014", "USA", "posted"),
        ("2014-03-01", "2014-05-09", "USA", "after_run_date"),
        ("2014-03-01", "2014-03-02", "Canada", "state"),
    ],
)
def test_a_declared_iso_layout(spark, observed, entered, nation, outcome):
    header = ["report_id", "observed_at", "region", "nation", "entered_on"]
    layout, [got] = classify(spark, [["17", observed, " ca", nation, entered]], header, ISO)
    assert layout.name == "reports-db"
    assert outcome_on(got) == outcome
    if outcome == "valid":
        assert (got["month"], got["state_code"]) == ("2014-03", "CA")


INDEX = list(layouts.INDEX.columns)


def index_raw(spark, rows):
    """Raw-zone rows of the index layout with ``_record`` (the whole record of a ragged one)."""
    return spark.createDataFrame(rows, schema=[*INDEX, layouts.RECORD])


def test_a_ragged_row_is_rejected_for_its_columns_before_its_posted_date_and_counted(spark):
    good = ["6/13/11 22:18", "Ardenvoir", "WA", "Light", "1 minute", "a light", "6/20/11"]
    ragged_valid = [*good, "6/13/11 22:18,Ardenvoir,WA,Light,1 minute,a light,6/20/11,x,y,z"]
    ragged_late = ["6/13/11", "x", "WA", "", "", "", "4/1/19", "6/13/11,x,WA,,,,4/1/19,extra"]
    short = ["1/1/19", "short", "", "", "", "", "", "1/1/19,short"]
    header = [*INDEX, "Date / Time,City,State,Shape,Duration,Summary,Posted,x"]
    rows = [[*good, ""], ragged_valid, ragged_valid, ragged_late, short, header]
    layout, names, selected = job.transform_select_columns(index_raw(spark, rows))
    classified = job.transform_keep_reject_text(
        job.transform_classify(job.transform_flag_shared(selected), layout)
    )
    grouped = job.transform_group_outcomes(classified, [dt.date(2019, 3, 29)]).toArrow()
    report = job.snapshot_counts(job.outcome_counts(grouped), dt.date(2019, 3, 29))
    # A header repeat is one whatever its width; the copy of a ragged row is a duplicate; a
    # ragged row is in every snapshot, even one whose posted date is after the run date.
    assert (report["header_repeat"], report["duplicate"], report["valid"]) == (1, 1, 1)
    assert report["rejected_by_reason"] == {"columns": 3, "posted": 0, "sighting_date": 0,
                                            "state": 0}  # fmt: skip
    assert report["after_run_date"] == 0 and report["input"] == 6
    found = job.rejected_rows(grouped, names)
    rejects = job.dated_rejects(found, names, [dt.date(2019, 3, 29)]).to_pylist()
    assert sorted(r["_record"] for r in rejects) == sorted(r[-1] for r in (ragged_valid,
                                                                           ragged_late, short))  # fmt: skip
    assert {(r["reason"], r["since"]) for r in rejects} == {("columns", "2019-03-29")}


def test_a_raw_zone_without_the_record_column_has_no_ragged_rows(spark):
    raw = spark.createDataFrame([["6/13/11 22:18", "A", "WA", "", "", "", "6/20/11"]], INDEX)
    _layout, _names, selected = job.transform_select_columns(raw)
    assert selected.first()[layouts.RECORD] == ""


def test_a_header_repeat_is_found_even_when_its_posted_column_is_named_like_a_date(spark):
    # A header's Posted field is checked only when it is no date, unless the column's own name
    # is one (a declared layout may name it so): then every row is checked.
    [dated] = layouts.read_declarations(
        """
        [layouts.dated-names]
        title = "Reports whose Posted column is named by a date"
        columns = ["seen", "region", "2014-01-01"]
        posted = { column = "2014-01-01", format = "YYYY-MM-DD" }
        sighting = { column = "seen", format = "YYYY-MM-DD" }
        state = { column = "region" }
        """,
        "test",
    )
    header = ["seen", "region", "2014-01-01"]
    rows = [["2014-03-01", "ca", "2014-03-02"], [" Seen", "REGION ", " 2014-01-01"]]
    _layout, got = classify(spark, rows, header, (dated,))
    assert sorted(outcome_on(r) for r in got) == ["header_repeat", "valid"]
