"""The execution summary's text from Luigi's grouping of a run's tasks (etl/pipeline/summary.py)."""

from __future__ import annotations

import datetime as dt

from etl.pipeline import AggregateUFOsByState, ReadUFOs, TopTenStates
from etl.pipeline.rundates import RunDateParameter
from etl.pipeline.summary import render

DAYS = [dt.date(2019, 3, 1) + dt.timedelta(days=n) for n in range(28)]
VERDICT = "This progress looks :) because there were no failed tasks or missing dependencies"


def batch(cls, days):
    return cls(date=RunDateParameter().parse(",".join(map(str, days))))


def test_a_batch_that_ran_is_said_once_by_its_date_range():
    ran = {batch(ReadUFOs, DAYS), *(ReadUFOs(date=d) for d in DAYS)}
    # Luigi lists the batch itself among the complete ones once its dates are done.
    groups = {"completed": ran, "already_done": {batch(ReadUFOs, DAYS)}}
    assert render(groups, VERDICT).splitlines() == [
        "Scheduled 28 tasks of which:",
        "* 28 ran successfully:",
        "    - ReadUFOs(date=2019-03-01..2019-03-28 (28 dates))",
        "",
        VERDICT,
    ]


def test_each_outcome_lists_what_it_holds_and_a_failure_comes_first():
    groups = {
        "already_done": {ReadUFOs(date=DAYS[0]), ReadUFOs(date=DAYS[1])},
        "completed": {AggregateUFOsByState(date=DAYS[1])},
        "failed": {TopTenStates(date=DAYS[1]), TopTenStates(date=DAYS[0])},
        "upstream_failure": {TopTenStates(date=DAYS[0])},  # said under failed already
    }
    text = render(groups, "V")
    assert text.splitlines() == [
        "Scheduled 5 tasks of which:",
        "* 2 failed:",
        "    - TopTenStates(date=2019-03-01..2019-03-02 (2 dates))",
        "* 1 ran successfully:",
        "    - AggregateUFOsByState(date=2019-03-02)",
        "* 2 complete ones were encountered:",
        "    - ReadUFOs(date=2019-03-01..2019-03-02 (2 dates))",
        "",
        "V",
    ]
    assert "force" not in text and "capture_output" not in text


def test_nothing_scheduled():
    assert render({}, "V") == "Did not schedule any tasks"
