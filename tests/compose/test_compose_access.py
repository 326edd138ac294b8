"""The stack's one way in for a team (profile ``proxy``), on the running stack.

HTTPS only, a login in front of every route, the routes working under their prefixes in a real
browser (headless Chromium, a screenshot of each kept in test-output/proxy/), the self-signed
certificate made once and kept across a restart, and Spark's history server listing the run.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import re
import ssl
import time
from pathlib import Path

import pytest

from tests.compose.support import (
    HISTORY_PORT,
    PROXY_PASSWORD,
    PROXY_PORT,
    PROXY_USER,
    SPARK_UI_PORT,
    eventually_healthy,
    get_json,
)
from tests.support import REAL_RUN_DATE, REPO

pytestmark = [pytest.mark.compose, pytest.mark.shared_data, pytest.mark.timeout(900)]

ROUTES = ["/", "/api/v1/runs", "/luigi/", "/luigi/api/task_list", "/spark/", "/spark/json/",
          "/history/", "/history/api/v1/applications", "/console/",
          f"/console/dates/{REAL_RUN_DATE}"]  # fmt: skip
SCREENSHOTS = REPO / "test-output" / "proxy"
CHROMIUM = Path("/usr/bin/chromium")


def _certificate() -> str:
    """The PEM certificate the proxy presents now."""
    return ssl.get_server_certificate(("127.0.0.1", PROXY_PORT), timeout=10)


def _fingerprint(pem: str) -> str:
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest()


def _get(path: str, auth: tuple[str, str] | None, pem: str) -> http.client.HTTPResponse:
    """One HTTPS request, the certificate checked against ``pem`` (it names 127.0.0.1)."""
    context = ssl.create_default_context(cadata=pem)
    conn = http.client.HTTPSConnection("127.0.0.1", PROXY_PORT, context=context, timeout=30)
    headers = {}
    if auth:
        headers["Authorization"] = "Basic " + base64.b64encode(":".join(auth).encode()).decode()
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    response.body = response.read()
    conn.close()
    return response


def _application_id() -> str:
    master = get_json(f"http://127.0.0.1:{SPARK_UI_PORT}/json/")
    [app] = [
        a for a in master["completedapps"]
        if a["name"].startswith(f"AggregateUFOsByState {REAL_RUN_DATE.isoformat()} from ")
    ]  # fmt: skip
    return app["id"]


def _running_application_id() -> str:
    master = get_json(f"http://127.0.0.1:{SPARK_UI_PORT}/json/")
    [app] = [a for a in master["activeapps"] if a["name"] == "Spark Connect server"]
    return app["id"]


def test_every_route_wants_a_login_and_the_right_one_opens_it(stack):
    assert eventually_healthy(stack, "proxy")
    pem = _certificate()
    for path in ROUTES:
        assert _get(path, None, pem).status == 401, path
        assert _get(path, (PROXY_USER, PROXY_PASSWORD + "x"), pem).status == 401, path
        assert _get(path, ("mallory", PROXY_PASSWORD), pem).status == 401, path
        opened = _get(path, (PROXY_USER, PROXY_PASSWORD), pem)
        assert opened.status in (200, 302), (path, opened.status)  # luigid's / redirects
        assert opened.getheader("Strict-Transport-Security") == "max-age=31536000"
        assert opened.getheader("X-Content-Type-Options") == "nosniff"
    luigi = _get("/luigi/", (PROXY_USER, PROXY_PASSWORD), pem)
    assert luigi.getheader("Location").endswith("static/visualiser/index.html")
    # Through the proxy, luigid's API answers with the run's tasks.
    tasks = json.loads(_get("/luigi/api/task_list", (PROXY_USER, PROXY_PASSWORD), pem).body)
    names = {t["name"] for t in tasks["response"].values()}
    assert "TopStatesToDatabase" in names, names


def test_plain_http_is_sent_to_https_and_big_requests_are_refused(stack):
    conn = http.client.HTTPConnection("127.0.0.1", PROXY_PORT, timeout=30)
    conn.request("GET", "/luigi/")
    response = conn.getresponse()
    assert response.status == 301
    # The configured name (PROXY_HOSTNAME, default localhost), never the client's Host.
    assert response.getheader("Location") == f"https://localhost:{PROXY_PORT}/luigi/"
    conn.close()
    pem = _certificate()
    context = ssl.create_default_context(cadata=pem)
    conn = http.client.HTTPSConnection("127.0.0.1", PROXY_PORT, context=context, timeout=30)
    conn.request("POST", "/", body=b"x" * (2 * 1024 * 1024))
    assert conn.getresponse().status == 413
    conn.close()


def test_the_access_log_names_the_user_and_never_the_password(stack):
    pem = _certificate()
    _get("/spark/json/", (PROXY_USER, PROXY_PASSWORD), pem)
    log = stack.compose("exec", "-T", "proxy", "cat", "/var/log/ufo-proxy/access.log").stdout
    assert f" {PROXY_USER} " in log and "GET /spark/json/" in log
    assert PROXY_PASSWORD not in log
    assert PROXY_PASSWORD not in stack.compose("logs", "--no-color", "proxy").stdout


def test_the_history_server_lists_the_run_through_the_proxy(stack):
    pem, app = _certificate(), _application_id()
    deadline = time.monotonic() + 60
    while True:
        listed = json.loads(
            _get("/history/api/v1/applications", (PROXY_USER, PROXY_PASSWORD), pem).body
        )
        if any(a["id"] == app for a in listed) or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert any(a["id"] == app and a["attempts"][0]["completed"] for a in listed), listed
    assert get_json(f"http://127.0.0.1:{HISTORY_PORT}/api/v1/applications")  # and directly


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.fail("needs Debian's chromium at /usr/bin/chromium (tests/setup-system.sh)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )  # fmt: skip
        yield chromium
        chromium.close()


@pytest.mark.parametrize(
    "name, path, shows",
    [
        ("producto", "/", "text=UFO"),
        ("luigid", "/luigi/", "text=TopStatesToDatabase"),
        ("spark-master", "/spark/", "text=Spark Master at"),
        # A name over 60 characters is shown cut, its whole text in a hidden "+details" block:
        # the visible cell that holds it.
        ("history", "/history/", "td:has-text('AggregateUFOsByState') >> visible=true"),
        ("history-application", "/history/history/{app}/jobs/", "text=Spark Jobs"),
        # A running application's own UI, through the master: the Spark Connect server's.
        ("running-application", "/proxy/{running}/jobs/", "text=Spark Jobs"),
        # The console: the run's date loaded, its page with luigid's tasks (from the history
        # database, as the read-only role) and the run's Spark application.
        ("console", "/console/", f"tr[data-date='{REAL_RUN_DATE}'][data-state='loaded']"),
        ("console-date", f"/console/dates/{REAL_RUN_DATE}", "#tasks tr[data-task='ReadUFOs']"),
    ],
)
def test_each_ui_renders_under_its_prefix_in_chromium(stack, browser, name, path, shows):
    context = browser.new_context(
        http_credentials={"username": PROXY_USER, "password": PROXY_PASSWORD},
        ignore_https_errors=True,  # the stack's self-signed certificate; pinned above
        viewport={"width": 1280, "height": 900},
    )
    page = context.new_page()
    failed: list[str] = []
    page.on("response", lambda r: _check_loaded(r, failed))
    # The proxy's Content-Security-Policy must not break a page: a refusal is a failure.
    page.on("console", lambda m: _check_policy(m.text, failed))
    try:
        ids = {"app": _application_id(), "running": _running_application_id()}
        url = f"https://127.0.0.1:{PROXY_PORT}{path.format(**ids)}"
        page.goto(url, wait_until="networkidle", timeout=60_000)
        page.wait_for_selector(shows, timeout=60_000)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
    finally:
        context.close()
    assert failed == [], f"{name}: files that did not load under the prefix: {failed}"


def _check_loaded(response, failed: list[str]) -> None:
    """A file that did not load under the prefix: an error, or a page where a style sheet,
    script or image was asked for (a server's catch-all page answers 200 to any path)."""
    kind = response.request.resource_type
    if response.url.endswith("/favicon.ico"):
        return
    if response.status >= 400:
        failed.append(f"{response.status} {response.url}")
    elif kind in ("stylesheet", "script", "image") and "text/html" in (
        response.headers.get("content-type", "")
    ):
        failed.append(f"a page instead of a {kind}: {response.url}")


def _check_policy(text: str, failed: list[str]) -> None:
    """A refusal of the page's own files, inline scripts or styles fails; a file of another
    site refused (luigid's page asks Google for a font) is the policy doing its work."""
    if "Content Security Policy" not in text and "Content-Security-Policy" not in text:
        return
    elsewhere = re.search(r"'(https?://[^']+)'", text)
    if elsewhere and not elsewhere.group(1).startswith(f"https://127.0.0.1:{PROXY_PORT}/"):
        return
    failed.append(f"refused by the CSP: {text}")


def test_the_console_reruns_a_date_as_the_logged_in_user_and_refuses_forgeries(stack, browser):
    """Through the proxy, logged in as alice: a re-run of the run's date from TopTenStates on,
    asked for by the console's forms, written with its S3 user, run by the worker service (the
    ranking and the load again, not the tasks before them), followed to its end;
    a POST from another site, or without the page's token, refused with nothing written."""
    context = browser.new_context(
        http_credentials={"username": PROXY_USER, "password": PROXY_PASSWORD},
        ignore_https_errors=True, viewport={"width": 1280, "height": 900},
    )  # fmt: skip
    page = context.new_page()
    try:
        base = f"https://127.0.0.1:{PROXY_PORT}/console"
        page.goto(f"{base}/", timeout=60_000)
        assert page.text_content("#user") == f"signed in as {PROXY_USER}"
        # The date is loaded: its row leads to its page, where it is re-run anew from the
        # ranking on (confirmed first), which the worker service runs without Spark.
        page.click(f"a[data-rerun='{REAL_RUN_DATE}']")
        page.wait_for_selector("#rerun", timeout=60_000)
        page.select_option("#rerun select[name=forcing]", "from:TopTenStates")
        page.click("#rerun button[type=submit]")
        page.wait_for_selector("#confirm", timeout=60_000)
        assert "anew from TopTenStates on" in page.text_content("#summary")
        page.click("#confirm button[type=submit]")
        page.wait_for_url(f"{base}/requests/rerun-{REAL_RUN_DATE}-*.yaml", timeout=60_000)
        assert page.text_content("#by") == PROXY_USER
        page.wait_for_selector("#status[data-status='done']", timeout=240_000)
        log = page.text_content("#log")
        assert f"start: TopTenStates(date={REAL_RUN_DATE})" in log, log[-2000:]
        assert f"done: TopStatesToDatabase(date={REAL_RUN_DATE})" in log, log[-2000:]
        assert "start: AggregateUFOsByState" not in log and "start: ReadUFOs" not in log
        name = page.url.rsplit("/", 1)[1]
        page.goto(f"{base}/audit")
        row = page.query_selector(f"tr[data-request='{name}']")
        assert row is not None and row.query_selector(".by").text_content() == PROXY_USER
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "console-audit.png"), full_page=True)
        # Forgeries, with alice's login: from another site (the proxy refuses it), and from no
        # page of the console (no token: the console refuses it).
        before = page.query_selector_all("tr[data-request]")
        pem = _certificate()
        login = "Basic " + base64.b64encode(f"{PROXY_USER}:{PROXY_PASSWORD}".encode()).decode()
        for extra, said in (({"Sec-Fetch-Site": "cross-site"}, "another site"),
                            ({"Origin": f"https://127.0.0.1:{PROXY_PORT}"}, "token")):  # fmt: skip
            conn = http.client.HTTPSConnection(
                "127.0.0.1", PROXY_PORT, context=ssl.create_default_context(cadata=pem), timeout=30
            )
            conn.request("POST", "/console/actions/rerun", body=f"date={REAL_RUN_DATE}",
                         headers={"Authorization": login, **extra,
                                  "Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
            answer = conn.getresponse()
            assert answer.status == 403 and said in answer.read().decode(), extra
            conn.close()
        page.goto(f"{base}/audit")
        assert len(page.query_selector_all("tr[data-request]")) == len(before)
    finally:
        context.close()


#: The console's own port in CI's stack (.ci/docker-compose.ci.yml: the host's network).
CONSOLE_PORT = 18090


def test_the_console_refuses_whoever_reaches_its_port_around_the_proxy(stack):
    """Any process on the console's network (here: the host's) can reach its port: without the
    proxy's key, naming a user gets it neither a page nor an action."""
    for method, path, body in (("GET", "/", None), ("GET", f"/dates/{REAL_RUN_DATE}", None),
                               ("GET", "/audit", None),
                               ("POST", "/actions/rerun", f"date={REAL_RUN_DATE}&token=x.y")):  # fmt: skip
        for key in ({}, {"X-Ufo-Proxy-Key": "guess-" * 8}):
            conn = http.client.HTTPConnection("127.0.0.1", CONSOLE_PORT, timeout=30)
            conn.request(method, path, body=body, headers={
                "X-Ufo-User": PROXY_USER, "Content-Type": "application/x-www-form-urlencoded",
                **key})  # fmt: skip
            answer = conn.getresponse()
            text = answer.read().decode()
            conn.close()
            assert answer.status == 403 and "through its proxy only" in text, (method, path)


def test_the_self_signed_certificate_is_made_once_and_kept(stack):
    before = _certificate()
    stack.compose("restart", "proxy", timeout=120)
    assert eventually_healthy(stack, "proxy")
    assert _fingerprint(_certificate()) == _fingerprint(before)
    logs = stack.compose("logs", "--no-color", "proxy").stdout
    assert logs.count("made a self-signed certificate") == 1, logs[-2000:]
    assert "the self-signed certificate made earlier" in logs
    assert f"fingerprint: {_colons(_fingerprint(before))}" in logs


def _colons(hexdigest: str) -> str:
    return ":".join(hexdigest[i : i + 2] for i in range(0, len(hexdigest), 2)).upper()
