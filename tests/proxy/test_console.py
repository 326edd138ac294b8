"""The operations console's route, attacked: /console/ is the one route besides producto's that
takes a POST (a logged-in person's request for a re-run or a backfill), and the console trusts
the proxy to tell it who logged in. Its stand-in is the package's recording upstream for
PROXY_CONSOLE, which echoes the request it received (method, path, headers, body) as JSON.

The console's route is also in test_attacks.py's ROUTES, so every attack there is tried on it.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.proxy.conftest import OTHER_PASSWORD, OTHER_USER, PASSWORD, USER
from tests.proxy.support import as_json, reached, request, upstream_marks

FORM = b"csrf_token=t0k3n&date=2019-03-29"
FORM_TYPE = {"Content-Type": "application/x-www-form-urlencoded"}
#: Methods the console takes, and methods it never takes from anyone.
TAKEN = ("GET", "HEAD", "POST")
NEVER = ("PUT", "DELETE", "PATCH", "OPTIONS", "PROPFIND")


def _same_origin(proxy) -> dict[str, str]:
    """What a browser sends with a form posted from the console's own page."""
    return {"Origin": f"https://127.0.0.1:{proxy.port}", "Sec-Fetch-Site": "same-origin"}


def test_without_a_login_nothing_reaches_the_console(proxy):
    target, marks = proxy.target(), upstream_marks(proxy)
    logins = {"none": False, "wrong password": (USER, "guess"), "unknown": ("mallory", PASSWORD)}
    for how, login in logins.items():
        for method in TAKEN:
            body = None if method in ("GET", "HEAD") else FORM
            answer = request(target, "/console/runs", method=method, login=login, body=body,
                             headers={**_same_origin(proxy), **FORM_TYPE, "X-Ufo-User": USER})  # fmt: skip
            assert answer.status == 401, (how, method, answer.status)
            assert answer.header("WWW-Authenticate").startswith('Basic realm="UFO pipeline"')
        for method in NEVER:
            # Refused before the login is asked: the console takes these from nobody.
            answer = request(target, "/console/runs", method=method, login=login, body=FORM)
            assert answer.status == 403, (how, method, answer.status)
    assert reached(proxy, marks) == []


@pytest.mark.parametrize(
    "forged",
    [
        {"X-Ufo-User": "admin"},
        {"x-ufo-user": "admin"},
        {"X_Ufo_User": "admin"},  # nginx drops names with underscores; never passed either way
        {"X-UFO-USER": "admin", "X-Forwarded-User": "admin", "X-Remote-User": "admin"},
        {"X-Ufo-User": "admin", "x-ufo-user": "admin"},  # two lines of it
        {"X-Forwarded-Prefix": "/evil"},
        # A hop-by-hop trick: a proxy that honoured it would drop its own X-Ufo-User.
        {"Connection": "keep-alive, X-Ufo-User, X-Forwarded-Prefix", "X-Ufo-User": "admin"},
    ],
)
def test_the_console_is_told_who_logged_in_never_who_the_client_says(proxy, forged):
    target, marks = proxy.target(), upstream_marks(proxy)
    for method, body in (("GET", None), ("POST", FORM)):
        headers = {**forged, **_same_origin(proxy), **FORM_TYPE}
        answer = request(target, "/console/runs?date=2019-03-29", method=method, headers=headers,
                         body=body)  # fmt: skip
        assert answer.status == 200, (method, answer.status)
        echoed = as_json(answer)
        assert (echoed["upstream"], echoed["method"]) == ("PROXY_CONSOLE", method)
        assert echoed["path"] == "/runs?date=2019-03-29"  # the prefix cut, the query kept
        # Every header line as the console received it: one of each, the proxy's.
        lines = [(name.lower(), value) for name, value in echoed["header_lines"]]
        assert [line for line in lines if line[0] == "x-ufo-user"] == [("x-ufo-user", USER)]
        assert [line for line in lines if line[0] == "x-forwarded-prefix"] == [
            ("x-forwarded-prefix", "/console")
        ]
        assert not [line for line in lines if line[1] in ("admin", "/evil")], lines
    assert [(name, method) for name, method, _, _ in reached(proxy, marks)] == [
        ("PROXY_CONSOLE", "GET"),
        ("PROXY_CONSOLE", "POST"),
    ]


def test_the_name_follows_the_login_request_by_request(proxy):
    target, marks = proxy.target(), upstream_marks(proxy)
    for user, password in [(USER, PASSWORD), (OTHER_USER, OTHER_PASSWORD), (USER, PASSWORD)]:
        answer = request(target, "/console/", login=(user, password),
                         headers={"X-Ufo-User": OTHER_USER if user == USER else USER})  # fmt: skip
        assert answer.status == 200
        assert as_json(answer)["headers"]["X-Ufo-User"] == user
    # Another user's name with a wrong password: refused, and nothing reaches the console.
    wrong = request(target, "/console/", login=(OTHER_USER, PASSWORD), headers={"X-Ufo-User": USER})
    assert wrong.status == 401
    assert [headers["X-Ufo-User"] for _, _, _, headers in reached(proxy, marks)] == [
        USER,
        OTHER_USER,
        USER,
    ]


def test_a_same_origin_form_post_reaches_the_console_whole(proxy):
    target, marks = proxy.target(), upstream_marks(proxy)
    answer = request(target, "/console/backfills", method="POST",
                     headers={**_same_origin(proxy), **FORM_TYPE}, body=FORM)  # fmt: skip
    assert answer.status == 200
    echoed = as_json(answer)
    assert (echoed["method"], echoed["path"], echoed["body"]) == (
        "POST",
        "/backfills",
        FORM.decode(),
    )
    headers = echoed["headers"]
    assert headers["Content-Type"] == FORM_TYPE["Content-Type"]
    assert headers["Content-Length"] == str(len(FORM))
    assert headers["Origin"] == f"https://127.0.0.1:{proxy.port}"
    assert headers["Sec-Fetch-Site"] == "same-origin"
    # A client that is not a browser (no Origin, no Sec-Fetch-Site) passes too, as on every
    # route: the console's own CSRF token is its second check.
    plain = request(target, "/console/backfills", method="POST", headers=FORM_TYPE, body=FORM)
    assert plain.status == 200
    assert len(reached(proxy, marks)) == 2


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Origin": "http://127.0.0.1:{port}"},  # the proxy's address, but not over HTTPS
        {"Origin": "https://127.0.0.1:{port}.evil.example"},
        {"Sec-Fetch-Site": "cross-site", "Origin": "https://127.0.0.1:{port}"},
    ],
)
def test_a_cross_site_post_is_refused_before_the_console(proxy, headers):
    target, marks = proxy.target(), upstream_marks(proxy)
    sent = {name: value.format(port=proxy.port) for name, value in headers.items()}
    for login in (True, False):
        answer = request(target, "/console/runs/rerun", method="POST",
                         headers={**sent, **FORM_TYPE}, body=FORM, login=login)  # fmt: skip
        assert answer.status == 403, (login, answer.status)
        assert b"sent from another site" in answer.body
    assert reached(proxy, marks) == []


def test_only_get_head_and_post_reach_the_console(proxy):
    target, marks = proxy.target(), upstream_marks(proxy)
    for method in NEVER:
        answer = request(target, "/console/runs/1", method=method, headers=_same_origin(proxy),
                         body=FORM)  # fmt: skip
        assert answer.status == 403, (method, answer.status)
    assert request(target, "/console/", method="TRACE").status == 405
    assert reached(proxy, marks) == []
    assert request(target, "/console/", method="HEAD").status == 200
    assert [method for _, method, _, _ in reached(proxy, marks)] == ["HEAD"]


def test_the_console_without_its_slash_is_sent_to_it(proxy):
    target, marks = proxy.target(), upstream_marks(proxy)
    for login in (False, True):
        moved = request(target, "/console", headers={"Host": "evil.example"}, login=login)
        assert moved.status == 301 and moved.header("Location") == "/console/", login
    assert reached(proxy, marks) == []


def test_a_body_over_a_megabyte_does_not_reach_the_console(proxy):
    target, marks = proxy.target(), upstream_marks(proxy)
    big = b"x" * (1024 * 1024 + 1)
    answer = request(target, "/console/runs", method="POST", headers=_same_origin(proxy), body=big)
    assert answer.status == 413
    assert reached(proxy, marks) == []


def _curl_has_http2() -> bool:
    if not shutil.which("curl"):
        return False
    version = subprocess.run(["curl", "--version"], capture_output=True, text=True).stdout
    return "HTTP2" in version


@pytest.mark.skipif(not _curl_has_http2(), reason="needs curl with HTTP/2")
def test_a_browsers_form_post_over_http2_reaches_the_console_as_the_logged_in_user(proxy):
    """Browsers speak HTTP/2 to the proxy: their Host is :authority, which the same-origin
    check compares the Origin with."""
    target, marks = proxy.target(), upstream_marks(proxy)

    def post(origin: str, site: str) -> tuple[str, str, str]:
        done = subprocess.run(
            ["curl", "--http2", "--insecure", "--silent", "--show-error", "--max-time", "20",
             "--write-out", "\n%{http_code} %{http_version}",
             "--header", f"Authorization: {target.auth()}", "--header", f"Origin: {origin}",
             "--header", f"Sec-Fetch-Site: {site}", "--header", "X-Ufo-User: admin",
             "--data-raw", FORM.decode(), f"https://127.0.0.1:{proxy.port}/console/runs/rerun"],
            capture_output=True, text=True, timeout=30, check=True,
        )  # fmt: skip
        body, _, last = done.stdout.rpartition("\n")
        status, version = last.split()
        return status, version, body

    status, version, body = post(f"https://127.0.0.1:{proxy.port}", "same-origin")
    assert (status, version) == ("200", "2"), body
    assert [(name, method) for name, method, _, _ in reached(proxy, marks)] == [
        ("PROXY_CONSOLE", "POST")
    ]
    [(_, _, _, headers)] = reached(proxy, marks)
    assert headers["X-Ufo-User"] == USER and headers["X-Forwarded-Prefix"] == "/console"
    marks = upstream_marks(proxy)
    assert post("https://evil.example", "cross-site")[:2] == ("403", "2")
    assert reached(proxy, marks) == []
