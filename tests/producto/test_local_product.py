"""The documented local product, for real: `make demo`, demo.env, `make luigid`, `make up`,
`make producto`, `make stop`, `make clean`, and producto's documented examples.

The commands are read from docs/how-to/local-product.md and docs/reference/database-and-api.md
(between their `<!-- local:... -->` and `<!-- producto:... -->` markers).

One `make demo` (a generated sample, local Spark, the demo's private PostgreSQL) in a run
directory of its own (UFO_RUN_DIR), never the repository's `.run`; ports come from free_port.
Whatever a test starts is stopped in a `finally` (`make stop`, then pg_ctl as a last resort).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import secrets
import shlex
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from etl.tools import proxyuser
from tests.console.support import logged_in_page
from tests.proxy.support import Target, request
from tests.support import REPO, Terminal, demo_env, free_port

pytestmark = [pytest.mark.integration, pytest.mark.spark]

LOCAL_PAGE = (REPO / "docs/how-to/local-product.md").read_text()
LOCAL = LOCAL_PAGE.split("<!-- local:begin -->")[1].split("<!-- local:end -->")[0]
API_PAGE = (REPO / "docs/reference/database-and-api.md").read_text()
PRODUCTO = API_PAGE.split("<!-- producto:begin -->")[1].split("<!-- producto:end -->")[0]


def make_env(run_dir: Path, **extra: str) -> dict[str, str]:
    """This process's environment without the pipeline's settings, plus a run directory."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UFO_", "PRODUCTO_"))}
    for name in ("PORT", "LUIGID_PORT", "SPARK_HISTORY_PORT", "SPARK_CONNECT_PORT", "CONSOLE_PORT"):
        env.pop(name, None)
    env.update(UFO_RUN_DIR=str(run_dir), SPARK_LOCAL_IP="127.0.0.1", **extra)
    return env


def make(
    target: str, env: dict[str, str], *args: str, timeout: float = 300
) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "--no-print-directory", target, *args], cwd=REPO, env=env,
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def wait_for(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if get(url)[0] == 200:
                return
        except (urllib.error.URLError, ConnectionError):
            pass
        time.sleep(0.3)
    raise AssertionError(f"{url} did not answer within {seconds} s")


def bash(script: str, env: dict[str, str], run_dir: Path) -> subprocess.CompletedProcess:
    """``script`` in bash from a directory whose ``.run`` is the test's run directory."""
    return subprocess.run(
        ["bash", "-c", script], cwd=run_dir.parent, env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip


def stop_all(env: dict[str, str], run_dir: Path) -> None:
    make("stop", env, timeout=120)
    from etl.tools.localpg import LocalPostgres

    LocalPostgres(run_dir / "postgres").discard()


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """`make demo` once, in a run directory of its own; everything stopped at the end."""
    run_dir = tmp_path_factory.mktemp("local-product") / ".run"
    # The history and Spark Connect servers' ports (demo.env's addresses follow them): free
    # ports, not the defaults.
    env = make_env(run_dir, SPARK_HISTORY_PORT=str(free_port()),
                   SPARK_CONNECT_PORT=str(free_port()))  # fmt: skip
    try:
        result = make("demo", env, timeout=900)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        yield run_dir, env, result.stdout
    finally:
        stop_all(env, run_dir)


def test_demo_env_gives_later_commands_the_demos_database_lake_and_date(demo):
    run_dir, _env, stdout = demo
    values = demo_env(run_dir)
    url = values["UFO_DATABASE_URL"]
    assert re.fullmatch(r"postgresql\+psycopg2://postgres@127\.0\.0\.1:\d+/ufo", url), url
    assert values["PRODUCTO_DATABASE_URL"] == url
    assert values["UFO_STORAGE"] == str(run_dir.resolve() / "lake")
    assert values["UFO_LOG_DIR"] == str(run_dir.resolve() / "logs")
    assert Path(values["UFO_SOURCE"]).name == f"nuforc_sample_{values['RUN_DATE']}.csv"
    assert (run_dir / "lake" / "top10" / f"date={values['RUN_DATE']}" / "top_states.csv").exists()
    assert f"(RUN_DATE={values['RUN_DATE']})" in stdout
    assert (run_dir / "demo.env").stat().st_mode & 0o077 == 0


def test_readme_luigi_command_runs_with_demo_env_against_make_luigid(demo):
    run_dir, env, _ = demo
    port = free_port()
    env = dict(env, LUIGID_PORT=str(port))
    try:
        started = make("luigid", env)
        assert started.returncode == 0, started.stdout + started.stderr
        assert f"http://127.0.0.1:{port}/" in started.stdout
        status, body = get(f"http://127.0.0.1:{port}/api/task_list")
        assert status == 200
        again = make("luigid", env)
        assert "already running" in again.stdout
        config = (run_dir / "luigid" / "luigi.cfg").read_text()
        assert "record_task_history = True" in config
        assert re.search(
            r"db_connection = postgresql\+psycopg2://postgres@127\.0\.0\.1:\d+/luigid", config
        )
        # The page's commands, verbatim but for luigid's port.
        block = re.search(r"```sh\n(set -a; \. \.run/demo\.env; set \+a\n.*?)```", LOCAL, re.S)
        script = block.group(1).replace("--scheduler-port 8082", f"--scheduler-port {port}")
        script = script.replace(".venv/bin/python", str(REPO / ".venv/bin/python"))
        ran = subprocess.run(
            ["bash", "-c", f"cd {shlex.quote(str(REPO))} && " + script.replace(".run/", f"{run_dir}/")],
            env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
        done = json.loads(
            get(f"http://127.0.0.1:{port}/api/task_list?data=%7B%22status%22%3A%22DONE%22%7D")[1]
        )
        assert any(t["name"] == "TopStatesToDatabase" for t in done["response"].values())
    finally:
        stopped = make("stop", env)
        assert "stopped luigid" in stopped.stdout
    assert get_refused(f"http://127.0.0.1:{port}/api/task_list")


def get_refused(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=3)
    except (urllib.error.URLError, ConnectionError):
        return True
    return False


def test_make_up_runs_the_product_and_make_stop_stops_everything(demo):
    run_dir, env, demo_output = demo
    port, luigid_port, proxy_port, console_port = (free_port() for _ in range(4))
    password = secrets.token_urlsafe(16)
    # With users, the proxy comes up in front of it all (docs/how-to/run-for-a-team.md).
    env = dict(env, PORT=str(port), LUIGID_PORT=str(luigid_port), PROXY_PORT=str(proxy_port),
               CONSOLE_PORT=str(console_port),
               PROXY_USERS=proxyuser.entry("alice", password))  # fmt: skip
    values = demo_env(run_dir)
    pids: dict[str, int] = {}
    luigid_log = run_dir / "logs" / "luigid.log"
    logged_before = luigid_log.stat().st_size if luigid_log.exists() else 0
    try:
        up = make("up", env)
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        assert f"http://127.0.0.1:{port}/" in up.stdout
        assert f"http://127.0.0.1:{luigid_port}/" in up.stdout
        assert "stop with: make stop" in up.stdout
        status, body = get(f"http://127.0.0.1:{port}/api/v1/runs")
        assert status == 200
        assert [r["run_date"] for r in json.loads(body)["runs"]] == [values["RUN_DATE"]]
        assert get(f"http://127.0.0.1:{luigid_port}/api/task_list")[0] == 200
        # luigid lists the demo's run, made before it existed, as done (shortly after `up`).
        assert f"adding the demo's run of {values['RUN_DATE']} to its task list" in up.stdout
        query = {"status": "DONE", "upstream_status": "", "search": ""}
        done_url = f"http://127.0.0.1:{luigid_port}/api/task_list?data=" + urllib.parse.quote(
            json.dumps(query)
        )
        four = {"ReadUFOs", "AggregateUFOsByState", "TopTenStates", "TopStatesToDatabase"}
        deadline = time.monotonic() + 60
        while {
            (t["name"], t["params"]["date"])
            for t in json.loads(get(done_url)[1])["response"].values()
        } != {(name, values["RUN_DATE"]) for name in four}:
            assert time.monotonic() < deadline, (run_dir / "logs" / "showdemo.log").read_text()
            time.sleep(0.5)
        # luigid's log lines (its requests too) are in logs/luigid.log, as for every service.
        assert b"GET /api/task_list" in luigid_log.read_bytes()[logged_before:]
        assert not (run_dir / "logs" / "luigid").exists()
        # Spark's history server lists the demo's finished application, the one its `done:`
        # line points at.
        history = values["UFO_SPARK_HISTORY_URL"]
        assert f"Spark history server    {history}/" in up.stdout
        deadline = time.monotonic() + 60  # the server reads the event logs every few seconds
        while not json.loads(get(f"{history}/api/v1/applications")[1]):
            assert time.monotonic() < deadline, "the history server lists no application"
            time.sleep(1)
        # The demo's application, and the Spark Connect server's (running).
        listed = json.loads(get(f"{history}/api/v1/applications")[1])
        [application] = [a for a in listed if a["name"].startswith("AggregateUFOsByState")]
        assert application["attempts"][0]["completed"] is True
        page = f"{history}/history/{application['id']}/jobs/"
        assert get(page)[0] == 200
        # No history server ran during the demo: it printed no link, but said which will.
        assert "Spark application: http" not in demo_output
        assert "Spark's history server, which `make up` starts, will show" in demo_output
        assert list((run_dir / "spark-events").iterdir())
        # A run request is picked up by the worker and scheduled by this luigid (the date is
        # loaded already, so Luigi finds it complete: no Spark here).
        requests = run_dir / "lake" / "requests"
        assert requests.is_dir()  # `make up` printed it: it exists, for the documented `cat >`
        (requests / "again.yaml").write_text(
            f"task: TopStatesToDatabase\nparams: {{date: {values['RUN_DATE']}}}\n"
        )
        deadline = time.monotonic() + 120
        while not (requests / "again.done.yaml").exists():
            assert not (requests / "again.error.yaml").exists(), (
                requests / "again.log"
            ).read_text()
            assert time.monotonic() < deadline, (run_dir / "logs" / "worker.log").read_text()[
                -3000:
            ]
            time.sleep(1)
        assert f"127.0.0.1:{luigid_port}" in (
            run_dir / "luigid" / "client.cfg"
        ).read_text().replace("\nscheduler_port = ", ":")
        # The worker's Spark steps run on the Spark Connect server `make up` started: a date
        # not loaded yet runs warm.
        remote = values["UFO_SPARK_REMOTE"]
        assert f"Spark Connect server    {remote} " in up.stdout
        day = dt.date.fromisoformat(values["RUN_DATE"]) - dt.timedelta(days=1)
        (requests / "warm.yaml").write_text(
            f"task: AggregateUFOsByState\nparams: {{date: {day}}}\n"
        )
        deadline = time.monotonic() + 240
        while not (requests / "warm.done.yaml").exists():
            log = requests / "warm.log"
            assert not (requests / "warm.error.yaml").exists(), log.read_text()[-3000:]
            assert time.monotonic() < deadline, (run_dir / "logs" / "worker.log").read_text()[
                -3000:
            ]
            time.sleep(1)
        assert f"(on the Spark Connect server {remote})" in (requests / "warm.log").read_text()
        # The proxy: a login before producto, luigid and the history server.
        assert f"proxy (HTTPS, a login)  https://localhost:{proxy_port}/" in up.stdout
        proxied = Target(port=proxy_port, user="alice", password=password)
        assert request(proxied, "/api/v1/runs", login=False).status == 401
        runs = request(proxied, "/api/v1/runs")
        assert [r["run_date"] for r in json.loads(runs.body)["runs"]] == [values["RUN_DATE"]]
        assert request(proxied, "/luigi/api/task_list").status == 200
        assert request(proxied, "/luigi/api/disable_worker?data=%7B%7D").status == 403
        assert request(proxied, f"/history/history/{application['id']}/jobs/").status == 200
        assert request(proxied, "/spark/").status == 404  # no master: Spark runs in one process
        assert (run_dir / "proxy" / "tls" / "tls.crt").is_file()
        console_through_the_proxy(up.stdout, proxy_port, password, values, luigid_port, requests)
        again = make("up", env)
        assert again.stdout.count("already running") == 7
        pids = {p.stem: json.loads(p.read_text())["pid"] for p in (run_dir / "pids").glob("*.json")}
        assert set(pids) == {"luigid", "worker", "producto", "history", "connect", "proxy",
                             "console"}  # fmt: skip
    finally:
        stopped = make("stop", env)
    for name in ("proxy", "console", "producto", "worker", "connect", "history", "luigid",
                 "postgres"):  # fmt: skip
        assert f"stopped {name}" in stopped.stdout, stopped.stdout
    for pid in pids.values():
        assert not Path(f"/proc/{pid}").exists()
    assert get_refused(f"http://127.0.0.1:{port}/health")
    assert "nothing was running" in make("stop", env).stdout


def console_through_the_proxy(
    printed: str, proxy_port: int, password: str, values: dict[str, str], luigid_port: int,
    requests: Path,
) -> None:  # fmt: skip
    """The console, in Chromium through the proxy logged in as alice: the demo's date loaded;
    a backfill of two new dates asked for by its form, confirmed, run by the worker service
    (warm, on the Spark Connect server) and followed on the request's page to its end; the
    dates then loaded, each with luigid's tasks and its Spark session; luigid's pages of the
    backfill's tasks link back to the console; the demo's date links to its figures in
    producto; a request that fails (written by hand, as the docs show, with a source that is
    not there) shows its date failed with its reason, and its page the reason and the log."""
    base = f"https://localhost:{proxy_port}/console"
    assert f"console (run dates)     {base}/ " in printed
    day = dt.date.fromisoformat(values["RUN_DATE"])
    first, last = day - dt.timedelta(days=3), day - dt.timedelta(days=2)
    with logged_in_page("alice", password) as (page, problems):
        page.goto(f"{base}/")
        assert page.text_content("#user") == "signed in as alice"
        assert page.get_attribute(f"tr[data-date='{day}']", "data-state") == "loaded"
        page.fill("#backfill input[name=first]", first.isoformat())
        page.fill("#backfill input[name=last]", last.isoformat())
        page.click("#backfill button[type=submit]")
        page.click("#confirm button[type=submit]")
        page.wait_for_url(f"{base}/requests/backfill-{first}-to-{last}-*.yaml")
        assert page.text_content("#by") == "alice"
        # The page reloads itself until the run ends.
        page.wait_for_selector("#status[data-status='done']", timeout=300_000)
        assert "done: TopStatesToDatabase" in page.text_content("#log")
        page.goto(f"{base}/?from={first}&to={day}")
        for loaded in (first, last, day):
            assert page.get_attribute(f"tr[data-date='{loaded}']", "data-state") == "loaded"
        page.goto(f"{base}/dates/{first}")
        states = {row.get_attribute("data-task"): row.get_attribute("data-state")
                  for row in page.query_selector_all("#tasks tr[data-task]")}  # fmt: skip
        assert states.get("TopStatesToDatabase") == "DONE", states
        assert page.query_selector(".spark-link[href*='/connect/session/?id=']") is not None
        query = {"status": "DONE", "upstream_status": "", "search": "ReadUFOs"}
        listed = get(f"http://127.0.0.1:{luigid_port}/api/task_list?data="
                     + urllib.parse.quote(json.dumps(query)))[1]  # fmt: skip
        links = {t.get("tracking_url") for t in json.loads(listed)["response"].values()}
        assert f"/console/?from={first}&to={last}&all_loaded=0" in links, links
        # A night that goes wrong: the worker service runs a request whose source is gone.
        broken = day - dt.timedelta(days=5)
        missing = requests.parent / "gone" / "nuforc.csv"
        (requests / ".broken.yaml.tmp").write_text(
            f"task: TopStatesToDatabase\nparams: {{date: {broken}}}\nenv: {{UFO_SOURCE: {missing}}}\n"
        )
        (requests / ".broken.yaml.tmp").rename(requests / f"broken-{broken}.yaml")
        row = f"tr[data-date='{broken}'][data-state='failed']"
        for _ in range(60):  # the worker polls every few seconds; the run fails at once
            page.goto(f"{base}/?from={broken}&to={broken}")
            if page.query_selector(row):
                break
            time.sleep(2)
        assert page.query_selector(row), page.content()[-2000:]
        assert "does not exist" in page.text_content(row)
        page.click(f"{row} a[href*='/requests/broken-']")
        assert page.get_attribute("#status", "data-status") == "error"
        assert str(missing) in page.text_content("#reason")
        assert "ufo: error: ReadUFOs" in page.text_content("#log")
        page.goto(f"{base}/dates/{day}")  # the demo's date: its figures in producto
        page.click("#producto-link")
        page.wait_for_url(f"**/?run_date={day}")
        assert problems == []


def test_make_clean_refuses_while_the_demos_database_runs(demo, tmp_path):
    run_dir, env, _ = demo
    # A stand-in virtualenv, so that a clean that went through deletes nothing of the repository.
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(REPO / ".venv" / "bin" / "python")
    try:
        started = make("up", dict(env, PORT=str(free_port()), LUIGID_PORT=str(free_port())))
        assert started.returncode == 0, started.stdout + started.stderr
        refused = make("clean", dict(env, VENV=str(venv)))
        assert refused.returncode != 0
        assert "run 'make stop' first" in refused.stderr
        assert run_dir.exists() and venv.exists()
    finally:
        make("stop", env)


def test_make_producto_serves_the_readme_examples_and_stops_quietly_on_ctrl_c(demo):
    """`make producto PORT=N` in a terminal; the documented curl lines; then Ctrl-C."""
    run_dir, env, _ = demo
    port = free_port()
    values = demo_env(run_dir)
    # make in a terminal of its own, as a user runs it
    with Terminal(["make", "producto", f"PORT={port}"], env) as terminal:
        wait_for(f"http://127.0.0.1:{port}/health")
        examples = [
            line.strip() for line in PRODUCTO.splitlines() if line.strip().startswith("curl -s ")
        ]
        assert len(examples) >= 10
        for line in examples:
            expected = int(m.group(1)) if (m := re.search(r"#\s*(\d{3})\s*$", line)) else 200
            command = (
                line.split("#")[0]
                .strip()
                .replace("curl -s ", "curl -s -o /dev/null -w '%{http_code}' ", 1)
            )
            command = command.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
            ran = bash(f"set -a; . .run/demo.env; set +a; {command}", env, run_dir)
            assert ran.stdout == str(expected), (line, ran.stdout, ran.stderr)
        status, body = get(f"http://127.0.0.1:{port}/api/v1/runs/{values['RUN_DATE']}")
        assert json.loads(body)["source_kind"] == "generated sample"
        terminal.send(b"\x03")  # Ctrl-C
        text = terminal.read(timeout=30)
        terminal.close(wait=30)  # producto ends by itself
    assert "Application shutdown complete" in text, text
    assert "make: ***" not in text and "Error" not in text, text
    assert get_refused(f"http://127.0.0.1:{port}/health")
