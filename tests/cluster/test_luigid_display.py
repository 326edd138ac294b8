"""What luigid's UI shows of the pipeline's tasks: the run date(s), never ``force``.

ReadUFOs alone (no Spark, no database) against a real luigid; the UI draws what its JSON API
answers (``display_name`` and ``params`` of ``/api/task_list`` and ``/api/graph``).
"""

from __future__ import annotations

import datetime as dt
import re

import pytest

from etl.tools import sample
from tests.cluster.support import cluster_env, run_on

pytestmark = [pytest.mark.integration]

DAY = dt.date(2019, 3, 29)


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "index.csv"
    with open(path, "w", encoding="utf-8", newline="") as out:
        sample.write(out, sample.generate(500, until=DAY, seed=3))
    return path


def shown(luigid) -> dict[str, dict]:
    """display name -> params of every task luigid lists as done."""
    return {t["display_name"]: t["params"] for t in luigid.tasks("DONE").values()}


def test_forced_runs_show_their_date_and_no_force(luigid, tmp_path, source):
    env = cluster_env(tmp_path / "lake", "postgresql://unused@127.0.0.1:1/x", source, None)
    earlier = DAY - dt.timedelta(days=1)
    # DAY's output exists before the forced run replaces it (made without luigid: luigid ignores
    # a task's PENDING for stable_done_cooldown_secs after it was DONE).
    for args in (
        ("--local-scheduler",),
        ("--force",),
        ("--force-upstream", "--date", earlier.isoformat()),
    ):
        result = run_on(luigid, "ReadUFOs", "--date", DAY.isoformat(), *args, env=env)
        assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert shown(luigid) == {
        f"ReadUFOs(date={day})": {"date": day.isoformat()} for day in (DAY, earlier)
    }
    graph = luigid.api("graph")
    assert sorted(t["display_name"] for t in graph.values()) == sorted(shown(luigid))
    assert all(list(t["params"]) == ["date"] for t in graph.values())
    history = [params for _, family, params, _, _ in luigid.history() if family == "ReadUFOs"]
    assert history and all("date" in p for p in history)


def test_a_batch_shows_its_dates_as_spans(luigid, tmp_path, source):
    env = cluster_env(tmp_path / "lake", "postgresql://unused@127.0.0.1:1/x", source, None)
    result = run_on(
        luigid, "RangeDaily", "--of", "ReadUFOs", "--start", "2019-03-20", "--stop", "2019-03-30",
        "--days-back", "36500", env=env,
    )  # fmt: skip
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    names = shown(luigid)
    # The ten dates ran as one batch task, shown as one span; each date is listed on its own too.
    assert names["ReadUFOs(date=2019-03-20..2019-03-29)"] == {"date": "2019-03-20..2019-03-29"}
    for n in range(20, 30):
        assert f"ReadUFOs(date=2019-03-{n})" in names
    assert not any("force" in params for params in names.values())


@pytest.mark.spark
def test_the_spark_step_shows_its_date_only_and_its_ui_on_loopback(luigid, tmp_path, source):
    env = cluster_env(tmp_path / "lake", "postgresql://unused@127.0.0.1:1/x", source, None)
    result = run_on(luigid, "AggregateUFOsByState", "--date", DAY.isoformat(), env=env)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    names = shown(luigid)
    # Luigi's own capture_output parameter is not part of the name (nor of the params).
    assert names[f"AggregateUFOsByState(date={DAY})"] == {"date": DAY.isoformat()}
    [task] = [t for t in luigid.tasks("DONE").values() if t["name"] == "AggregateUFOsByState"]
    # The Spark UI's address: logged, in luigid as the tracking URL, and on loopback only.
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", task["tracking_url"] or ""), task
    assert f"Spark UI at {task['tracking_url']} while it runs" in result.stdout + result.stderr
    assert "UnconsumedParameterWarning" not in result.stdout + result.stderr
