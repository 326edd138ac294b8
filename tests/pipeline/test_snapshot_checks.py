"""Checks on a snapshot before it is published: a suspicious one is held, nothing of it public,
one alert, exit 31; ``--accept-checks`` publishes it, recorded with who and why.

The lake's aggregates are written here by hand (no Spark): TopTenStates, where the gate is, and
the load run for real. ``test_snapshot_checks_spark.py`` holds real sources cut short.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
import sqlalchemy as sa

from etl.adapters.lake import LocalLake
from etl.errors import ConfigError
from etl.pipeline import checks
from tests.pipeline.support import put_aggregate, quality
from tests.receivers import HttpSink
from tests.support import pipeline_env, run_luigi

D1, D2, D3 = dt.date(2019, 3, 27), dt.date(2019, 3, 28), dt.date(2019, 3, 29)


def top10(tmp_path, day: dt.date):
    return tmp_path / "lake" / f"top10/date={day}"


# -- the checks' rules, without a lake ------------------------------------------------------------


def test_each_check_passes_fails_or_warns_with_its_figures():
    rules = checks.rules(None)
    last = [checks.Published(D1, quality(10_000, 500), "index")]
    passed = checks.evaluate(quality(10_050, 510), "index", last, rules)
    assert {r["name"]: r["status"] for r in passed} == dict.fromkeys(checks.CHECKS, "passed")

    tenth = {r["name"]: r for r in checks.evaluate(quality(1_000, 50), "index", last, rules)}
    assert tenth["valid_drop"]["status"] == "failed"
    assert (tenth["valid_drop"]["value"], tenth["valid_drop"]["baseline"]) == (1_000, 10_000)
    assert "1,000 valid against 10,000 on 2019-03-27" in tenth["valid_drop"]["detail"]
    assert tenth["input_drop"]["status"] == "failed"

    foreign = {
        r["name"]: r for r in checks.evaluate(quality(10_000, 90_000), "export", last, rules)
    }
    assert (
        foreign["rejected_share"]["status"] == "failed"
        and foreign["rejected_share"]["value"] == 0.9
    )
    assert foreign["rejected_jump"]["status"] == "failed"
    assert foreign["layout"]["status"] == "failed"
    assert (
        checks.evaluate(quality(10_000, 500), "export", last, rules, declared={"export"})[4][
            "status"
        ]
        == "passed"
    )  # a layout UFO_LAYOUTS declares

    warn = checks.rules("valid_drop=0.5:warn,input_drop=off,layout=warn")
    found = {r["name"]: r["status"] for r in checks.evaluate(quality(1_000), "export", last, warn)}
    assert found["valid_drop"] == "warned" and found["input_drop"] == "off"
    assert found["layout"] == "warned"
    # no earlier date: nothing to compare with
    first = {r["name"]: r["status"] for r in checks.evaluate(quality(10), None, [], rules)}
    assert first["valid_drop"] == first["input_drop"] == "skipped"


@pytest.mark.parametrize(
    "bad", ["valid_drop", "valid_drop=lots", "nope=1", "layout=0.5", "valid_drop=on"]
)
def test_a_bad_checks_setting_names_the_variable(bad):
    with pytest.raises(ConfigError, match="UFO_CHECKS"):
        checks.rules(bad)


@pytest.mark.parametrize("bad", ["alice", ": why", "alice:", "  "])
def test_an_acceptance_says_who_and_why(bad):
    if not bad.strip():
        assert checks.acceptance(bad) is None
        return
    with pytest.raises(ConfigError, match="WHO: WHY"):
        checks.acceptance(bad)


# -- the gate, through Luigi ----------------------------------------------------------------------


@pytest.mark.integration
def test_a_shrunken_snapshot_is_held_with_one_alert_then_accepted_and_recorded(
    tmp_path, database_url
):
    lake = LocalLake(str(tmp_path / "lake"))
    put_aggregate(lake, D1, 10_000, 200)
    put_aggregate(lake, D2, 1_000, 20)  # a tenth of the reports
    with HttpSink() as sink:
        env = pipeline_env(
            str(tmp_path / "lake"),
            database_url,
            None,
            UFO_ALERT_WEBHOOK=sink.url,
            UFO_REJECT_ROWS="0",
        )
        first = run_luigi(
            "TopStatesToDatabase", "--date", D1.isoformat(), "--local-scheduler", env=env
        )
        assert first.returncode == 0, first.stderr[-3000:]

        held = run_luigi(
            "TopStatesToDatabase", "--date", D2.isoformat(), "--local-scheduler", env=env
        )
        assert held.returncode == checks.HELD_EXIT, held.stderr[-3000:]
        last = held.stderr.strip().splitlines()[-1]
        assert last.startswith("ufo: error: TopTenStates(date=2019-03-28): ")
        assert "snapshot of 2019-03-28 held by its checks, nothing of the run published" in last
        assert "valid_drop: 1,000 valid against 10,000 on 2019-03-27" in last
        assert "--accept-checks" in last
        assert held.stderr.count("ufo: error:") == 1
        posts = sink.wait_for(1)
        assert len(posts) == 1 and "held" in posts[0][1]["text"]

        # Nothing of it public: no top ten in the lake, no row in the database.
        assert not (top10(tmp_path, D2) / "top_states.csv").exists()
        report = json.loads((top10(tmp_path, D2) / "checks.json").read_text())
        assert report["held"] and report["accepted"] is None
        engine = sa.create_engine(database_url)
        with engine.connect() as conn:
            runs = conn.execute(sa.text("SELECT run_date FROM ufo_runs")).scalars().all()
            assert runs == [D1]
            assert conn.execute(sa.text("SELECT count(*) FROM top_states WHERE run_date = :d"),
                                {"d": D2}).scalar() == 0  # fmt: skip

        # Again without accepting: held again (the same reason), still nothing published.
        again = run_luigi(
            "TopStatesToDatabase", "--date", D2.isoformat(), "--local-scheduler", env=env
        )
        assert again.returncode == checks.HELD_EXIT

        why = "alice: the source shrank because NUFORC removed duplicates"
        accepted = run_luigi("TopStatesToDatabase", "--date", D2.isoformat(), "--accept-checks", why,
                             "--local-scheduler", env=env)  # fmt: skip
        assert accepted.returncode == 0, accepted.stderr[-3000:]
        assert "failed checks accepted by alice" in accepted.stdout + accepted.stderr
        assert len(sink.wait_for(3, timeout=2)) == 2  # the second held run's; none for this one
    with engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT checks FROM ufo_runs WHERE run_date = :d"),
                              {"d": D2}).scalar_one()  # fmt: skip
        first_checks = conn.execute(sa.text("SELECT checks FROM ufo_runs WHERE run_date = :d"),
                                    {"d": D1}).scalar_one()  # fmt: skip
    engine.dispose()
    assert stored["held"] is False
    assert stored["accepted"]["by"] == "alice"
    assert stored["accepted"]["why"] == "the source shrank because NUFORC removed duplicates"
    statuses = {c["name"]: c["status"] for c in stored["checks"]}
    assert statuses["valid_drop"] == "failed" and statuses["input_drop"] == "failed"
    assert {c["name"]: c["status"] for c in first_checks["checks"]}["valid_drop"] == "skipped"


@pytest.mark.integration
def test_a_foreign_layout_is_held_unless_warn_only_and_a_batch_publishes_nothing(tmp_path):
    lake = LocalLake(str(tmp_path / "lake"))
    put_aggregate(lake, D1, 10_000, 200)
    put_aggregate(lake, D2, 10_100, 200)
    put_aggregate(lake, D3, 300, 9_900, layout="export")  # most rows rejected, another layout
    env = pipeline_env(str(tmp_path / "lake"), None, None)
    assert (
        run_luigi("TopTenStates", "--date", str(D1), "--local-scheduler", env=env).returncode == 0
    )
    batch = run_luigi("TopTenStates", "--date", f"{D2},{D3}", "--local-scheduler", env=env)
    assert batch.returncode == checks.HELD_EXIT, batch.stderr[-3000:]
    last = batch.stderr.strip().splitlines()[-1]
    assert "snapshot of 2019-03-29 held" in last
    assert "rejected_share: 9,900 of 10,200 reports rejected" in last and "layout:" in last
    for day in (D2, D3):  # the batch's good date is not published either
        assert not (top10(tmp_path, day) / "top_states.csv").exists()

    # Switched to warn-only, the checks let it through, and the report says they warned.
    env["UFO_CHECKS"] = (
        "rejected_share=0.5:warn,rejected_jump=0.1:warn,layout=warn,valid_drop=off,input_drop=off"
    )
    passed = run_luigi("TopTenStates", "--date", f"{D2},{D3}", "--local-scheduler", env=env)
    assert passed.returncode == 0, passed.stderr[-3000:]
    report = json.loads((top10(tmp_path, D3) / "checks.json").read_text())
    assert not report["held"]
    assert {c["name"]: c["status"] for c in report["checks"]}["layout"] == "warned"

    env["UFO_CHECKS"] = "valid_drop=much"
    bad = run_luigi("TopTenStates", "--date", str(D3), "--force", "--local-scheduler", env=env)
    assert bad.returncode == 30 and "UFO_CHECKS='valid_drop=much'" in bad.stderr
