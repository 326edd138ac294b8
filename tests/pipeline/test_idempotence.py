"""Re-running a date leaves the same rows; a run for an earlier date leaves later ones alone."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from etl.tools import sample
from tests import reference
from tests.support import pipeline_env, run_luigi

pytestmark = [pytest.mark.integration, pytest.mark.spark]

LATER, EARLIER = dt.date(2019, 3, 29), dt.date(2019, 3, 28)
# Reports posted on the later run date: in its snapshot, not in the earlier one's.
POSTED_ON_LATER = [
    ["3/27/19 21:00", "Miami", "FL", "Light", "1 min", "late report", "3/29/19"],
    ["3/27/19 22:00", "Miami", "fl", "Disk", "2 min", "late report 2", "3/29/19"],
    ["3/28/19 23:00", "Toronto (Canada)", "ON", "Light", "1 min", "late, foreign", "3/29/19"],
]


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "index.csv"
    rows = list(sample.generate(3000, until=EARLIER, seed=11)) + POSTED_ON_LATER
    with open(path, "w", encoding="utf-8", newline="") as out:
        sample.write(out, iter(rows))
    return path


def snapshot(url: str) -> dict[str, list[tuple]]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        out = {
            "top_states": conn.execute(
                sa.text("SELECT * FROM top_states ORDER BY run_date, period, rank")
            ).all(),
            "state_sightings": conn.execute(
                sa.text("SELECT * FROM state_sightings ORDER BY run_date, period, state")
            ).all(),
            "ufo_runs": conn.execute(
                sa.text(
                    "SELECT run_date, input, valid, rejected, after_run_date FROM ufo_runs ORDER BY run_date"
                )
            ).all(),
        }
    engine.dispose()
    return {k: [tuple(r) for r in v] for k, v in out.items()}


def finished_at(url: str, day: dt.date):
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        value = conn.execute(
            sa.text("SELECT finished_at FROM ufo_runs WHERE run_date = :d"), {"d": day}
        ).scalar()
    engine.dispose()
    return value


def run(env, day: dt.date, *flags: str):
    result = run_luigi(
        "TopStatesToDatabase", "--date", day.isoformat(), "--local-scheduler", *flags, env=env
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return result


def expected_top(source, day: dt.date) -> list[tuple]:
    exp = reference.classify(source.read_bytes(), day)
    rows = [(day, "all", i, s, n) for i, (s, n) in enumerate(exp.top_ten(), start=1)]
    for month in exp.months():
        rows += [(day, month, i, s, n) for i, (s, n) in enumerate(exp.top_ten(month), start=1)]
    return sorted(rows)


def test_reruns_and_earlier_dates(tmp_path, source, database_url):
    env = pipeline_env(str(tmp_path / "lake"), database_url, str(source))

    run(env, LATER)
    first = snapshot(database_url)
    assert sorted(first["top_states"]) == expected_top(source, LATER)

    # The same date again: nothing to do, nothing changes.
    again = run(env, LATER)
    assert "complete ones were encountered" in again.stdout + again.stderr
    assert snapshot(database_url) == first

    # Forced, upstream included: everything recomputed, the same rows, a new load time.
    loaded = finished_at(database_url, LATER)
    run(env, LATER, "--force-upstream")
    assert snapshot(database_url) == first
    assert finished_at(database_url, LATER) > loaded

    # An earlier date: its own rows, and the later date's rows untouched.
    run(env, EARLIER)
    both = snapshot(database_url)
    later_rows = [r for r in both["top_states"] if r[0] == LATER]
    earlier_rows = [r for r in both["top_states"] if r[0] == EARLIER]
    assert later_rows == first["top_states"]
    assert sorted(earlier_rows) == expected_top(source, EARLIER)
    runs = {r[0]: r for r in both["ufo_runs"]}
    assert runs[EARLIER][4] == 3 and runs[LATER][4] == 0  # after_run_date
    assert runs[EARLIER][2] == runs[LATER][2] - 2  # the two FL reports are only in the later one
