"""The Spark transforms of spark_jobs/aggregate_by_state.py, one data rule at a time."""

from __future__ import annotations

import datetime as dt

import pytest
from pyspark.testing import assertDataFrameEqual

from spark_jobs import aggregate_by_state as job

pytestmark = pytest.mark.spark

RUN = dt.date(2019, 3, 29)
HEADER = list(job.HEADER)


def row(when="6/13/11 22:18", city="Ardenvoir", state="WA", posted="6/20/11", shape="Light",
        duration="1 minute", summary="a bright white light"):  # fmt: skip
    return [when, city, state, shape, duration, summary, posted]


def classify(spark, rows, run_date=RUN, header=HEADER):
    raw = spark.createDataFrame(rows, schema=header)
    return job.transform_classify(job.transform_select_columns(raw), run_date)


def outcomes(spark, rows, run_date=RUN) -> dict[str, str]:
    """Outcome per distinct row, keyed by its Date / Time field."""
    return {r["date_time"]: r["outcome"] for r in classify(spark, rows, run_date).collect()}


def counts(spark, rows, run_date=RUN) -> dict[str, int]:
    classified = classify(spark, rows, run_date)
    return {r["outcome"]: r["rows"] for r in job.transform_outcome_counts(classified).collect()}


# Rule 1: the layout.
def test_header_is_matched_ignoring_case_and_spaces_and_extra_columns_are_ignored(spark):
    header = [" date / time ", "CITY", "State", "shape", "Duration", "Summary", "POSTED ", "Extra"]
    raw = spark.createDataFrame([row() + ["x"]], schema=header)
    selected = job.transform_select_columns(raw)
    assert selected.columns == list(job.COLUMNS)
    assert selected.first()["state"] == "WA"


def test_another_layout_names_the_missing_columns(spark):
    raw = spark.createDataFrame([["1", "2", "3"]], schema=["datetime", "City", "state_code"])
    with pytest.raises(job.LayoutError) as err:
        job.transform_select_columns(raw)
    for name in ("Date / Time", "State", "Shape", "Duration", "Summary", "Posted"):
        assert repr(name) in str(err.value)
    assert "'City'" not in str(err.value).split(";")[0]


def test_missing_values_become_empty_strings(spark):
    raw = spark.createDataFrame([[None] * 7], schema="`Date / Time` string, City string, "
                                "State string, Shape string, Duration string, Summary string, Posted string")  # fmt: skip
    assert list(job.transform_select_columns(raw).first()) == [""] * 7


# Rules 3 and 4: repeated headers and exact duplicates.
def test_header_repeats_are_counted_and_duplicates_kept_once(spark):
    rows = [HEADER, HEADER, [h.upper() for h in HEADER], row(), row(), row(), row(city="Other")]
    assert counts(spark, rows) == {"header_repeat": 3, "duplicate": 2, "valid": 2}


def test_rows_differing_in_one_field_are_not_duplicates(spark):
    rows = [row(), row(summary="a bright white light."), row(duration="")]
    assert counts(spark, rows) == {"valid": 3}


# Rule 5: Posted.
@pytest.mark.parametrize(
    "posted", ["", "2019-03-01", "13/1/19", "2/30/19", "1/1/2019", "0/5/19", "1/1/19 12:00", "x"]
)
def test_rows_without_a_valid_posted_date_are_rejected(spark, posted):
    assert outcomes(spark, [row(when="1/1/19 10:00", posted=posted)]) == {"1/1/19 10:00": "posted"}


def test_posted_years_70_and_later_are_19yy(spark):
    # Posted 1/2/70 is 1970 (before the run); 1/2/69 is 2069 (after it).
    rows = [row(when="1/1/70 10:00", posted="1/2/70"), row(when="1/1/69 10:00", posted="1/2/69")]
    assert outcomes(spark, rows) == {"1/1/70 10:00": "valid", "1/1/69 10:00": "after_run_date"}


# Rule 6: the run date.
def test_reports_posted_after_the_run_date_are_not_in_the_snapshot(spark):
    rows = [row(when="3/28/19 1:00", posted="3/29/19"), row(when="3/29/19 1:00", posted="3/30/19")]
    assert outcomes(spark, rows) == {"3/28/19 1:00": "valid", "3/29/19 1:00": "after_run_date"}
    assert counts(spark, rows) == {"valid": 1, "after_run_date": 1}


def test_after_run_date_is_checked_before_the_sighting_date_and_state(spark):
    rows = [row(when="unknown", state="", posted="4/1/19")]
    assert outcomes(spark, rows) == {"unknown": "after_run_date"}


# Rule 7: Date / Time.
@pytest.mark.parametrize(
    "when",
    ["", "21:00", "unknown", "04/00/80 23:00", "00/00/99 22:30", "1/1/2010 10:00", "09/0?/96 22:30",
     "2/30/10 10:00", "1/1/10 25:00", "1/1/10 10:60", "1/1/10 10:5", "1/1/10 10", "13/1/10"],
)  # fmt: skip
def test_bad_sighting_dates_are_rejected(spark, when):
    assert outcomes(spark, [row(when=when, posted="3/1/19")]) == {when: "sighting_date"}


@pytest.mark.parametrize(
    "when, posted, month",
    [
        ("6/13/11 22:18", "6/20/11", "2011-06"),
        ("6/13/11", "6/20/11", "2011-06"),  # no time
        ("12/31/18 24:00", "1/5/19", "2018-12"),  # hour 24 is allowed
        ("1/1/19 0:00", "1/5/19", "2019-01"),
        ("11/18/99 05:00", "5/24/05", "1999-11"),  # 2099 would be after 2005
        ("10/1/20 21:00", "1/1/99", "1920-10"),  # posted 1999: the 1920s
        ("2/29/00 1:00", "3/1/01", "2000-02"),  # a leap day
    ],
)
def test_valid_sightings_count_towards_their_month(spark, when, posted, month):
    classified = classify(spark, [row(when=when, posted=posted)])
    got = classified.first()
    assert (got["outcome"], got["month"]) == ("valid", month)


def test_the_century_depends_on_the_posted_year_only(spark):
    # Same year as posted is allowed even when the month is later: the rule compares years.
    got = classify(spark, [row(when="12/1/05 1:00", posted="1/1/05")]).first()
    assert (got["outcome"], got["month"]) == ("valid", "2005-12")


def test_a_leap_day_in_a_common_year_is_rejected(spark):
    assert outcomes(spark, [row(when="2/29/01 1:00", posted="3/1/01")]) == {
        "2/29/01 1:00": "sighting_date"
    }


# Rule 8: the state.
def test_states_are_trimmed_and_upper_cased(spark):
    rows = [row(when="1/1/10 1:00", state=" fl "), row(when="1/2/10 1:00", state="Ca")]
    got = {r["date_time"]: (r["outcome"], r["state_code"]) for r in classify(spark, rows).collect()}
    assert got == {"1/1/10 1:00": ("valid", "FL"), "1/2/10 1:00": ("valid", "CA")}


@pytest.mark.parametrize("state", ["", "ON", "BC", "PR", "XX", "C A"])
def test_non_us_states_are_rejected(spark, state):
    assert outcomes(spark, [row(state=state)]) == {"6/13/11 22:18": "state"}


def test_dc_counts_as_a_state(spark):
    assert outcomes(spark, [row(state="DC")]) == {"6/13/11 22:18": "valid"}


# Rule 9: the first failing rule wins.
def test_a_row_is_rejected_for_the_first_rule_it_fails(spark):
    rows = [
        row(when="bad", state="", posted=""),
        row(when="bad2", state="", posted="1/1/19"),
        row(when="1/1/18 1:00", state="", posted="1/1/19"),
    ]
    assert outcomes(spark, rows) == {
        "bad": "posted",
        "bad2": "sighting_date",
        "1/1/18 1:00": "state",
    }


# Aggregate, rejects and quality report.
def test_count_by_month_and_state(spark):
    rows = [
        row(when="1/5/19 1:00", state="CA", posted="2/1/19"),
        row(when="1/6/19 1:00", state="ca", posted="2/1/19"),
        row(when="1/7/19 1:00", state="NY", posted="2/1/19"),
        row(when="2/7/19 1:00", state="CA", posted="2/8/19"),
        row(when="2/7/19 1:00", state="CA", posted="2/8/19"),  # a duplicate: counted once
        row(when="2/8/19 1:00", state="ON", posted="2/8/19"),  # rejected
    ]
    got = job.transform_count_by_month_state(classify(spark, rows))
    expected = spark.createDataFrame(
        [("2019-01", "CA", 2), ("2019-01", "NY", 1), ("2019-02", "CA", 1)],
        "month string, state string, sightings long",
    )
    assertDataFrameEqual(got, expected)


def test_rejects_keep_the_original_fields_and_the_reason(spark):
    bad = row(when="unknown", state=" on ", summary='He said "look",\nthen ran')
    got = job.transform_rejects(classify(spark, [bad, row()])).collect()
    assert [list(r) for r in got] == [bad + ["sighting_date"]]
    assert job.transform_rejects(classify(spark, [row()])).columns == HEADER + ["reason"]


def test_quality_report_adds_up(spark):
    rows = [
        HEADER,
        row(),
        row(),
        row(posted=""),
        row(state=""),
        row(when="x"),
        row(posted="4/1/19", when="y"),
    ]
    report = job.quality_report(counts(spark, rows), RUN)
    assert report == {
        "run_date": "2019-03-29",
        "input": 7,
        "header_repeat": 1,
        "duplicate": 1,
        "after_run_date": 1,
        "valid": 1,
        "rejected": 3,
        "rejected_by_reason": {"posted": 1, "sighting_date": 1, "state": 1},
    }


def test_quality_report_refuses_counts_that_do_not_add_up():
    with pytest.raises(AssertionError):
        job.quality_report({"valid": 1, "bogus": 1}, RUN)
