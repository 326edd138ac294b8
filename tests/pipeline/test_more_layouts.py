"""The Kaggle layout and a layout declared in TOML through the whole chain, against the reference.

The reference (``tests/reference.py``) reads the same files with the csv module and its own
statement of each layout; ragged rows must be rejected with reason ``columns`` and kept whole.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from collections import Counter

import pytest
import sqlalchemy as sa

from etl.tools import sample
from tests import reference
from tests.lakefiles import reject_rows
from tests.pipeline.support import check_against_reference, stored_rejects
from tests.support import DECLARED_LAYOUT, pipeline_env, run_luigi

pytestmark = [pytest.mark.integration, pytest.mark.spark]

REJECT_ROWS = 20


def run_chain(tmp_path, database_url, source, day, **env):
    lake = tmp_path / "lake"
    env = pipeline_env(
        str(lake), database_url, str(source), UFO_REJECT_ROWS=str(REJECT_ROWS), **env
    )
    result = run_luigi("TopStatesToDatabase", "--date", str(day), "--local-scheduler", env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return lake


def check_lake_and_database(lake, database_url, day, expected, layout: str, columns: list[str]):
    manifest = json.loads((lake / f"aggregated/date={day}/_MANIFEST.json").read_text())
    assert manifest["layout"] == layout
    assert {k: manifest["quality"][k] for k in expected.quality()} == expected.quality()
    rejects = Counter()
    for rel in manifest["files"]["rejects"]:
        header, rows = reject_rows((lake / rel).read_text(encoding="utf-8"))
        assert header == [*columns, "_record", "reason"]  # the source's own names
        rejects.update(rows)
    assert rejects == Counter(expected.rejects)  # every rejected row, ragged ones whole

    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        stored_layout, by_reason = conn.execute(
            sa.text("SELECT layout, rejected_by_reason FROM ufo_runs")
        ).one()
        top = conn.execute(sa.text(
            "SELECT state, sightings FROM top_states WHERE period = 'all' ORDER BY rank"
        )).all()  # fmt: skip
    engine.dispose()
    assert stored_layout == layout
    assert by_reason == expected.quality()["rejected_by_reason"]
    assert [tuple(r) for r in top] == expected.top_ten()
    check_against_reference(stored_rejects(database_url, day), expected, REJECT_ROWS, columns)


def test_the_kaggle_layout_loads_exactly_ragged_rows_included(tmp_path, database_url):
    day = dt.date(2014, 5, 8)
    source = tmp_path / "scrubbed.csv"
    with open(source, "w", encoding="utf-8", newline="") as out:
        sample.write(out, sample.generate(6000, until=day + dt.timedelta(days=5), seed=11,
                                          layout="kaggle"), "kaggle")  # fmt: skip
    lake = run_chain(tmp_path, database_url, source, day)

    expected = reference.classify(source.read_bytes(), day)
    assert expected.layout is reference.KAGGLE
    reasons = expected.quality()["rejected_by_reason"]
    assert all(reasons[r] > 0 for r in reference.REASONS), reasons  # every rule exercised
    assert expected.quality()["after_run_date"] > 0
    check_lake_and_database(lake, database_url, day, expected, "kaggle", sample.KAGGLE_HEADER)


DECLARED_SPEC = reference.Spec(
    ("report_id", "observed_at", "region", "nation", "entered_on"),
    "entered_on", "YYYY-MM-DD", "observed_at", "YYYY-MM-DD", "region", "nation",
    ("usa", "united states"), posted_time=True,
)  # fmt: skip
HEADER = ["Report_ID", "Observed_At", "Region", "Nation", "Entered_On", "Notes"]


def iso_rows(rng: random.Random, n: int, until: dt.date) -> list[list[str]]:
    """Rows of a layout the code has never seen: ISO dates and times, some of them bad."""
    rows = []
    for i in range(n):
        entered = until - dt.timedelta(days=rng.randrange(-10, 400))
        observed = entered - dt.timedelta(days=rng.randrange(0, 60), minutes=rng.randrange(1440))
        when = rng.choice([observed.strftime("%Y-%m-%dT%H:%M"), observed.strftime("%Y-%m-%d"),
                           observed.strftime("%Y-%m-%d %H:%M:%S")])  # fmt: skip
        posted = rng.choice([entered.isoformat(), f"{entered.isoformat()}T09:30:00"])
        quirk = rng.random()
        if quirk < 0.03:
            when = rng.choice(["", "unknown", observed.strftime("%m/%d/%Y"), "2014-02-30"])
        elif quirk < 0.05:
            posted = rng.choice(["", entered.strftime("%d.%m.%Y"), f"{entered}T25:00"])
        region, nation = rng.choice([("ca", "USA"), (" TX", "united states"), ("WA", "USA "),
                                     ("ON", "Canada"), ("", "Japan"), ("ny", "USA")])  # fmt: skip
        row = [str(i), when, region, nation, posted, rng.choice(["", "seen, twice", 'a "disk"'])]
        if rng.random() < 0.01:
            row = row[:-2] if rng.random() < 0.5 else [*row, "extra"]
        rows.append(row)
    return rows + rows[:5] + [HEADER]  # exact duplicates, a repeated header


def test_a_declared_layout_loads_a_file_of_a_layout_the_code_has_never_seen(tmp_path, database_url):
    import csv

    day = dt.date(2014, 5, 8)
    source = tmp_path / "reports.csv"
    with open(source, "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(HEADER)
        writer.writerows(iso_rows(random.Random(5), 1500, day))
    declared = tmp_path / "layouts.toml"
    declared.write_text(DECLARED_LAYOUT)
    lake = run_chain(tmp_path, database_url, source, day, UFO_LAYOUTS=str(declared))

    expected = reference.classify(source.read_bytes(), day, (DECLARED_SPEC,))
    assert expected.layout is DECLARED_SPEC
    reasons = expected.quality()["rejected_by_reason"]
    assert all(reasons[r] > 0 for r in reference.REASONS), reasons
    assert expected.quality()["header_repeat"] == 1 and expected.quality()["duplicate"] == 5
    check_lake_and_database(lake, database_url, day, expected, "reports-db", HEADER[:5])
