"""The lake's commit protocol under kill -9: a run killed at any step publishes nothing partial.

A date is loaded from source A; then a forced re-run from source B is killed (the whole process
group, spark-submit included) at each step: while ReadUFOs writes its attempt, while Spark
writes its attempt, and after Spark finished but before the date's manifest is written. After
each kill, every published manifest must name files that exist and agree with one source, and
the next ordinary run must load a consistent date. A last forced run from B replaces it all.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from etl.tools import sample
from tests import reference
from tests.lakefiles import aggregate_counts
from tests.support import REPO, pipeline_env, run_luigi

pytestmark = [pytest.mark.integration, pytest.mark.spark]

DAY = dt.date(2019, 3, 29)


def write_source(path: Path, rows: int, seed: int) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as out:
        sample.write(out, sample.generate(rows, until=DAY, seed=seed))
    return path


def attempts(lake: Path, dataset: str) -> set[str]:
    found = set()
    for info in (lake / "_attempts").glob("*/_ATTEMPT.json"):
        if json.loads(info.read_text())["dataset"] == dataset:
            found.add(info.parent.name)
    return found


def published(lake: Path) -> dict:
    """What a reader sees: each manifest, with the files it names read back."""
    raw = json.loads((lake / f"raw/date={DAY}/_MANIFEST.json").read_text())
    agg = json.loads((lake / f"aggregated/date={DAY}/_MANIFEST.json").read_text())
    for rel in raw["files"]["records"] + [r for files in agg["files"].values() for r in files]:
        assert (lake / rel).is_file(), f"{rel} named by a manifest is missing"
    total = sum(
        aggregate_counts((lake / rel).read_bytes() for rel in agg["files"]["aggregated"]).values()
    )
    rejects = sum(
        1
        for rel in agg["files"]["rejects"]
        for _ in csv.DictReader(io.StringIO((lake / rel).read_text(), newline=""))
    )
    return {"raw": raw, "agg": agg, "valid_sum": total, "rejects": rejects}


def assert_consistent(view: dict, sources: dict[str, Path]) -> str:
    """The aggregate's files, its quality report and its source agree; which source it is."""
    agg = view["agg"]
    source = Path(agg["source"])
    expected = reference.classify(sources[source.name].read_bytes(), DAY).quality()
    assert {k: agg["quality"][k] for k in expected} == expected
    assert view["valid_sum"] == expected["valid"]
    assert view["rejects"] == expected["rejected"]
    return source.name


def database(url: str) -> tuple:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        runs = conn.execute(sa.text("SELECT source, valid FROM ufo_runs")).all()
        total = conn.execute(
            sa.text("SELECT sum(sightings) FROM state_sightings WHERE period = 'all'")
        ).scalar()
    engine.dispose()
    [(source, valid)] = runs
    return Path(source).name, valid, total


def kill_when(argv: list[str], env: dict, ready, timeout: float = 600) -> bool:
    """Run ``argv`` in its own process group; kill -9 the group once ``ready()``; if it did."""
    proc = subprocess.Popen(argv, env=env, cwd=REPO, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if ready():
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(30)
                return True
            if proc.poll() is not None:
                return False
            time.sleep(0.02)
        raise AssertionError("the kill point was never reached")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)


def test_a_run_killed_at_any_step_publishes_old_or_new_never_a_mix(tmp_path, database_url):
    sources = {
        "a.csv": write_source(tmp_path / "a.csv", 3000, seed=1),
        "b.csv": write_source(tmp_path / "b.csv", 2000, seed=2),
    }
    lake = tmp_path / "lake"
    env_a = pipeline_env(str(lake), database_url, str(sources["a.csv"]))
    env_b = pipeline_env(str(lake), database_url, str(sources["b.csv"]))
    first = run_luigi("TopStatesToDatabase", "--date", str(DAY), "--local-scheduler", env=env_a)
    assert first.returncode == 0, first.stderr[-3000:]
    assert assert_consistent(published(lake), sources) == "a.csv"
    loaded = database(database_url)
    assert loaded[0] == "a.csv" and loaded[1] == loaded[2]

    forced = [sys.executable, "-m", "luigi", "--module", "etl", "AggregateUFOsByState",
              "--date", str(DAY), "--force-upstream", "--local-scheduler", "--no-lock"]  # fmt: skip
    raw_before, agg_before = attempts(lake, "raw"), attempts(lake, "aggregated")

    def raw_writing():
        return bool(attempts(lake, "raw") - raw_before)

    def spark_writing():
        return any((lake / "_attempts" / a / "aggregated").exists()
                   for a in attempts(lake, "aggregated") - agg_before)  # fmt: skip

    def spark_finished():
        return any((lake / "_attempts" / a / "_job.json").exists()
                   for a in attempts(lake, "aggregated") - agg_before)  # fmt: skip

    for step in (raw_writing, spark_writing, spark_finished):
        assert kill_when(forced, env_b, step), step.__name__
        view = published(lake)  # every manifest still names files that exist
        assert assert_consistent(view, sources) == "a.csv", step.__name__
        # The next ordinary run finds the date complete and leaves the database as it was.
        again = run_luigi("TopStatesToDatabase", "--date", str(DAY), "--local-scheduler", env=env_b)
        assert again.returncode == 0, again.stderr[-3000:]
        assert database(database_url) == loaded, step.__name__

    final = run_luigi("TopStatesToDatabase", "--date", str(DAY), "--force-upstream",
                      "--local-scheduler", env=env_b)  # fmt: skip
    assert final.returncode == 0, final.stderr[-3000:]
    view = published(lake)
    assert assert_consistent(view, sources) == "b.csv"
    assert Path(view["raw"]["source"]).name == "b.csv"
    source, valid, total = database(database_url)
    assert (source, valid, total) == ("b.csv", view["agg"]["quality"]["valid"], view["valid_sum"])
    # No manifest names a superseded attempt. It is removed at once, unless a kill came while
    # it was being removed (it then waits, with the killed runs' attempts, for the stale sweep).
    named = {view["raw"]["attempt"], view["agg"]["attempt"]}
    assert not (raw_before | agg_before) & named
    assert named <= set(os.listdir(lake / "_attempts"))

    # With a zero grace period, a run sweeps the interrupted attempts away.
    swept = run_luigi("TopStatesToDatabase", "--date", str(DAY), "--force-upstream",
                      "--local-scheduler", env={**env_b, "UFO_STALE_ATTEMPT_HOURS": "0"})  # fmt: skip
    assert swept.returncode == 0, swept.stderr[-3000:]
    view = published(lake)
    assert set(os.listdir(lake / "_attempts")) == {view["raw"]["attempt"], view["agg"]["attempt"]}
