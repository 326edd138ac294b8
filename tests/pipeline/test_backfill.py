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
    # Everything on the terminal (Luigi's lines too), and every publishing step's progress.
    env = pipeline_env(str(tmp_path / "lake"), database_url, str(source),
                       UFO_VERBOSE="1", UFO_PROGRESS_SECONDS="0.000001")  # fmt: skip

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
    spark_run = float(re.search(r"; one Spark run of ([\d.]+) s", output).group(1))
    so_far = [float(x) for x in re.findall(r"AggregateUFOsByState [^:]*: published \d+ of \d+ "
                                           r"dates, ([\d.]+) s so far", output)]  # fmt: skip
    assert so_far and max(so_far) < spark_run, (so_far, spark_run)
    # The snapshots differ: each date counts only what was posted by then.
    assert [tuple(r[1:]) for r in top if r[0] == DAYS[0]] != [
        tuple(r[1:]) for r in top if r[0] == DAYS[-1]
    ]


def test_dates_with_the_same_snapshot_share_their_counts_and_stay_exact(tmp_path, database_url):
    """Reports posted on a few days only, as NUFORC posts: a batch of 14 run dates writes the
    counts once per distinct snapshot, and every date's figures still equal the reference."""
    import csv
    import json

    days = [dt.date(2019, 3, 10) + dt.timedelta(days=n) for n in range(14)]
    source = tmp_path / "index.csv"
    rows = list(sample.generate(600, until=days[-1], seed=9, start=days[0] - dt.timedelta(days=3)))
    posted_on = {days[0] - dt.timedelta(days=1), days[3], days[4], days[9]}
    posted = sorted(posted_on)
    for n, row in enumerate(rows):
        if row[-1] != "Posted" and re.fullmatch(r"\d+/\d+/\d+", row[-1]):
            day = posted[n % len(posted)]
            row[-1] = f"{day.month}/{day.day}/{day.year % 100:02d}"
    with open(source, "w", encoding="utf-8", newline="") as out:
        sample.write(out, iter(rows))
    env = pipeline_env(str(tmp_path / "lake"), database_url, str(source))
    span = f"{days[0]}..{days[-1]}"
    result = run_luigi("TopStatesToDatabase", "--date", span, "--local-scheduler", env=env)
    assert result.returncode == 0, result.stderr[-3000:]

    # Independently: the valid posted dates of the source, and which run dates see the same.
    with open(source, encoding="utf-8", newline="") as handle:
        seen = set()
        for row in csv.reader(handle):
            try:
                seen.add(dt.datetime.strptime(row[-1], "%m/%d/%y").date())
            except ValueError:
                pass
    snapshot_of = {day: len([p for p in seen if p <= day]) for day in days}
    files = {}
    for day in days:
        manifest = json.loads(
            (tmp_path / "lake" / f"aggregated/date={day}/_MANIFEST.json").read_text()
        )
        files[day] = tuple(manifest["files"]["aggregated"])
    for a in days:
        for b in days:
            assert (files[a] == files[b]) == (snapshot_of[a] == snapshot_of[b]), (a, b)
    assert len(set(files.values())) == len(set(snapshot_of.values())) == 4
    # The top ten files of dates with one snapshot share their bytes on disk (hard links).
    top10 = tmp_path / "lake" / "top10"
    inodes = {day: (top10 / f"date={day}" / "top_states.csv").stat().st_ino for day in days}
    assert len(set(inodes.values())) == 4

    data = source.read_bytes()
    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        for day in days:
            want = reference.classify(data, day)
            top = conn.execute(
                sa.text("SELECT state, sightings FROM top_states WHERE run_date = :d AND "
                        "period = 'all' ORDER BY rank"), {"d": day},
            ).all()  # fmt: skip
            assert [tuple(r) for r in top] == want.top_ten(), day
            run = conn.execute(
                sa.text("SELECT valid, rejected, after_run_date FROM ufo_runs WHERE run_date = :d"),
                {"d": day},
            ).one()
            quality = want.quality()
            assert tuple(run) == (quality["valid"], quality["rejected"], quality["after_run_date"])
    engine.dispose()
