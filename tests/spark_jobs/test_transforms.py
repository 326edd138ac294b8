"""The Spark transforms of spark_jobs/aggregate_by_state.py, one data rule at a time."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from spark_jobs import aggregate_by_state as job
from tests.lakefiles import aggregate_counts

pytestmark = pytest.mark.spark

RUN = dt.date(2019, 3, 29)
HEADER = ["Date / Time", "City", "State", "Shape", "Duration", "Summary", "Posted"]


def row(when="6/13/11 22:18", city="Ardenvoir", state="WA", posted="6/20/11", shape="Light",
        duration="1 minute", summary="a bright white light"):  # fmt: skip
    return [when, city, state, shape, duration, summary, posted]


def classify(spark, rows, header=HEADER):
    raw = spark.createDataFrame(rows, schema=header)
    layout, _names, selected = job.transform_select_columns(raw)
    return job.transform_classify(job.transform_distinct_by_text(selected), layout)


def grouped(spark, rows, run_dates=(RUN,), header=HEADER):
    """What the job derives its outputs from: the classified rows, folded by outcome, collected."""
    classified = job.transform_keep_reject_text(classify(spark, rows, header))
    return job.transform_group_outcomes(classified, list(run_dates)).toArrow()


def in_snapshot(outcome: str, posted_date, run_date) -> str:
    """A distinct row's outcome on ``run_date``: data rule 7, written out here for the tests."""
    if outcome in ("header_repeat", "posted") or posted_date <= run_date:
        return outcome
    return "after_run_date"


def outcomes(spark, rows, run_date=RUN) -> dict[str, str]:
    """Outcome per distinct row on ``run_date``, keyed by its Date / Time field."""
    return {
        r["f0"]: in_snapshot(r["outcome"], r["posted_date"], run_date)
        for r in classify(spark, rows).collect()
    }


def counts(spark, rows, run_date=RUN) -> dict[str, int]:
    report = job.snapshot_counts(job.outcome_counts(grouped(spark, rows, [run_date])), run_date)
    flat = {
        k: v for k, v in report.items() if isinstance(v, int) and k != "input" and k != "rejected"
    }
    flat.update(report["rejected_by_reason"])
    return {k: v for k, v in flat.items() if v}


# Rule 1: the layout.
def test_header_is_matched_ignoring_case_and_spaces_and_extra_columns_are_ignored(spark):
    header = [" date / time ", "CITY", "State", "shape", "Duration", "Summary", "POSTED ", "Extra"]
    raw = spark.createDataFrame([row() + ["x"]], schema=header)
    layout, names, selected = job.transform_select_columns(raw)
    assert layout.name == "index"
    assert names == tuple(header[:7])  # the source's own spelling, for the rejects
    assert selected.columns == ["f0", "f1", "f2", "f3", "f4", "f5", "f6", "_record"]
    assert selected.first()["f2"] == "WA"


def test_a_repeated_column_name_takes_the_first(spark):
    raw = spark.createDataFrame([row() + ["ON"]], schema=HEADER + ["state"])
    _layout, names, selected = job.transform_select_columns(raw)
    assert names[2] == "State" and selected.first()["f2"] == "WA"


def test_another_layout_names_the_missing_columns(spark):
    raw = spark.createDataFrame([["1", "2", "3"]], schema=["Date / Time", "City", "state_code"])
    with pytest.raises(job.LayoutError) as err:
        job.transform_select_columns(raw)
    assert str(err.value).startswith(
        "header 'Date / Time', 'City', 'state_code': the closest layout, NUFORC report index, "
        "also needs 'State', 'Shape', 'Duration', 'Summary', 'Posted'. Rename or add them, or "
        "declare your layout in UFO_LAYOUTS (docs/how-to/declare-a-layout.md)"
    )


def test_missing_values_become_empty_strings(spark):
    raw = spark.createDataFrame([[None] * 7], schema="`Date / Time` string, City string, "
                                "State string, Shape string, Duration string, Summary string, Posted string")  # fmt: skip
    assert list(job.transform_select_columns(raw)[2].first()) == [""] * 8  # and _record


# Rules 3 and 4: repeated headers and exact duplicates.
def test_header_repeats_are_counted_and_duplicates_kept_once(spark):
    rows = [HEADER, HEADER, [h.upper() for h in HEADER], row(), row(), row(), row(city="Other")]
    assert counts(spark, rows) == {"header_repeat": 3, "duplicate": 2, "valid": 2}


def test_rows_differing_in_one_field_are_not_duplicates(spark):
    rows = [row(), row(summary="a bright white light."), row(duration="")]
    assert counts(spark, rows) == {"valid": 3}


# Rule 6: Posted (rule 5, columns: test_layout_rules.py).
@pytest.mark.parametrize(
    "posted", ["", "2019-03-01", "13/1/19", "2/30/19", "1/1/2019", "0/5/19", "1/1/19 12:00", "x"]
)
def test_rows_without_a_valid_posted_date_are_rejected(spark, posted):
    assert outcomes(spark, [row(when="1/1/19 10:00", posted=posted)]) == {"1/1/19 10:00": "posted"}


def test_posted_years_70_and_later_are_19yy(spark):
    # Posted 1/2/70 is 1970 (before the run); 1/2/69 is 2069 (after it).
    rows = [row(when="1/1/70 10:00", posted="1/2/70"), row(when="1/1/69 10:00", posted="1/2/69")]
    assert outcomes(spark, rows) == {"1/1/70 10:00": "valid", "1/1/69 10:00": "after_run_date"}


# Rule 7: the run date.
def test_reports_posted_after_the_run_date_are_not_in_the_snapshot(spark):
    rows = [row(when="3/28/19 1:00", posted="3/29/19"), row(when="3/29/19 1:00", posted="3/30/19")]
    assert outcomes(spark, rows) == {"3/28/19 1:00": "valid", "3/29/19 1:00": "after_run_date"}
    assert counts(spark, rows) == {"valid": 1, "after_run_date": 1}


def test_after_run_date_is_checked_before_the_sighting_date_and_state(spark):
    rows = [row(when="unknown", state="", posted="4/1/19")]
    assert outcomes(spark, rows) == {"unknown": "after_run_date"}


# Rule 8: Date / Time.
@pytest.mark.parametrize(
    "when",
    ["", "21:00", "unknown", "04/00/80 23:00", "00/00/99 22:30", "1/1/2010 10:00", "09/0?/96 22:30",
     "2/30/10 10:00", "1/1/10 25:00", "1/1/10 10:60", "1/1/10 10:5", "1/1/10 10", "13/1/10"],
)  # fmt: skip
def test_bad_sighting_dates_are_rejected(spark, when):
    assert outcomes(spark, [row(when=when, posted="3/1/19")]) == {when: "sighting_date"}


def test_a_month_is_its_year_in_four_digits_and_its_month_in_two(spark):
    days = [dt.date(1, 1, 1), dt.date(999, 12, 31), dt.date(1999, 11, 18), dt.date(9999, 2, 3)]
    frame = spark.createDataFrame([(d,) for d in days], "day date")
    got = [r[0] for r in frame.select(job._year_month(F.col("day"))).collect()]
    assert got == [f"{d.year:04d}-{d.month:02d}" for d in days]


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


# Rule 9: the state.
def test_states_are_trimmed_and_upper_cased(spark):
    rows = [row(when="1/1/10 1:00", state=" fl "), row(when="1/2/10 1:00", state="Ca")]
    got = {r["f0"]: (r["outcome"], r["state_code"]) for r in classify(spark, rows).collect()}
    assert got == {"1/1/10 1:00": ("valid", "FL"), "1/2/10 1:00": ("valid", "CA")}


@pytest.mark.parametrize("state", ["", "ON", "BC", "PR", "XX", "C A"])
def test_non_us_states_are_rejected(spark, state):
    assert outcomes(spark, [row(state=state)]) == {"6/13/11 22:18": "state"}


def test_dc_counts_as_a_state(spark):
    assert outcomes(spark, [row(state="DC")]) == {"6/13/11 22:18": "valid"}


# Rule 10: the first failing rule wins.
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
def aggregate(spark, rows, run_dates):
    """Each run date's counts, as the job draws them from the steps Spark counts."""
    steps = job.count_steps(grouped(spark, rows, run_dates))
    found = [
        (day, r["month"], r["state"], r["sightings"])
        for day in run_dates
        for r in job.counts_on(steps, day).to_pylist()
    ]
    return spark.createDataFrame(found, "date date, month string, state string, sightings long")


def test_count_by_month_and_state(spark):
    rows = [
        row(when="1/5/19 1:00", state="CA", posted="2/1/19"),
        row(when="1/6/19 1:00", state="ca", posted="2/1/19"),
        row(when="1/7/19 1:00", state="NY", posted="2/1/19"),
        row(when="2/7/19 1:00", state="CA", posted="2/8/19"),
        row(when="2/7/19 1:00", state="CA", posted="2/8/19"),  # a duplicate: counted once
        row(when="2/8/19 1:00", state="ON", posted="2/8/19"),  # rejected
    ]
    expected = spark.createDataFrame(
        [(RUN, "2019-01", "CA", 2), (RUN, "2019-01", "NY", 1), (RUN, "2019-02", "CA", 1)],
        "date date, month string, state string, sightings long",
    )  # fmt: skip
    assertDataFrameEqual(aggregate(spark, rows, [RUN]), expected)


def test_every_run_date_counts_what_was_posted_by_then(spark):
    rows = [
        row(when="1/5/19 1:00", state="CA", posted="1/10/19"),
        row(when="1/6/19 1:00", state="CA", posted="1/12/19"),
        row(when="1/7/19 1:00", state="NY", posted="1/12/19"),
        row(when="1/8/19 1:00", state="CA", posted="1/20/19"),
    ]
    days = [dt.date(2019, 1, d) for d in (9, 10, 11, 12, 25)]
    got = {
        (r["date"].isoformat(), r["state"]): r["sightings"]
        for r in aggregate(spark, rows, days).collect()
    }
    assert got == {
        ("2019-01-10", "CA"): 1, ("2019-01-11", "CA"): 1,
        ("2019-01-12", "CA"): 2, ("2019-01-12", "NY"): 1,
        ("2019-01-25", "CA"): 3, ("2019-01-25", "NY"): 1,
    }  # fmt: skip


def rejects(spark, rows, run_dates=(RUN,), names=tuple(HEADER)):
    """The dated rejects of ``rows``, as the job writes them: a dict per row."""
    found = job.rejected_rows(grouped(spark, rows, list(run_dates)), names)
    return job.dated_rejects(found, names, list(run_dates))


def test_rejects_keep_the_original_fields_and_the_reason(spark):
    bad = row(when="unknown", state=" on ", summary='He said "look",\nthen ran')
    got = rejects(spark, [bad, row()]).to_pylist()
    assert [list(r.values()) for r in got] == [bad + ["", "sighting_date", "2019-03-29"]]
    assert rejects(spark, [row()]).column_names == HEADER + ["_record", "reason", "since"]


def test_rejects_are_written_a_file_per_first_date_sorted_by_reason(spark, tmp_path):
    """Each ``since`` is one CSV with the header; read back with Python's csv module, the
    fields are as they came (quotes, commas, line feeds, spaces)."""
    days = [dt.date(2019, 1, 11), dt.date(2019, 1, 15)]
    rows = [
        row(when="x1", posted="1/10/19", summary='He said "look",\nthen ran'),
        row(when="1/5/19 1:00", state="ON", posted="1/10/19", summary="  spaced  "),
        row(when="x3", posted="1/12/19"),
    ]
    job.load_rejects(rejects(spark, rows, days), str(tmp_path))
    found = {}
    for part in sorted(tmp_path.glob("since=*/*.csv")):
        with open(part, newline="", encoding="utf-8") as handle:
            found[part.parent.name] = [tuple(r) for r in csv.reader(handle)]
    header = (*HEADER, "_record", "reason")
    assert found == {
        "since=2019-01-11": [header, (*rows[0], "", "sighting_date"), (*rows[1], "", "state")],
        "since=2019-01-15": [header, (*rows[2], "", "sighting_date")],
    }


def test_a_reject_is_written_once_for_the_first_run_date_that_holds_it(spark):
    rows = [
        row(when="x1", posted="1/10/19"),
        row(when="x2", posted="1/12/19"),
        row(when="x3", posted="bad"),
        row(when="x4", posted="2/1/19"),  # after every run date: in no snapshot
    ]
    days = [dt.date(2019, 1, 11), dt.date(2019, 1, 15)]
    got = {r["Date / Time"]: r["since"] for r in rejects(spark, rows, days).to_pylist()}
    assert got == {"x1": "2019-01-11", "x2": "2019-01-15", "x3": "2019-01-11"}


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
    report = job.snapshot_counts(job.outcome_counts(grouped(spark, rows)), RUN)
    assert report == {
        "run_date": "2019-03-29",
        "input": 7,
        "header_repeat": 1,
        "duplicate": 1,
        "after_run_date": 1,
        "valid": 1,
        "rejected": 3,
        "rejected_by_reason": {"columns": 0, "posted": 1, "sighting_date": 1, "state": 1},
    }


def test_quality_report_refuses_counts_that_do_not_add_up():
    with pytest.raises(AssertionError):
        job.quality_report({"valid": 1, "bogus": 1}, RUN)


def test_surrounding_whitespace_is_ignored_in_dates_and_states(spark):
    rows = [row(when="\t6/13/11 22:18 ", state=" wa\r\n", posted=" 6/20/11\t")]
    assert outcomes(spark, rows) == {"\t6/13/11 22:18 ": "valid"}


# The NUFORC site export layout.
EXPORT = ["details", "date", "city", "state", "country", "shape", "summary", "report_date",
          "posted_date", "image"]  # fmt: skip


def export_row(date="6/13/2011 22:18", state="WA", country="USA", posted="6/20/2011", n=1):
    return [f"https://nuforc.org/sighting/?id={n}", date, "Seattle", state, country, "Light",
            "a light", "6/14/2011", posted, ""]  # fmt: skip


@pytest.mark.parametrize(
    "date, state, country, posted, outcome",
    [
        ("6/13/2011 22:18", "WA", "USA", "6/20/2011", "valid"),
        ("06/03/2011", " wa ", " usa ", " 6/20/2011 ", "valid"),  # padded, no time
        ("6/13/2011 24:00", "DC", "USA", "6/20/2011", "valid"),
        ("6/13/2011 22:18", "WA", "Australia", "6/20/2011", "state"),  # Western Australia
        ("6/13/2011 22:18", "Tasmania", "Australia", "6/20/2011", "state"),
        ("6/13/2011 22:18", "-", "USA", "6/20/2011", "state"),
        ("6/13/2011 22:18", "ON", "Canada", "6/20/2011", "state"),
        ("6/13/11 22:18", "WA", "USA", "6/20/2011", "sighting_date"),  # a 2-digit year
        ("6/31/2011", "WA", "USA", "6/20/2011", "sighting_date"),
        ("6/13/2011 22:60", "WA", "USA", "6/20/2011", "sighting_date"),
        ("6/13/2011 22:18", "WA", "USA", "6/20/11", "posted"),
        ("6/13/2011 22:18", "WA", "USA", "", "posted"),
        ("6/13/2011 22:18", "WA", "USA", "4/1/2019", "after_run_date"),
    ],
)
def test_export_layout_rules(spark, date, state, country, posted, outcome):
    [got] = classify(spark, [export_row(date, state, country, posted)], header=EXPORT).collect()
    assert in_snapshot(got["outcome"], got["posted_date"], RUN) == outcome


def test_export_layout_sighting_month_and_state(spark):
    raw = spark.createDataFrame(
        [export_row("12/31/2018 23:59", " tx ", "USA", "1/2/2019")], schema=EXPORT
    )
    layout, _names, selected = job.transform_select_columns(raw)
    assert layout.name == "export"
    [got] = job.transform_classify(job.transform_distinct_by_text(selected), layout).collect()
    assert (got["outcome"], got["month"], got["state_code"]) == ("valid", "2018-12", "TX")


def test_rejects_of_the_export_layout_keep_its_own_posted_date_column(spark):
    raw = spark.createDataFrame([export_row(state="ON", country="Canada")], schema=EXPORT)
    layout, names, selected = job.transform_select_columns(raw)
    classified = job.transform_keep_reject_text(
        job.transform_classify(job.transform_distinct_by_text(selected), layout)
    )
    found = job.rejected_rows(job.transform_group_outcomes(classified, [RUN]).toArrow(), names)
    [got] = job.dated_rejects(found, names, [RUN]).to_pylist()
    assert got["posted_date"] == "6/20/2011" and got["reason"] == "state"
    assert got["since"] == "2019-03-29"


def test_distinct_rows_are_exact_and_counted(spark):
    # Rows differing in one field only, or in spacing, stay apart; copies fold into one with n.
    a, b = row(), row(summary="a bright white light ")
    rows = [a, a, a, b, row(city="ardenvoir"), b, row(when="1/1/19 1:00")]
    selected = job.transform_select_columns(spark.createDataFrame(rows, schema=HEADER))[2]
    expected: dict[tuple, int] = {}
    for r in rows:  # counted here in plain Python
        expected[tuple(r)] = expected.get(tuple(r), 0) + 1
    distinct = job.transform_distinct_by_text(selected)
    got = {tuple(r[job.field(i)] for i in range(len(HEADER))): r["n"] for r in distinct.collect()}
    assert got == expected
    # Flagged instead: a row shares its hash exactly when its text comes more than once here.
    flagged = job.transform_flag_shared(selected, job.transform_shared_hashes(selected))
    got = {tuple(r[job.field(i)] for i in range(len(HEADER))): (r["n"], r[job.SHARED])
           for r in flagged.collect()}  # fmt: skip
    assert got == {text: (1, count > 1) for text, count in expected.items()}
    assert flagged.count() == len(rows)


def test_shared_hashes_are_counted_in_the_partitions_asked_for_even_when_adaptive(spark):
    # Coalesced by adaptive execution into one partition per core, the hashes of a large input
    # would spill: the stated count must reach the plan, and the hashes found must not change.
    rows = [row(), row(), row(city="x"), row(city="y"), row(city="y"), row(city="y"), HEADER]
    selected = job.transform_select_columns(spark.createDataFrame(rows, schema=HEADER))[2]
    expected = {  # the hashes of the rows that occur more than once, counted here
        h for h, in job._hashed(selected).groupBy("_hash").count().where("count > 1")
        .select("_hash").collect()
    }  # fmt: skip
    assert len(expected) == 2
    before = spark.conf.get("spark.sql.adaptive.enabled")
    spark.conf.set("spark.sql.adaptive.enabled", "true")
    try:
        shared = job.transform_shared_hashes(selected, partitions=7)
        assert {h for (h,) in shared.collect()} == expected
        plan = shared._jdf.queryExecution().executedPlan().toString()
        assert "hashpartitioning(_hash" in plan and ", 7), REPARTITION_BY_NUM" in plan
    finally:
        spark.conf.set("spark.sql.adaptive.enabled", before)


@pytest.mark.parametrize(
    "nbytes,cores,partitions",
    [(0, 2, 2), (8 << 20, 2, 2), (171 << 20, 2, 11), (171 << 20, 16, 16), ((16 << 20) + 1, 1, 2)],
)
def test_hash_partitions_hold_about_16_mb_of_input_each_and_one_per_core_at_least(
    nbytes, cores, partitions
):
    assert job.hash_partitions(nbytes, cores) == partitions


def test_the_ways_to_the_distinct_rows_give_the_same_figures(spark, tmp_path, monkeypatch):
    # Shared hashes flagged; past MAX_SHARED_HASHES, grouped by text; a small input, by text
    # from the start; and a hash so weak that every row shares it with others (collisions,
    # which only the rows' text tells apart). The figures must not change, and are checked here
    # by hand.
    spaced = row(summary="a bright white light ")
    rows = [row(), row(), row(state="ON"), HEADER, row(when="x"), row(when="x"), spaced]
    source = str(tmp_path / "raw")
    spark.createDataFrame(rows, schema=HEADER).write.parquet(source)
    hashed = job._hashed

    def weak(frame):  # two values for every row: the parity of its first field's length
        return frame.select(*frame.columns, (F.length(frame.columns[0]) % 2).alias("_hash"))

    outputs = []
    for name, limit, by_text, hashing in (
        ("hashes", job.MAX_SHARED_HASHES, False, hashed), ("many", 0, False, hashed),
        ("small", job.MAX_SHARED_HASHES, True, hashed), ("weak", job.MAX_SHARED_HASHES, False, weak),
    ):  # fmt: skip
        monkeypatch.setattr(job, "MAX_SHARED_HASHES", limit)
        monkeypatch.setattr(job, "_hashed", hashing)
        out = str(tmp_path / name)
        reports = job.run_group(spark, source, [RUN], out, by_text=by_text)[1]
        parts = sorted(Path(out).glob("aggregated/date=*/*.parquet"))
        rejected = sorted(
            (r["Date / Time"], r["reason"]) for p in sorted(Path(out).glob("rejects/*/*.csv"))
            for r in csv.DictReader(p.open(newline=""))
        )  # fmt: skip
        outputs.append((reports, aggregate_counts(p.read_bytes() for p in parts), rejected))
    assert outputs[0] == outputs[1] == outputs[2] == outputs[3]
    assert outputs[0][1] == {("2011-06", "WA"): 2}
    assert outputs[0][2] == [("6/13/11 22:18", "state"), ("x", "sighting_date")]
    report = outputs[0][0]["2019-03-29"]
    assert (report["input"], report["duplicate"], report["header_repeat"]) == (7, 2, 1)
    assert (report["valid"], report["rejected"]) == (2, 2)
    assert report["rejected_by_reason"] == {"columns": 0, "posted": 0, "sighting_date": 1,
                                            "state": 1}  # fmt: skip


def test_a_batch_writes_one_aggregate_file_per_run_date(spark, tmp_path):
    """Each date's counts are one Parquet file of the aggregate's columns and types."""
    days = [dt.date(2019, 1, 1) + dt.timedelta(days=i) for i in range(101)]
    rows = [
        row(when="12/5/18 1:00", state="CA", posted="12/20/18"),
        row(when="1/6/19 1:00", state="NY", posted="2/10/19"),
    ]
    steps = job.count_steps(grouped(spark, rows, days))
    job.load_counts(steps, days, str(tmp_path / "aggregated"))
    for day in days:
        [part] = (tmp_path / "aggregated" / f"date={day}").glob("*.parquet")
        assert pq.read_schema(part).names == ["month", "state", "sightings"]
        assert pq.read_table(part).schema.field("sightings").type == pa.int64()
        got = dict(aggregate_counts([part.read_bytes()]))
        expected = {("2018-12", "CA"): 1} | (
            {("2019-01", "NY"): 1} if day >= dt.date(2019, 2, 10) else {}
        )
        assert got == expected, day


def test_run_dates_share_a_snapshot_until_a_report_is_posted_between_them():
    d = [dt.date(2019, 3, n) for n in range(1, 8)]
    posted = [None, d[0], d[2], d[2], dt.date(2019, 3, 9)]  # None: a row without a Posted date
    firsts = job.first_of_equal_snapshots(posted, [d[6], *d[:6]])
    # Posted on 3/1 and 3/3: 3/1-3/2 see one snapshot, 3/3-3/7 the next.
    assert firsts == {d[0]: d[0], d[1]: d[0], **{day: d[2] for day in d[2:]}}
    assert job.first_of_equal_snapshots([], d[:2]) == {d[0]: d[0], d[1]: d[0]}


def test_the_jvms_case_mappings_give_the_strings_that_icus_and_pythons_do(spark):
    # The job upper-cases states and lower-cases header and country fields with the JVM's case
    # mappings (ICU's cost half the classification's time): the strings must not change.
    words = ["wa", " Ca ", "ıl", "straße", "ǅ", "İstanbul", "ﬁ", "ΟΔΟΣ", "ｗａ", "Ω", ""]
    frame = spark.createDataFrame([(w,) for w in words], ["w"])
    mapped = {}
    try:
        for icu in ("true", "false"):
            spark.conf.set(job.ICU_CASE_MAPPINGS, icu)
            rows = frame.select(F.upper("w"), F.lower("w")).collect()
            mapped[icu] = [(r[0], r[1]) for r in rows]
        spark.conf.unset(job.ICU_CASE_MAPPINGS)
        job.use_jvm_case_mappings(spark)  # not configured by the user: the JVM's
        assert spark.conf.get(job.ICU_CASE_MAPPINGS) == "false"
    finally:
        spark.conf.unset(job.ICU_CASE_MAPPINGS)
    assert mapped["true"] == mapped["false"] == [(w.upper(), w.lower()) for w in words]


def test_count_steps_match_a_count_of_every_step_by_brute_force():
    """``count_steps`` on a collected frame of several series, against sums worked out here."""
    import random

    rand = random.Random(7)
    days = [dt.date(2019, 1, 1) + dt.timedelta(days=i) for i in range(40)]
    records = [
        {"outcome": rand.choice(["valid", "valid", "state"]), "posted_date": rand.choice(days),
         "month": rand.choice(["2018-12", "2019-01"]), "state_code": rand.choice(["CA", "NY", "WA"]),
         "rows": rand.randint(1, 5)}
        for _ in range(300)
    ]  # fmt: skip
    steps = job.count_steps(pa.Table.from_pylist(records)).to_pylist()
    valid = [r for r in records if r["outcome"] == "valid"]
    expected = []
    for key in sorted({(r["month"], r["state_code"]) for r in valid}):
        posted = sorted({r["posted_date"] for r in valid if (r["month"], r["state_code"]) == key})
        for i, since in enumerate(posted):
            total = sum(
                r["rows"] for r in valid
                if (r["month"], r["state_code"]) == key and r["posted_date"] <= since
            )  # fmt: skip
            until = posted[i + 1] if i + 1 < len(posted) else None
            expected.append({"month": key[0], "state": key[1], "since": since, "until": until,
                             "sightings": total})  # fmt: skip
    assert steps == expected
    none = pa.Table.from_pylist(
        [r for r in records if r["outcome"] != "valid"], schema=pa.Table.from_pylist(records).schema
    )
    assert job.count_steps(none).num_rows == 0
    one = pa.Table.from_pylist(valid[:1], schema=none.schema)
    assert job.count_steps(one).to_pylist() == [
        {"month": valid[0]["month"], "state": valid[0]["state_code"],
         "since": valid[0]["posted_date"], "until": None, "sightings": valid[0]["rows"]}
    ]  # fmt: skip
