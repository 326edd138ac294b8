"""Sources that went wrong, through the whole pipeline with Spark: each snapshot is held (exit 31,
one alert, nothing of it in the lake's top ten or the database) until a person accepts it."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import sqlalchemy as sa

from etl.pipeline.checks import HELD_EXIT
from etl.tools import sample
from tests.receivers import HttpSink
from tests.support import pipeline_env, run_luigi

pytestmark = [pytest.mark.integration, pytest.mark.spark]

D1, D2 = dt.date(2019, 3, 28), dt.date(2019, 3, 29)


def test_bad_sources_are_held_then_one_is_accepted(tmp_path, database_url):
    full = tmp_path / "full.csv"
    with open(full, "w", encoding="utf-8", newline="") as out:
        sample.write(out, sample.generate(4000, until=D2, seed=3, start=D1 - dt.timedelta(days=30)))
    data = full.read_bytes()
    half = data.index(b"\n", len(data) // 2) + 1  # at the end of a line
    quote = data.index(b',"', len(data) // 2) + 3  # inside a quoted field
    tenth = data.index(b"\n", len(data) // 10) + 1
    export = tmp_path / "export.csv"
    with open(export, "w", encoding="utf-8", newline="") as out:
        rows = sample.generate(4000, until=D2, seed=3, start=D1 - dt.timedelta(days=30), layout="export")  # fmt: skip
        sample.write(out, rows, layout="export")
    bad = {"half at a line": data[:half], "half in a quoted field": data[:quote],
           "a tenth": data[:tenth]}  # fmt: skip

    lake = tmp_path / "lake"
    with HttpSink() as sink:
        env = pipeline_env(str(lake), database_url, str(full), UFO_ALERT_WEBHOOK=sink.url)
        first = run_luigi("TopStatesToDatabase", "--date", str(D1), "--local-scheduler", env=env)
        assert first.returncode == 0, first.stderr[-3000:]
        sources = [*bad.items(), ("another layout", export.read_bytes())]
        for n, (what, content) in enumerate(sources, start=1):
            source = tmp_path / f"bad-{n}.csv"
            source.write_bytes(content)
            env["UFO_SOURCE"] = str(source)
            held = run_luigi("TopStatesToDatabase", "--date", str(D2), "--force-upstream",
                             "--local-scheduler", env=env)  # fmt: skip
            assert held.returncode == HELD_EXIT, (what, held.stderr[-3000:])
            last = held.stderr.strip().splitlines()[-1]
            assert "snapshot of 2019-03-29 held by its checks" in last, (what, last)
            expected = "layout:" if what == "another layout" else "valid_drop:"
            assert expected in last, (what, last)
            assert not (lake / f"top10/date={D2}/top_states.csv").exists(), what
            assert len(sink.wait_for(n)) == n, what  # one alert a held run
        with sa.create_engine(database_url).connect() as conn:
            assert conn.execute(sa.text("SELECT run_date FROM ufo_runs")).scalars().all() == [D1]

        # The last one (the export file) published by a person who looked, recorded.
        accepted = run_luigi("TopStatesToDatabase", "--date", str(D2), "--local-scheduler",
                             "--accept-checks", "bob: NUFORC moved to its new export", env=env)  # fmt: skip
        assert accepted.returncode == 0, accepted.stderr[-3000:]
        assert len(sink.wait_for(len(sources) + 1, timeout=2)) == len(sources)
    report = json.loads((lake / f"top10/date={D2}/checks.json").read_text())
    assert report["accepted"]["by"] == "bob" and not report["held"]
    with sa.create_engine(database_url).connect() as conn:
        row = conn.execute(
            sa.text("SELECT layout, checks FROM ufo_runs WHERE run_date = :d"), {"d": D2}
        ).one()
    assert row.layout == "export"
    assert row.checks["accepted"]["why"] == "NUFORC moved to its new export"
    assert {c["name"]: c["status"] for c in row.checks["checks"]}["layout"] == "failed"
