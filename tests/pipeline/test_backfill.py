"""Backfills with Luigi's RangeDaily: every date in a range, dates already done skipped."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import sqlalchemy as sa

from etl.tools import sample
from tests import reference
from tests.support import pipeline_env, run_luigi

pytestmark = [pytest.mark.integration, pytest.mark.spark]

DAYS = [dt.date(2019, 3, 26), dt.date(2019, 3, 27), dt.date(2019, 3, 28)]


def test_backfill_a_range_of_run_dates(tmp_path, database_url):
    source = tmp_path / "index.csv"
    with open(source, "w", encoding="utf-8", newline="") as out:
        # Posted dates run up to the last day, so each run date has its own snapshot.
        sample.write(
            out,
            sample.generate(2000, until=DAYS[-1], seed=5, start=DAYS[0] - dt.timedelta(days=30)),
        )
    env = pipeline_env(str(tmp_path / "lake"), database_url, str(source))

    # One date done beforehand: the backfill must leave it alone.
    first = run_luigi(
        "TopStatesToDatabase", "--date", DAYS[1].isoformat(), "--local-scheduler", env=env
    )
    assert first.returncode == 0, first.stderr[-3000:]
    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        done_at = conn.execute(sa.text("SELECT finished_at FROM ufo_runs")).scalar_one()

    result = run_luigi(
        "RangeDaily", "--of", "TopStatesToDatabase",
        "--start", DAYS[0].isoformat(), "--stop", (DAYS[-1] + dt.timedelta(days=1)).isoformat(),
        "--days-back", "36500",  # RangeDaily looks 100 days back from today by default
        "--local-scheduler", "--workers", "2", env=env, timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]

    with engine.connect() as conn:
        runs = dict(conn.execute(sa.text("SELECT run_date, finished_at FROM ufo_runs")).all())
        top = conn.execute(
            sa.text(
                "SELECT run_date, rank, state, sightings FROM top_states WHERE period = 'all' ORDER BY 1, 2"
            )
        ).all()
    engine.dispose()
    assert sorted(runs) == DAYS
    assert runs[DAYS[1]] == done_at  # skipped: already done
    data = source.read_bytes()
    for day in DAYS:
        expected = [
            (day, i, s, n)
            for i, (s, n) in enumerate(reference.classify(data, day).top_ten(), start=1)
        ]
        assert [tuple(r) for r in top if r[0] == day] == expected
        assert (tmp_path / "lake" / f"aggregated/date={day}/_MANIFEST.json").exists()
    # The two missing dates in one batch: one spark-submit for both.
    output = result.stdout + result.stderr
    assert output.count("Running command: ") == 1, output[-3000:]
    assert "AggregateUFOsByState(date=2019-03-26,2019-03-28)" in output
    # Its publishing progress counts the publishing's own time, not the Spark run's before it.
    spark_run = float(re.search(r"in one Spark run of ([\d.]+) s", output).group(1))
    so_far = [float(x) for x in re.findall(r"AggregateUFOsByState published: \d+ of \d+ dates, "
                                           r"([\d.]+) s so far", output)]  # fmt: skip
    assert so_far and max(so_far) < spark_run, (so_far, spark_run)
    # The snapshots differ: each date counts only what was posted by then.
    assert [tuple(r[1:]) for r in top if r[0] == DAYS[0]] != [
        tuple(r[1:]) for r in top if r[0] == DAYS[-1]
    ]
