"""The console over HTTP, as a browser and an attacker use it: its pages show each run date's
state, one date whole and a request with its log; its actions write run requests and nothing
else, with their author, and only from its own pages.

The inputs are written as the pipeline leaves them (``ufo_runs`` rows by SQL as the loader
writes them; a request's result, claim and log in the worker's format; luigid's history in
Luigi's own tables); the expected states are written by hand from those inputs.
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
import re
import subprocess
import sys
import time

import pytest
import yaml

from tests.console.conftest import insert_runs, luigid_history, start_console, stop_console
from tests.support import REPO

RANGE = "/?from=2019-03-20&to=2019-03-31&all_loaded=0"
EXPECTED = {
    "2019-03-31": "missing", "2019-03-30": "missing", "2019-03-29": "missing",
    "2019-03-28": "failed", "2019-03-27": "loaded", "2019-03-26": "missing",
    "2019-03-25": "requested", "2019-03-24": "running", "2019-03-23": "missing",
    "2019-03-22": "loaded", "2019-03-21": "loaded", "2019-03-20": "missing",
}  # fmt: skip
REASON = "ufo: error: the source /data/nope.csv does not exist: give UFO_SOURCE a file that does"
APP = "app-20190328101500-0007"
SESSION = "5f0c2a8e-1111-4222-8333-944445555666"
SESSION2 = "77aa0000-1111-4222-8333-944445555666"
LOG = (
    "start: ReadUFOs(date=2019-03-28)\n"
    f"progress: AggregateUFOsByState 2019-03-28: classify: stage 2, tasks 1/2\n"
    f"done: AggregateUFOsByState(date=2019-03-28) in 9.1 s -> lake; Spark application: "
    f"http://127.0.0.1:18080/history/{APP}/jobs/\n"
    f"session: {SESSION} http://127.0.0.1:4041\n"
    f"done: AggregateUFOsByState(date=2019-03-28) in 3.2 s -> lake; Spark application: "
    f"http://127.0.0.1:4042/connect/session/?id={SESSION2}\n"
    f"{REASON}\n"
)


def lake_files(console) -> set[str]:
    return {str(p.relative_to(console.lake)) for p in console.lake.rglob("*") if p.is_file()}


def rows(body: str) -> dict[str, str]:
    return dict(re.findall(r'<tr data-date="([\d-]+)" data-state="(\w+)"', body))


@pytest.fixture(scope="module")
def console(postgres, tmp_path_factory):
    from tests.support import new_database

    tmp = tmp_path_factory.mktemp("console")
    url = new_database(postgres)
    insert_runs(url, [("2019-03-27", "now()", 12, 4), ("2019-03-22", "now()", 20, 1),
                      ("2019-03-21", "now()", 30, 0)])  # fmt: skip
    history = luigid_history(postgres, [
        ("ReadUFOs", "2019-03-28", "worker-a", [("PENDING", "2019-03-29T06:00:00"),
                                               ("RUNNING", "2019-03-29T06:00:01"),
                                               ("DONE", "2019-03-29T06:00:04")]),
        ("AggregateUFOsByState", "2019-03-26..2019-03-28", "worker-a", [
            ("PENDING", "2019-03-29T06:00:00"), ("RUNNING", "2019-03-29T06:00:05"),
            ("FAILED", "2019-03-29T06:00:09"), ("RUNNING", "2019-03-29T06:05:00"),
            ("FAILED", "2019-03-29T06:05:12.5")]),
        ("TopTenStates", "2019-03-28", None, [("PENDING", "2019-03-29T06:00:00")]),
        ("ReadUFOs", "2019-03-27", "worker-b", [("RUNNING", "2019-03-28T06:00:01")]),
        ("AggregateUFOsByState", "2019-03-01..2019-03-10", "worker-b",
         [("RUNNING", "2019-03-11T06:00:00")]),
    ])  # fmt: skip
    started = start_console(
        tmp, url, UFO_SCHEDULE_TIME="06:00", UFO_CONSOLE_LUIGID_DB=history,
        UFO_CONSOLE_HISTORY_URL="http://history.example:18080",
        UFO_CONSOLE_PRODUCTO_URL="http://producto.example",
    )  # fmt: skip
    requests = started.requests
    request = "task: TopStatesToDatabase\nparams: {date: 2019-03-28}\nrequested_by: carol\n"
    (requests / "broken.error.yaml").write_text(yaml.safe_dump({
        "request": request, "status": "error", "requested_by": "carol",
        "requested_at": "2019-03-29T05:59:00+00:00", "worker": "worker-a",
        "started": "2019-03-29T06:00:00+00:00", "finished": "2019-03-29T06:05:13+00:00",
        "exit_code": 1, "error": REASON,
    }, sort_keys=False))  # fmt: skip
    (requests / "broken.log").write_text(LOG)
    (requests / "wait.yaml").write_text(
        "task: TopStatesToDatabase\nparams: {date: 2019-03-25}\nrequested_by: dave\n"
    )
    (requests / "busy.yaml").write_text("task: ReadUFOs\nparams: {date: 2019-03-24}\n")
    (requests / ".claims").mkdir()
    (requests / ".claims" / "busy.yaml").write_text(
        f"worker: host-b:17:abc\nheartbeat: {time.time()}\nlease: 86400.0\n"
        "since: 1553839200.0\n"  # 2019-03-29 06:00:00 UTC
    )
    yield started
    stop_console(started)


def test_the_run_dates_page_shows_each_dates_state(console):
    status, _headers, body = console.call("GET", RANGE)
    assert status == 200
    assert rows(body) == EXPECTED
    for state in ("missing", "failed", "loaded", "requested", "running"):
        count = sum(1 for s in EXPECTED.values() if s == state)
        assert f'data-state="{state}" data-count="{count}"' in body
    failed = body.split('data-date="2019-03-28"')[1].split("</tr>")[0]
    assert REASON in failed and "broken.yaml" in failed
    assert "12 valid, 4 rejected" in body.split('data-date="2019-03-27"')[1].split("</tr>")[0]
    assert "asked by dave" in body.split('data-date="2019-03-25"')[1].split("</tr>")[0]
    running = body.split('data-date="2019-03-24"')[1].split("</tr>")[0]
    assert "host-b:17:abc" in running and "since 2019-03-29 06:00:00" in running
    # Loaded, failed and missing dates can be run again from their row; not those asked for.
    rerun = set(re.findall(r'data-rerun="([\d-]+)"', body))
    assert rerun == {d for d, s in EXPECTED.items() if s not in ("requested", "running")}


def test_the_run_dates_are_paged_and_filtered(console):
    status, _h, first = console.call("GET", "/?from=2018-12-01&to=2019-03-31&all_loaded=0")
    days = [dt.date(2018, 12, 1) + dt.timedelta(days=n) for n in range(121)]
    assert status == 200 and len(rows(first)) == 100
    assert "1–100 of 121" in first
    older = re.search(r'href="(\?[^"]*offset=100[^"]*)" rel="next"', first).group(1)
    _s, _h, second = console.call("GET", "/" + older.replace("&amp;", "&"))
    assert len(rows(second)) == 21 and 'rel="next"' not in second
    assert sorted({**rows(first), **rows(second)}) == [d.isoformat() for d in days]
    _s, _h, failed = console.call("GET", RANGE + "&state=failed")
    assert rows(failed) == {"2019-03-28": "failed"}
    # Every date ever loaded joins the range when asked (the default).
    _s, _h, loaded = console.call("GET", "/?from=2019-03-30&to=2019-03-31&state=loaded")
    assert set(rows(loaded)) == {"2019-03-27", "2019-03-22", "2019-03-21"}
    assert console.call("GET", "/?from=2019-03-31&to=2019-03-01")[0] == 400
    assert console.call("GET", "/?from=yesterday")[0] == 400


def test_a_run_date_shows_its_tasks_requests_log_and_spark_applications(console):
    status, _h, body = console.call("GET", "/dates/2019-03-28")
    assert status == 200
    tasks = re.findall(
        r'<tr data-task="(\w+)" data-state="(\w+)">\s*<td>\w+</td><td>([\d.-]+)</td>.*?'
        r"<td>([\d.]*)(?: s)?</td><td>(\d+)</td><td>([\w-]*)</td>", body, re.S)  # fmt: skip
    assert tasks == [
        ("ReadUFOs", "DONE", "2019-03-28", "3.0", "1", "worker-a"),
        ("AggregateUFOsByState", "FAILED", "2019-03-26..2019-03-28", "12.5", "2", "worker-a"),
        ("TopTenStates", "PENDING", "2019-03-28", "", "0", ""),
    ]
    assert REASON in body and 'data-request="broken.yaml" data-status="error"' in body
    assert f'href="http://history.example:18080/history/{APP}/jobs/"' in body
    assert f'href="http://127.0.0.1:4041/connect/session/?id={SESSION}"' in body
    assert f'href="http://127.0.0.1:4042/connect/session/?id={SESSION2}"' in body
    # Not loaded: no figures to link to. A loaded date links to its figures in producto.
    assert "producto-link" not in body
    _s, _h, loaded = console.call("GET", "/dates/2019-03-27")
    assert 'href="http://producto.example/?run_date=2019-03-27"' in loaded
    # Its own ReadUFOs and the batch that held it; not the batch of 03-01..03-10.
    assert re.findall(r'data-task="(\w+)"', loaded) == ["ReadUFOs", "AggregateUFOsByState"]


def test_a_request_page_shows_its_outcome_and_log(console):
    status, _h, body = console.call("GET", "/requests/broken.yaml")
    assert status == 200
    assert 'data-status="error"' in body and REASON in body and "carol" in body
    assert "http-equiv" not in body  # ended: the page does not reload itself
    assert "start: ReadUFOs(date=2019-03-28)" in body
    status, headers, log = console.call("GET", "/requests/broken.yaml/log")
    assert status == 200 and log == LOG and headers["content-type"].startswith("text/plain")
    _s, _h, waiting = console.call("GET", "/requests/wait.yaml")
    assert 'data-status="queued"' in waiting and 'http-equiv="refresh"' in waiting


LIVE_LOG = (
    "2019-03-29 06:00:01,000 INFO ufo[77]: start: ReadUFOs(date=2019-03-10)\n"
    "2019-03-29 06:00:02,000 INFO ufo[77]: done: ReadUFOs(date=2019-03-10) in 1.0 s -> lake\n"
    "2019-03-29 06:00:02,500 INFO ufo[77]: start: AggregateUFOsByState(date=2019-03-10)\n"
    "2019-03-29 06:00:07,500 INFO ufo[77]: progress: AggregateUFOsByState 2019-03-10: stage 1\n"
)
SPARK_LOG = (
    "==== AggregateUFOsByState_2019_03_28_ab12.20190329T060005.7.log (35 bytes) ====\n"
    "==== stdout ====\nclassified 12 rows\n"
)


def test_a_running_request_shows_its_live_log_and_the_task_running_now(console):
    requests = console.requests
    written = [requests / "live.yaml", requests / ".claims" / "live.yaml", requests / "live.log"]
    try:
        (requests / "live.yaml").write_text(
            "task: TopStatesToDatabase\nparams: {date: 2019-03-10}\n"
        )
        (requests / ".claims" / "live.yaml").write_text(
            f"worker: host-c:9:def\nheartbeat: {time.time()}\nlease: 86400.0\nsince: 1553839200.0\n"
        )
        (requests / "live.log").write_text(LIVE_LOG)
        status, _h, body = console.call("GET", "/requests/live.yaml")
        assert status == 200 and 'data-status="running"' in body
        assert "progress: AggregateUFOsByState 2019-03-10: stage 1" in body  # the log so far
        assert "No log yet" not in body and 'http-equiv="refresh"' in body
        assert '<dd id="task-now">AggregateUFOsByState(date=2019-03-10)</dd>' in body
        assert "spark-log-link" not in body  # kept when the run ends
        # The run dates page and the date's page: the task running now, by whom, since when.
        _s, _h, dates = console.call("GET", "/?from=2019-03-10&to=2019-03-10&all_loaded=0")
        assert rows(dates) == {"2019-03-10": "running"}
        running = dates.split('data-date="2019-03-10"')[1].split("</tr>")[0]
        assert re.search(r'<span class="task-now">AggregateUFOsByState\(date=2019-03-10\)</span>'
                         r" by host-c:9:def, since 2019-03-29 06:00:00", running)  # fmt: skip
        _s, _h, date = console.call("GET", "/dates/2019-03-10")
        detail = date.split('<p id="detail">')[1].split("</p>")[0]
        assert "AggregateUFOsByState(date=2019-03-10)</span> by host-c:9:def" in detail
        # A running date whose log says no task runs yet shows the request's task.
        (requests / "live.log").write_text("")
        _s, _h, dates = console.call("GET", "/?from=2019-03-10&to=2019-03-10&all_loaded=0")
        assert '<span class="task-now">TopStatesToDatabase</span> by host-c' in dates
        # Nor does a queued request have a log yet.
        _s, _h, waiting = console.call("GET", "/requests/wait.yaml")
        assert "No log yet: it appears within seconds of the run's start." in waiting
    finally:
        for path in written:
            path.unlink(missing_ok=True)


def test_a_request_page_links_its_tasks_spark_output(console):
    spark = console.requests / "broken.spark.log"
    try:
        _s, _h, before = console.call("GET", "/requests/broken.yaml")
        assert "spark-log-link" not in before
        assert console.call("GET", "/requests/broken.yaml/spark-log")[0] == 404
        spark.write_text(SPARK_LOG)
        _s, _h, body = console.call("GET", "/requests/broken.yaml")
        assert '<a href="/requests/broken.yaml/spark-log" id="spark-log-link">' in body
        assert "Spark's output" in body
        status, headers, text = console.call("GET", "/requests/broken.yaml/spark-log")
        assert status == 200 and text == SPARK_LOG
        assert headers["content-type"].startswith("text/plain")
        assert "default-src 'none'" in headers["content-security-policy"]
        for path in (
            "/requests/..%2Fbroken.yaml/spark-log",
            "/requests/broken.spark.log/spark-log",
            "/requests/.claims%2Fbusy.yaml/spark-log",
            "/requests/broken/spark-log",
        ):
            assert console.call("GET", path)[0] == 404, path
    finally:
        spark.unlink(missing_ok=True)


@pytest.mark.parametrize("path", [
    "/dates/2019-02-30", "/dates/..", "/requests/nope.yaml", "/requests/..%2F..%2Fetc%2Fpasswd",
    "/requests/.claims%2Fbusy.yaml", "/requests/broken.yaml/log/..", "/nowhere",
])  # fmt: skip
def test_unknown_things_are_not_found(console, path):
    status, headers, body = console.call("GET", path)
    assert status == 404, body
    assert "root:" not in body


ROUTES = ["/", RANGE, "/dates/2019-03-28", "/requests/broken.yaml", "/requests/broken.yaml/log",
          "/audit", "/static/console.css", "/dates/2019-02-30", "/health"]  # fmt: skip


@pytest.mark.parametrize("path", ROUTES)
def test_every_answer_forbids_scripts_framing_and_sniffing(console, path):
    _status, headers, _body = console.call("GET", path)
    policy = headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src" not in policy
    assert "frame-ancestors 'none'" in policy and "form-action 'self'" in policy
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"


def page_token(console, path: str = RANGE, headers: dict | None = None) -> str:
    _s, _h, body = console.call("GET", path, headers=headers)
    return re.search(r'name="token" value="([^"]+)"', body).group(1)


ATTACKS = {
    "no token": lambda token: ({}, {}),
    "a token of another browser": lambda token: ({"token": "x" * 43 + "." + "0" * 64}, {}),
    "cross-site": lambda token: ({"token": token}, {"Sec-Fetch-Site": "cross-site"}),
    "same-site": lambda token: ({"token": token}, {"Sec-Fetch-Site": "same-site"}),
    "foreign origin": lambda token: ({"token": token}, {"Origin": "https://evil.example"}),
    "altered signature": lambda token: ({"token": token[:-1] + ("0" if token[-1] != "0" else "1")}, {}),
}  # fmt: skip
ACTIONS = {
    "rerun": {"date": "2019-03-30"},
    "backfill": {"first": "2019-03-01", "last": "2019-03-02", "confirm": "yes"},
}


@pytest.mark.parametrize("verb", ACTIONS)
@pytest.mark.parametrize("attack", ATTACKS)
def test_a_forged_action_is_refused_and_writes_nothing(console, verb, attack):
    token = page_token(console)
    before = lake_files(console)
    form, headers = ATTACKS[attack](token)
    status, _h, body = console.call("POST", f"/actions/{verb}", {**ACTIONS[verb], **form}, headers)
    assert status == 403, body
    assert "refused" in body
    assert lake_files(console) == before


def test_an_action_writes_one_request_with_its_author(console):
    token = page_token(console)
    before = lake_files(console)
    # A header naming someone else is not believed without the proxy.
    status, headers, _body = console.call(
        "POST", "/actions/rerun", {"token": token, "date": "2019-03-30"}, {"X-Ufo-User": "mallory"}
    )
    assert status == 303
    name = headers["location"].rsplit("/", 1)[1]
    assert headers["location"] == f"/requests/{name}"
    assert lake_files(console) - before == {f"requests/{name}"}
    written = yaml.safe_load((console.requests / name).read_text())
    assert written["task"] == "TopStatesToDatabase"
    assert written["params"] == {"date": "2019-03-30"}
    assert written["requested_by"] == getpass.getuser()
    asked = dt.datetime.fromisoformat(written["requested_at"])
    assert abs((dt.datetime.now(dt.UTC) - asked).total_seconds()) < 60
    _s, _h, page = console.call("GET", headers["location"])
    assert 'data-status="queued"' in page and getpass.getuser() in page
    _s, _h, grid = console.call("GET", RANGE)
    assert rows(grid)["2019-03-30"] == "requested"
    _s, _h, audit = console.call("GET", "/audit")
    assert f'data-request="{name}"' in audit
    (console.requests / name).unlink()  # the next tests count files


@pytest.mark.parametrize("form", [
    {"first": "2019-03-01", "last": "2019-03-03"},  # a range
    {"first": "2019-03-01", "last": "2019-03-01", "forcing": "force"},  # forced
    {"first": "2019-03-01", "last": "2019-03-01", "forcing": "force_upstream"},
])  # fmt: skip
def test_ranges_and_forced_runs_are_confirmed_first(console, form):
    token = page_token(console)
    before = lake_files(console)
    status, _h, body = console.call("POST", "/actions/backfill", {**form, "token": token})
    assert status == 200 and 'id="confirm"' in body
    assert lake_files(console) == before  # nothing until it is confirmed
    confirm = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', body))
    assert confirm["confirm"] == "yes"
    status, headers, _b = console.call("POST", "/actions/backfill", confirm)
    assert status == 303
    [added] = lake_files(console) - before
    written = yaml.safe_load((console.lake / added).read_text())
    assert written["params"]["date"] == f"{form['first']}..{form['last']}"
    forcing = form.get("forcing")
    assert written["params"].get(forcing) is True if forcing else set(written["params"]) == {"date"}
    (console.lake / added).unlink()


@pytest.mark.parametrize("verb,form,said", [
    ("backfill", {"first": "2005-01-01", "last": "2019-01-01", "confirm": "yes"}, "4000"),
    ("rerun", {"date": (dt.date.today() + dt.timedelta(days=5)).isoformat()}, "future"),
    ("rerun", {"date": "2019-03-01..2019-03-02"}, "one date"),
    ("rerun", {"date": "not a date"}, "date"),
    ("rerun", {"date": "2019-03-01", "task": "os.system"}, "task"),
    ("rerun", {"date": "2019-03-01", "forcing": "yes please"}, "forcing"),
])  # fmt: skip
def test_a_request_the_worker_would_refuse_is_not_written(console, verb, form, said):
    token = page_token(console)
    before = lake_files(console)
    status, _h, body = console.call("POST", f"/actions/{verb}", {**form, "token": token})
    assert status == 400, body
    assert said in body.replace(",", "")
    assert lake_files(console) == before


PROXY_KEY = "Qe0-kp_4" * 5


def test_behind_the_proxy_the_logged_in_user_asks(postgres, tmp_path, database_url):
    insert_runs(database_url, [])
    console = start_console(tmp_path, database_url, UFO_CONSOLE_TRUST_PROXY="1",
                            UFO_CONSOLE_PROXY_KEY=PROXY_KEY)  # fmt: skip
    try:
        proxy = {"X-Ufo-Proxy-Key": PROXY_KEY, "X-Forwarded-Prefix": "/console"}
        alice = {**proxy, "X-Ufo-User": "alice"}
        _s, headers, body = console.call("GET", "/", headers=alice)
        assert "signed in as alice" in body
        assert 'href="/console/static/console.css"' in body
        assert 'action="/console/actions/backfill"' in body
        cookie = headers["set-cookie"]
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
        token = re.search(r'name="token" value="([^"]+)"', body).group(1)
        # Alice's page's token is not Bob's, nor nobody's.
        form = {"token": token, "date": "2019-03-30"}
        for who in ({**proxy, "X-Ufo-User": "bob"}, proxy):
            status, _h, refused = console.call("POST", "/actions/rerun", form, who)
            assert status == 403, refused
        assert not list(console.requests.glob("*.yaml"))
        status, headers, _b = console.call("POST", "/actions/rerun", form, alice)
        assert status == 303 and headers["location"].startswith("/console/requests/rerun-")
        [written] = console.requests.glob("*.yaml")
        assert yaml.safe_load(written.read_text())["requested_by"] == "alice"
        # A prefix that is not a path is not used.
        _s, _h, odd = console.call("GET", "/", headers={**alice,
                                                        "X-Forwarded-Prefix": '"><script>'})  # fmt: skip
        assert "<script>" not in odd and 'href="/static/console.css"' in odd
    finally:
        stop_console(console)


#: Who reaches the console's port around the proxy: no key, a guess, the key cut or padded, two
#: lines of it (one right), the key in another header.
AROUND_THE_PROXY = [
    {},
    {"X-Ufo-Proxy-Key": "x" * len(PROXY_KEY)},
    {"X-Ufo-Proxy-Key": PROXY_KEY[:-1]},
    {"X-Ufo-Proxy-Key": PROXY_KEY + "x"},
    {"X-Ufo-Proxy-Key": PROXY_KEY.lower()},
    {"X-Ufo-Proxy-Key": f"{PROXY_KEY}, {PROXY_KEY}"},
    {"X-Ufo-Proxy-Key-": PROXY_KEY},
    {"Cookie": f"x-ufo-proxy-key={PROXY_KEY}"},
]


def test_behind_the_proxy_a_request_without_the_proxys_key_is_refused_on_every_route(
    postgres, tmp_path, database_url
):
    """Behind the proxy the console believes the user a request names; whoever reaches its
    port directly (another user of the machine, another container) must not be believed: no
    page, no action, whichever user and token it brings."""
    insert_runs(database_url, [])
    console = start_console(tmp_path, database_url, UFO_CONSOLE_TRUST_PROXY="1",
                            UFO_CONSOLE_PROXY_KEY=PROXY_KEY)  # fmt: skip
    try:
        good = {"X-Ufo-Proxy-Key": PROXY_KEY, "X-Ufo-User": "alice"}
        _s, _h, body = console.call("GET", "/", headers=good)
        token = re.search(r'name="token" value="([^"]+)"', body).group(1)
        routes = [*(r for r in ROUTES if r != "/health"), "/nowhere"]
        for headers in AROUND_THE_PROXY:
            sent = {**headers, "X-Ufo-User": "alice"}
            for path in routes:
                for method in ("GET", "HEAD"):
                    status, _h, answer = console.call(method, path, headers=sent)
                    assert status == 403, (headers, method, path, status)
                    assert "alice" not in answer and "2019-" not in answer, (headers, path)
            for verb in ACTIONS:
                form = {"token": token, "date": "2019-03-30", "start": "2019-03-01",
                        "end": "2019-03-02", "confirmed": "1"}  # fmt: skip
                status, _h, _b = console.call("POST", f"/actions/{verb}", form, sent)
                assert status == 403, (headers, verb, status)
        assert not list(console.requests.iterdir())
        # The proxy's own request still works: the refusals were the key's.
        status, _h, _b = console.call("POST", "/actions/rerun", {"token": token,
                                      "date": "2019-03-30"}, good)  # fmt: skip
        assert status == 303
        assert console.call("GET", "/health")[0] == 200  # the health check needs no key
    finally:
        stop_console(console)


@pytest.mark.parametrize("key", ["", "short", PROXY_KEY + '"; x'])
def test_behind_the_proxy_the_console_will_not_start_without_a_key(database_url, tmp_path, key):
    env = {"UFO_CONSOLE_DATABASE_URL": database_url, "UFO_STORAGE": str(tmp_path),
           "UFO_CONSOLE_TRUST_PROXY": "1", "UFO_CONSOLE_PROXY_KEY": key}  # fmt: skip
    found = subprocess.run(
        [sys.executable, "-m", "etl.console", "--port", "1"], cwd=REPO,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("UFO_")}, **env},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert found.returncode == 2, found.stderr
    assert "needs UFO_CONSOLE_PROXY_KEY" in found.stderr
    assert not key or key not in found.stderr  # a key is never printed


def test_without_the_proxy_it_listens_on_loopback_only(database_url, tmp_path):
    env = {"UFO_CONSOLE_DATABASE_URL": database_url, "UFO_STORAGE": str(tmp_path)}
    found = subprocess.run(
        [sys.executable, "-m", "etl.console", "--host", "0.0.0.0"], cwd=REPO,
        env={**{k: v for k, v in __import__("os").environ.items() if not k.startswith("UFO_")}, **env},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert found.returncode == 2
    assert "127.0.0.1 only" in found.stderr and "UFO_CONSOLE_TRUST_PROXY=1" in found.stderr


def test_a_page_of_ten_years_of_run_dates_is_quick(postgres, tmp_path):
    """3,652 loaded dates and a year of results: each page of 100 through HTTP, whole, from
    the first request after the console started."""
    import statistics

    import sqlalchemy as sa

    from tests.support import new_database

    url = new_database(postgres)
    insert_runs(url, [])
    first, last = dt.date(2010, 1, 1), dt.date(2019, 12, 31)  # 3,652 dates
    with sa.create_engine(url).begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO ufo_runs (run_date, finished_at, source, input, header_repeat, "
            "duplicate, after_run_date, valid, rejected, rejected_by_reason, layout) "
            "SELECT d::date, now(), 's3://incoming/nuforc_index.csv', 1000, 1, 2, 3, 990, 4, "
            """'{"state": 4}'::jsonb, 'index' """
            "FROM generate_series(CAST(:first AS date), CAST(:last AS date), interval '1 day') d"
        ), {"first": first, "last": last})  # fmt: skip
    requests = tmp_path / "lake" / "requests"
    requests.mkdir(parents=True)
    for n in range(365):  # a year of results, there before the console starts
        day = last - dt.timedelta(days=n)
        (requests / f"r{n}.done.yaml").write_text(yaml.safe_dump({
            "request": f"task: ReadUFOs\nparams: {{date: {day}}}\n", "status": "done",
            "worker": "w", "started": "2020-01-01T00:00:00+00:00",
            "finished": "2020-01-01T00:00:01+00:00", "exit_code": 0,
        }))  # fmt: skip
    console = start_console(tmp_path, url)
    try:
        timings = []
        for offset in (0, 1800, 3600, 0, 1800, 3600):
            started = time.perf_counter()
            status, _h, body = console.call("GET", f"/?from=2019-10-03&to={last}&offset={offset}")
            timings.append(time.perf_counter() - started)
            assert status == 200
            shown = rows(body)
            assert len(shown) == min(100, 3652 - offset)
            assert max(shown) == (last - dt.timedelta(days=offset)).isoformat()
            assert set(shown.values()) == {"loaded"}
            assert re.search(r"\d+–\d+ of 3652\b", body), re.findall(r"\d+–\d+ of \d+", body)
        cold, warm = timings[0], statistics.median(timings[1:])
        print(f"\nconsole page of 100 of 3,652 loaded dates: first {cold * 1000:.0f} ms, "
              f"then median {warm * 1000:.0f} ms")  # fmt: skip
        assert cold < 2.0 and warm < 1.0
    finally:
        stop_console(console)


def test_a_database_that_does_not_answer_is_said_in_one_line(tmp_path):
    """The console stays up and says what failed, on every page that needs the database."""
    from tests.support import free_port

    url = f"postgresql+psycopg2://ufo_reader:pw@127.0.0.1:{free_port()}/ufo"
    console = start_console(tmp_path, url, UFO_DB_CONNECT_TIMEOUT="2")
    try:
        for path in ("/", "/dates/2019-03-28"):
            status, _h, body = console.call("GET", path)
            assert status == 503, body
            message = re.search(r'<p class="error" id="message">(.*?)</p>', body, re.S).group(1)
            assert "127.0.0.1" in message and "Traceback" not in body and "pw" not in message
        assert console.call("GET", "/health")[0] == 200
        assert console.call("GET", "/audit")[0] == 200  # the lake alone
    finally:
        stop_console(console)
