"""The run dates' states and the command-line twin: ``python -m etl.worker runs|rerun|backfill|follow``.

States are built for real: ReadUFOs requests run by the worker (as a process) on a tiny source,
a request that fails, requests that wait or are claimed, ``ufo_runs`` rows inserted by SQL as
the loader writes them, and the daily schedule's due dates. Expected states are written by hand.
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
import yaml

from etl.adapters.database import Loader
from etl.adapters.lake import open_lake
from etl.worker.requests import BadRequest, parse_request
from etl.worker.rundates_view import RunDatesView
from tests.support import REPO, pipeline_env
from tests.worker.support import lake_with_source, read_ufos_complete, run_worker

UTC = ZoneInfo("UTC")


def ops(env: dict, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """``python -m etl.worker ARGS`` as a script runs it (no terminal)."""
    return subprocess.run(
        [sys.executable, "-m", "etl.worker", *args],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def insert_runs(url: str, rows: list[tuple[str, str, int, int]]) -> None:
    """``ufo_runs`` rows (date, finished_at, valid, rejected) as the loader writes them."""
    with Loader(url):  # the schema, migrated
        pass
    with sa.create_engine(url).begin() as conn:
        for day, finished, valid, rejected in rows:
            conn.execute(
                sa.text(
                    "INSERT INTO ufo_runs (run_date, finished_at, source, input, header_repeat, "
                    "duplicate, after_run_date, valid, rejected, rejected_by_reason, layout) "
                    f"VALUES (:day, {finished}, 'file:///data/index.csv', :input, 0, 0, 0, "
                    ":valid, :rejected, '{}'::jsonb, 'index')"
                ),
                {"day": day, "input": valid + rejected, "valid": valid, "rejected": rejected},
            )


def write_claim(requests: Path, name: str, heartbeat: float) -> None:
    (requests / ".claims").mkdir(exist_ok=True)
    (requests / ".claims" / name).write_text(
        f"worker: host:1:abc\nheartbeat: {heartbeat}\nlease: 120.0\n"
    )


def test_each_run_date_has_its_state(tmp_path, database_url):
    requests, src = lake_with_source(tmp_path)
    lake = tmp_path / "lake"
    read = "task: ReadUFOs\nparams: {{date: {}}}\n"
    (requests / "read-0329.yaml").write_text(read.format("2019-03-29"))
    (requests / "read-0321.yaml").write_text(read.format("2019-03-21"))
    (requests / "broken.yaml").write_text(
        "task: ReadUFOs\nparams: {date: 2019-03-26..2019-03-28}\n"
        f"env: {{UFO_SOURCE: {tmp_path / 'nope.csv'}}}\nrequested_by: carol\n"
    )
    env = pipeline_env(str(lake), database_url, str(src))
    worker = run_worker(env)
    assert worker.returncode == 1, worker.stdout[-3000:]  # the broken request failed
    error = yaml.safe_load((requests / "broken.error.yaml").read_text())
    assert error["requested_by"] == "carol"
    assert error["error"].startswith("ufo: error: ") and "nope.csv" in error["error"]

    # After the runs: one request waits, one is claimed by a live worker, one by a dead one.
    now = dt.datetime(2019, 4, 1, 5, 0, tzinfo=dt.UTC)  # before the schedule's 06:00
    for day in ("2019-03-25", "2019-03-24", "2019-03-23"):
        (requests / f"wait-{day}.yaml").write_text(read.format(day) + "requested_by: dave\n")
    write_claim(requests, "wait-2019-03-24.yaml", now.timestamp() - 5)
    write_claim(requests, "wait-2019-03-23.yaml", now.timestamp() - 3600)
    insert_runs(
        database_url,
        [
            ("2019-03-27", "now() + interval '1 day'", 10, 2),  # loaded after the failure
            ("2019-03-26", "'2000-01-01T00:00:00Z'", 11, 3),  # loaded before it
            ("2019-03-22", "now()", 12, 4),
            ("2019-03-21", "now()", 13, 5),
            ("2018-12-31", "now()", 14, 6),  # outside the range
        ],
    )

    view = RunDatesView(open_lake(str(lake)), database_url, UTC, dt.time(6, 0))
    page = view.page(dt.date(2019, 3, 20), dt.date(2019, 3, 31), now=now)
    states = {d.date.isoformat(): d.state for d in page.dates}
    assert states == {
        "2019-03-31": "none",  # its daily run is due at 06:00 on 04-01: not yet
        "2019-03-30": "missing",
        "2019-03-29": "missing",  # read by a request, never loaded
        "2019-03-28": "failed",
        "2019-03-27": "loaded",  # its failure was mended by a later load
        "2019-03-26": "failed",  # failed after its load
        "2019-03-25": "requested",
        "2019-03-24": "running",
        "2019-03-23": "requested",  # its worker is presumed dead: it waits to be taken over
        "2019-03-22": "loaded",
        "2019-03-21": "loaded",
        "2019-03-20": "missing",
    }
    assert [d.date for d in page.dates] == sorted((d.date for d in page.dates), reverse=True)
    by_date = {d.date.isoformat(): d for d in page.dates}
    assert by_date["2019-03-28"].reason == error["error"]
    assert by_date["2019-03-28"].request.name == "broken.yaml"
    assert by_date["2019-03-28"].request.requested_by == "carol"
    loaded = by_date["2019-03-22"].loaded
    assert (loaded.source, loaded.layout, loaded.valid, loaded.rejected) == (
        "file:///data/index.csv", "index", 12, 4,
    )  # fmt: skip
    assert by_date["2019-03-26"].loaded.valid == 11  # a failed date keeps what it loaded
    running = by_date["2019-03-24"].request
    assert (running.name, running.task, running.worker) == ("wait-2019-03-24.yaml", "ReadUFOs", "host:1:abc")  # fmt: skip
    assert by_date["2019-03-25"].request.requested_by == "dave"
    assert page.total == 12
    assert page.counts == {"loaded": 3, "failed": 2, "running": 1, "requested": 2, "missing": 3, "none": 1}  # fmt: skip

    # Paged and filtered; every loaded date when asked.
    some = view.page(dt.date(2019, 3, 20), dt.date(2019, 3, 31), states=("missing", "failed"),
                     offset=1, limit=2, now=now)  # fmt: skip
    assert [(d.date.isoformat(), d.state) for d in some.dates] == [
        ("2019-03-29", "missing"), ("2019-03-28", "failed"),
    ]  # fmt: skip
    assert some.total == 5
    everything = view.page(dt.date(2019, 3, 20), dt.date(2019, 3, 31), all_loaded=True, now=now)
    assert everything.total == 13 and everything.dates[-1].date == dt.date(2018, 12, 31)
    assert everything.dates[-1].state == "loaded" and everything.start == dt.date(2018, 12, 31)

    # Without a daily schedule nothing is missing.
    plain = RunDatesView(open_lake(str(lake)), database_url, UTC, None)
    states = {d.date.isoformat(): d.state for d in plain.page(dt.date(2019, 3, 29), dt.date(2019, 3, 31), now=now).dates}  # fmt: skip
    assert states == {"2019-03-31": "none", "2019-03-30": "none", "2019-03-29": "none"}


def test_a_backfill_from_the_command_line_is_run_by_the_worker_and_followed(tmp_path, database_url):
    requests, src = lake_with_source(tmp_path)
    env = pipeline_env(str(tmp_path / "lake"), database_url, str(src), LOGNAME="erin")
    env.pop("UFO_SCHEDULE_TIME", None)
    written = ops(env, "backfill", "2019-03-28..2019-03-29", "--task", "ReadUFOs", "--yes")
    assert written.returncode == 0, written.stderr
    name = written.stdout.strip()
    assert name.startswith("backfill-2019-03-28-to-2019-03-29-") and name.endswith(".yaml")
    request = yaml.safe_load((requests / name).read_text())
    assert request["params"] == {"date": "2019-03-28..2019-03-29"}
    assert request["requested_by"] == "erin"  # the environment's user
    asked_at = dt.datetime.fromisoformat(request["requested_at"])
    assert abs((dt.datetime.now(dt.UTC) - asked_at).total_seconds()) < 60
    assert [p.name for p in requests.iterdir()] == [name]  # written whole: no temporary left

    listed = ops(env, "runs", "--from", "2019-03-27", "--to", "2019-03-29", "--json")
    assert listed.returncode == 0, listed.stderr
    page = json.loads(listed.stdout)
    assert [(d["date"], d["state"]) for d in page["dates"]] == [
        ("2019-03-29", "requested"), ("2019-03-28", "requested"), ("2019-03-27", "none"),
    ]  # fmt: skip
    assert page["dates"][0]["request"]["requested_by"] == "erin"

    waited = ops(env, "follow", name, "--timeout", "0.5")
    assert waited.returncode == 3 and "queued" in waited.stdout, waited.stdout

    worker = run_worker(env)
    assert worker.returncode == 0, worker.stdout[-3000:]
    followed = ops(env, "follow", name, "--timeout", "30")
    assert followed.returncode == 0, (followed.stdout, followed.stderr)
    assert followed.stdout.strip().endswith(": done")
    done = yaml.safe_load((requests / name.replace(".yaml", ".done.yaml")).read_text())
    assert (done["requested_by"], done["requested_at"]) == ("erin", request["requested_at"])
    assert read_ufos_complete(env, "2019-03-28", "2019-03-29") == [True, True]

    # A re-run by name, its source missing: it ends in error, and follow says so with 1.
    env_bad = dict(env, UFO_SOURCE=str(tmp_path / "nope.csv"))
    rerun = ops(env, "rerun", "2019-03-27", "--task", "ReadUFOs", "--by", "frank")
    assert rerun.returncode == 0, rerun.stderr
    assert run_worker(env_bad).returncode == 1
    failed = ops(env, "follow", rerun.stdout.strip())
    assert failed.returncode == 1 and "ufo: error: " in failed.stdout, failed.stdout
    listed = ops(env, "runs", "--from", "2019-03-26", "--to", "2019-03-29", "--state", "failed",
                 "--json")  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    failures = json.loads(listed.stdout)["dates"]
    assert [(d["date"], d["state"]) for d in failures] == [("2019-03-27", "failed")]
    assert failures[0]["reason"].startswith("ufo: error: ") and "nope.csv" in failures[0]["reason"]
    table = ops(env, "runs")  # the last 90 days: nothing of them loaded or asked for
    assert table.returncode == 0 and table.stdout.splitlines()[0].split() == [
        "date",
        "state",
        "detail",
    ]
    assert table.stdout.splitlines()[-1].endswith("of 90 shown; 90 none"), table.stdout[-300:]
    assert ops(env, "follow", "no-such-request").returncode == 2

    forced = ops(env, "rerun", "2019-03-29", "--force-upstream", "--yes", "--by", "alice")
    assert forced.returncode == 0, forced.stderr
    request = yaml.safe_load((requests / forced.stdout.strip()).read_text())
    assert request["params"] == {"date": "2019-03-29", "force_upstream": True}
    assert request["task"] == "TopStatesToDatabase" and request["requested_by"] == "alice"
    # Anew from one task on: confirmed like any forced run.
    unconfirmed = ops(env, "rerun", "2019-03-29", "--from", "TopTenStates", "--by", "alice")
    assert unconfirmed.returncode == 2
    assert "TopStatesToDatabase forced from TopTenStates on for 2019-03-29" in unconfirmed.stderr
    from_ = ops(env, "rerun", "2019-03-29", "--from", "TopTenStates", "--yes", "--by", "alice")
    assert from_.returncode == 0, from_.stderr
    request = yaml.safe_load((requests / from_.stdout.strip()).read_text())
    assert request["params"] == {"date": "2019-03-29", "force_from": "TopTenStates"}


def test_a_request_the_worker_would_refuse_is_refused_before_it_is_written(tmp_path):
    requests, src = lake_with_source(tmp_path)
    env = pipeline_env(str(tmp_path / "lake"), None, str(src))
    too_long = ops(env, "backfill", "2005-01-01..2018-12-31", "--yes", "--by", "gina")
    assert too_long.returncode == 2
    # The worker's own message, for the same request written by hand.
    (requests / "by-hand.yaml").write_text(
        "task: TopStatesToDatabase\nparams: {date: 2005-01-01..2018-12-31}\n"
    )
    assert run_worker(env).returncode == 1
    reason = yaml.safe_load((requests / "by-hand.error.yaml").read_text())["error"]
    assert "at most 4000 run dates" in reason and reason in too_long.stderr
    (requests / "by-hand.error.yaml").unlink()

    tomorrow2 = (dt.date.today() + dt.timedelta(days=2)).isoformat()
    refused = {
        ("rerun", tomorrow2): "is in the future",
        ("rerun", "2019-03-28..2019-03-29"): "rerun takes one date",
        ("rerun", "2019-03-28", "--force"): "forced for 2019-03-28: add --yes",
        ("backfill", "2019-03-28..2019-03-29"): "2 dates, 2019-03-28..2019-03-29: add --yes",
        ("rerun", "2019-03-28", "--by", "eve\x1b[31m"): "must not contain control characters",
        ("backfill", "2019-03-29..2019-03-28", "--yes"): "the span ends before it starts",
    }
    for args, says in refused.items():
        result = ops(env, *args)
        assert result.returncode == 2 and says in result.stderr, (args, result.stderr)
    assert sorted(p.name for p in requests.iterdir() if p.is_file()) == []


def test_audit_fields_of_a_request_are_checked_and_others_still_refused():
    base = "task: ReadUFOs\nparams: {date: 2019-03-29}\n"
    request = parse_request(base + "requested_by: alice\nrequested_at: 2019-03-30T08:00:00Z\n")
    assert request.audit == {"requested_by": "alice", "requested_at": "2019-03-30T08:00:00+00:00"}
    assert parse_request(base).audit == {}
    for extra, says in [
        ('requested_by: "a\\nb"\n', "control characters"),
        ('requested_by: ""\n', "1 to 100 characters"),
        (f"requested_by: {'x' * 101}\n", "1 to 100 characters"),
        ("requested_by: [a]\n", "1 to 100 characters"),
        ("requested_at: yesterday\n", "not an ISO timestamp"),
        ("requested_at: 20190330\n", "not an ISO timestamp"),
        ("requested_for: bob\n", "unknown key(s) ['requested_for']"),
    ]:
        with pytest.raises(BadRequest, match=None) as err:
            parse_request(base + extra)
        assert says in str(err.value), (extra, str(err.value))


def test_a_page_of_100_of_ten_years_of_loaded_dates_is_fast(tmp_path, database_url):
    lake = tmp_path / "lake"
    requests = lake / "requests"
    requests.mkdir(parents=True)
    with Loader(database_url):
        pass
    first, last = dt.date(2010, 1, 1), dt.date(2019, 12, 31)
    with sa.create_engine(database_url).begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO ufo_runs (run_date, finished_at, source, input, header_repeat, "
                "duplicate, after_run_date, valid, rejected, rejected_by_reason, layout, checks) "
                "SELECT d::date, now(), 's3://incoming/nuforc_index.csv', 1000, 1, 2, 3, 990, 4, "
                """'{"state": 3, "date": 1}'::jsonb, 'index', '{"rows": {"passed": true}}'::jsonb """
                "FROM generate_series(CAST(:first AS date), CAST(:last AS date), interval '1 day') d"
            ),
            {"first": first, "last": last},
        )
    # A year of finished requests in the lake too, as the worker writes them.
    for n in range(365):
        day = last - dt.timedelta(days=n)
        (requests / f"r{n}.done.yaml").write_text(
            yaml.safe_dump({"request": f"task: ReadUFOs\nparams: {{date: {day}}}\n",
                            "status": "done", "worker": "w", "started": "2020-01-01T00:00:00+00:00",
                            "finished": "2020-01-01T00:00:01+00:00", "exit_code": 0})
        )  # fmt: skip

    view = RunDatesView(open_lake(str(lake)), database_url, UTC, dt.time(6, 0))
    now = dt.datetime(2020, 1, 1, 12, tzinfo=dt.UTC)
    timings = []
    for offset in (0, 1800, 3600, 0, 1800, 3600):
        started = time.perf_counter()
        page = view.page(dt.date(2019, 10, 3), last, all_loaded=True, offset=offset, limit=100,
                         now=now)  # fmt: skip
        timings.append(time.perf_counter() - started)
        assert page.total == 3652 and page.counts["loaded"] == 3652
        assert len(page.dates) == min(100, 3652 - offset)
        assert page.dates[0].date == last - dt.timedelta(days=offset)
        assert all(d.state == "loaded" and d.loaded.valid == 990 for d in page.dates)
    cold, warm = timings[0], statistics.median(timings[1:])
    print(f"\npage of 100 of 3,652 loaded dates: first {cold * 1000:.0f} ms, then median {warm * 1000:.0f} ms")  # fmt: skip
    assert cold < 1.0 and warm < 1.0


def test_a_half_written_request_and_a_range_given_by_its_end_alone(tmp_path, database_url):
    requests, _ = lake_with_source(tmp_path)
    (requests / "being-written.yaml").write_text("task: ReadUFOs\n")  # no params yet
    (requests / "waits.yaml").write_text("task: ReadUFOs\nparams: {date: 2019-02-20}\n")
    view = RunDatesView(open_lake(str(requests.parent)), database_url, UTC, None)
    now = dt.datetime(2019, 4, 1, 12, tzinfo=dt.UTC)
    page = view.page(None, dt.date(2019, 2, 28), now=now)
    # --to alone: the default 90 days, ending there; the half-written request is not one yet.
    assert page.total == 90
    assert (page.dates[0].date, page.dates[-1].date) == (dt.date(2019, 2, 28), dt.date(2018, 12, 1))
    assert page.counts.get("requested") == 1
    assert [d.date for d in page.dates if d.state == "requested"] == [dt.date(2019, 2, 20)]
