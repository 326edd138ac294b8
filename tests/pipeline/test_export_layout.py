"""Today's NUFORC site export through the whole chain, checked against the independent reference."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter

import pytest
import sqlalchemy as sa

from etl.tools import sample
from tests import reference
from tests.lakefiles import reject_rows
from tests.pipeline.support import check_against_reference, stored_rejects
from tests.support import pipeline_env, run_luigi

pytestmark = [pytest.mark.integration, pytest.mark.spark]

DAY = dt.date(2024, 6, 30)
REJECT_ROWS = 20  # fewer than the sample's state rejects: the cap is exercised


def test_the_export_layout_loads_like_the_index(tmp_path, database_url):
    source = tmp_path / "export.csv"
    with open(source, "w", encoding="utf-8", newline="") as out:
        sample.write(out, sample.generate(4000, until=DAY + dt.timedelta(days=5), seed=4,
                                          layout="export"), "export")  # fmt: skip
    lake = tmp_path / "lake"
    env = pipeline_env(str(lake), database_url, str(source), UFO_REJECT_ROWS=str(REJECT_ROWS))
    result = run_luigi("TopStatesToDatabase", "--date", str(DAY), "--local-scheduler", env=env)
    assert result.returncode == 0, result.stderr[-3000:]

    expected = reference.classify(source.read_bytes(), DAY)
    manifest = json.loads((lake / f"aggregated/date={DAY}/_MANIFEST.json").read_text())
    assert manifest["layout"] == "export"
    assert {k: manifest["quality"][k] for k in expected.quality()} == expected.quality()
    assert expected.quality()["after_run_date"] > 0

    rejects = Counter()
    for rel in manifest["files"]["rejects"]:
        header, rows = reject_rows((lake / rel).read_text(encoding="utf-8"))
        assert header == [*sample.layouts.EXPORT.columns, "_record", "reason"]  # their own names
        rejects.update(rows)
    assert rejects == Counter(expected.rejects)

    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        layout = conn.execute(sa.text("SELECT layout FROM ufo_runs")).scalar_one()
        top = conn.execute(sa.text(
            "SELECT state, sightings FROM top_states WHERE period = 'all' ORDER BY rank"
        )).all()  # fmt: skip
    engine.dispose()
    assert layout == "export"
    assert [tuple(r) for r in top] == expected.top_ten()

    # The stored rejects: the first REJECT_ROWS of each reason, under the export's own columns.
    assert max(expected.quality()["rejected_by_reason"].values()) > REJECT_ROWS
    check_against_reference(
        stored_rejects(database_url, DAY),
        expected,
        REJECT_ROWS,
        list(sample.layouts.EXPORT.columns),
    )
