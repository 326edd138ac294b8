"""A forced re-run while readers read: they see the old output or the new one, never a part."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import threading
import time

import pytest
import sqlalchemy as sa

from etl.tools import sample
from tests.lakefiles import aggregate_counts
from tests.support import REPO, pipeline_env, run_luigi

pytestmark = [pytest.mark.integration, pytest.mark.spark]

DAY = dt.date(2019, 3, 29)


class Reader(threading.Thread):
    """Reads the lake's outputs and the database's rows for DAY in a loop, recording each look."""

    def __init__(self, lake, url):
        super().__init__(daemon=True)
        self.lake, self.url = lake, url
        self.looks: list[tuple] = []
        self.stop = threading.Event()

    def look(self, engine) -> tuple:
        manifest = self.lake / f"aggregated/date={DAY}/_MANIFEST.json"
        agg = None
        if manifest.exists():
            files = json.loads(manifest.read_text())["files"]["aggregated"]
            try:
                agg = sum(
                    aggregate_counts((self.lake / rel).read_bytes() for rel in files).values()
                )
            except FileNotFoundError:
                agg = "vanished"  # an old attempt removed after the switch: allowed, never partial
        top_file = self.lake / f"top10/date={DAY}/top_states.csv"
        top = top_file.read_text() if top_file.exists() else None
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT count(*), sum(sightings) FROM top_states WHERE run_date = :d"),
                {"d": DAY},
            ).one()
        return agg, top, tuple(rows)

    def run(self):
        engine = sa.create_engine(self.url)
        while not self.stop.is_set():
            self.looks.append(self.look(engine))
            time.sleep(0.05)
        engine.dispose()


def test_readers_never_see_a_partial_output(tmp_path, database_url):
    source = tmp_path / "index.csv"
    with open(source, "w", encoding="utf-8", newline="") as out:
        sample.write(out, sample.generate(4000, until=DAY, seed=3))
    lake = tmp_path / "lake"
    env = pipeline_env(str(lake), database_url, str(source))
    first = run_luigi(
        "TopStatesToDatabase", "--date", DAY.isoformat(), "--local-scheduler", env=env
    )
    assert first.returncode == 0, first.stderr[-3000:]

    reader = Reader(lake, database_url)
    complete = reader.look(sa.create_engine(database_url))
    reader.start()
    forced = subprocess.run(
        [sys.executable, "-m", "luigi", "--module", "etl", "TopStatesToDatabase", "--date", DAY.isoformat(),
         "--local-scheduler", "--no-lock", "--force-upstream"],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    reader.stop.set()
    reader.join()
    assert forced.returncode == 0, forced.stderr[-3000:]
    assert "4 ran successfully" in forced.stdout + forced.stderr  # really re-ran, all four

    assert len(reader.looks) > 20
    for agg, top, rows in reader.looks:
        assert agg in (None, "vanished", complete[0])  # absent for a moment, or whole
        assert top == complete[1]  # a single file swapped in one rename: always whole
        assert rows == complete[2]  # one transaction: never a half-loaded date
    assert reader.look(sa.create_engine(database_url)) == complete

    # Anew from TopTenStates on: the ranking and the load again, the Spark step's output kept.
    aggregated = lake / f"aggregated/date={DAY}/_MANIFEST.json"
    top_manifest = next((lake / f"top10/date={DAY}").glob("_MANIFEST*.json"), None)
    kept = aggregated.read_bytes(), aggregated.stat().st_mtime_ns
    top_before = top_manifest.stat().st_mtime_ns if top_manifest else None
    anew = subprocess.run(
        [sys.executable, "-m", "luigi", "--module", "etl", "TopStatesToDatabase", "--date",
         DAY.isoformat(), "--force-from", "TopTenStates", "--local-scheduler"],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    said = anew.stdout + anew.stderr
    assert anew.returncode == 0, said[-3000:]
    assert "2 ran successfully" in said, said[-3000:]
    assert "start: TopTenStates" in said and "start: AggregateUFOsByState" not in said
    assert (aggregated.read_bytes(), aggregated.stat().st_mtime_ns) == kept
    if top_before is not None:
        assert top_manifest.stat().st_mtime_ns > top_before
    assert reader.look(sa.create_engine(database_url)) == complete
