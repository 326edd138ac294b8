"""The proxy attacked on every route, outside Docker: Debian's nginx, the proxy's own program,
five recording upstreams. Each test tries to break one promise; what reached an upstream is
read from the recorders, so "nothing got through" is observed, not assumed.
"""

from __future__ import annotations

import re
import ssl
import subprocess

import pytest

from tests.proxy.conftest import PUBLIC_NAME, USER
from tests.proxy.support import (
    ALLOWED_UPSTREAM,
    CONSOLE_KEY,
    FORGED,
    LUIGID_READS,
    LUIGID_WRITES,
    STRONG_TLS12,
    flood_of_wrong_logins,
    plain_http,
    protocol_accepted,
    reached,
    repeated_failures,
    request,
    session_ticket_issued,
    tls12_suites_accepted,
    upstream_marks,
)

#: One path per location of the proxy, the upstream it reaches and the path that upstream
#: must receive (the client's encoding kept).
ROUTES = [
    ("/", "PROXY_PRODUCTO", "/"),
    ("/api/v1/runs?limit=5", "PROXY_PRODUCTO", "/api/v1/runs?limit=5"),
    ("/luigi/", "PROXY_LUIGID", "/"),
    ("/luigi/api/task_list?data=%7B%7D", "PROXY_LUIGID", "/api/task_list?data=%7B%7D"),
    ("/luigi/history/by_name/TopTenStates", "PROXY_LUIGID", "/history/by_name/TopTenStates"),
    ("/spark/", "PROXY_SPARK", "/"),
    ("/spark/json/", "PROXY_SPARK", "/json/"),
    ("/spark/proxy/worker-20261206-127.0.0.1-7078/logPage/?appId=app-1&logType=stderr",
     "PROXY_SPARK", "/proxy/worker-20261206-127.0.0.1-7078/logPage/?appId=app-1&logType=stderr"),
    ("/proxy/worker-20261206-127.0.0.1-7078/", "PROXY_SPARK", "/proxy/worker-20261206-127.0.0.1-7078/"),
    ("/proxy/app-20261206-0001/jobs/", "PROXY_SPARK", "/proxy/app-20261206-0001/jobs/"),
    ("/history/", "PROXY_HISTORY", "/"),
    ("/history/api/v1/applications", "PROXY_HISTORY", "/api/v1/applications"),
    ("/console/", "PROXY_CONSOLE", "/"),
    ("/console/dates?state=failed&from=2019-03-01", "PROXY_CONSOLE", "/dates?state=failed&from=2019-03-01"),
]  # fmt: skip
PATHS = [path for path, _, _ in ROUTES]
#: The routes that take GET and HEAD only: all but producto's and the console's.
READ_ONLY = [
    path for path, upstream, _ in ROUTES if upstream not in ("PROXY_PRODUCTO", "PROXY_CONSOLE")
]


@pytest.mark.parametrize("path", PATHS)
def test_no_login_no_wrong_login_and_no_unknown_user_reaches_anything(proxy, path):
    target, marks = proxy.target(), upstream_marks(proxy)
    attempts = {
        "none": request(target, path, login=False),
        "wrong password": request(target, path, login=(USER, target.password + "x")),
        "unknown user": request(target, path, login=("mallory", target.password)),
        "empty password": request(target, path, login=(USER, "")),
        "not basic": request(target, path, login=False, headers={"Authorization": "Bearer x"}),
        "garbage": request(target, path, login=False, headers={"Authorization": "Basic %%%"}),
    }
    for how, answer in attempts.items():
        assert answer.status == 401, (how, answer.status)
        assert answer.header("WWW-Authenticate").startswith('Basic realm="UFO pipeline"'), how
    assert reached(proxy, marks) == []


@pytest.mark.parametrize("path, upstream, received", ROUTES)
def test_an_upstream_receives_only_the_headers_the_proxy_decides(proxy, path, upstream, received):
    target, marks = proxy.target(), upstream_marks(proxy)
    answer = request(target, path, headers={**FORGED, "Host": "evil.example"})
    assert answer.status == 200, answer.status
    [(name, method, got_path, headers)] = reached(proxy, marks)
    headers = {k.lower(): v for k, v in headers.items()}
    assert (name, method, got_path) == (upstream, "GET", received)
    assert "authorization" not in headers  # the login stops at the proxy
    assert set(headers) <= ALLOWED_UPSTREAM, set(headers) - ALLOWED_UPSTREAM
    assert headers["x-forwarded-for"] == "127.0.0.1"  # the proxy's, not appended to the client's
    assert headers["x-forwarded-proto"] == "https"
    assert headers["host"] == f"{PUBLIC_NAME}:{proxy.port}"  # the proxy's choice, not evil.example
    assert headers["x-ufo-user"] == USER  # the verifier's answer, not the client's "admin"
    expected_context = {"PROXY_SPARK": "/spark", "PROXY_HISTORY": "/history"}.get(upstream)
    if path.startswith(("/spark/proxy/", "/proxy/")):
        expected_context = None
    assert headers.get("x-forwarded-context") == expected_context
    expected_prefix = "/console" if upstream == "PROXY_CONSOLE" else None
    assert headers.get("x-forwarded-prefix") == expected_prefix  # never the client's "/evil"
    # The console's key goes to the console alone, and is the proxy's, never the client's.
    expected_key = CONSOLE_KEY if upstream == "PROXY_CONSOLE" else None
    assert headers.get("x-ufo-proxy-key") == expected_key


def test_a_path_reaches_the_workers_page_as_the_client_encoded_it(proxy):
    target, marks = proxy.target(), upstream_marks(proxy)
    path = "/spark/proxy/worker-1/logPage/a%3Fb%20c%2Fd?appId=x%26y"
    assert request(target, path).status == 200
    [(_, _, got, _)] = reached(proxy, marks)
    assert got == "/proxy/worker-1/logPage/a%3Fb%20c%2Fd?appId=x%26y"


def test_redirects_never_name_a_host_the_client_sent(proxy):
    target = proxy.target()
    # nginx's own redirect, before and after the login.
    for login in (False, True):
        for bare in ("/luigi", "/spark", "/history", "/console"):
            moved = request(target, bare, headers={"Host": "evil.example"}, login=login)
            assert moved.status == 301 and moved.header("Location") == f"{bare}/", bare
    # An upstream that builds an absolute redirect from its Host: it gets the proxy's name,
    # and its redirect reaches the client relative.
    # ...under the prefix the proxy cut from the path it passed on.
    for path, landed in [("/redirect-me", "/landed"), ("/history/x/redirect-me", "/history/landed"),
                         ("/luigi/redirect-me", "/luigi/landed"), ("/spark/redirect-me", "/spark/landed"),
                         ("/proxy/app-1/redirect-me", "/landed"),
                         ("/console/runs/redirect-me", "/console/landed")]:  # fmt: skip
        moved = request(target, path, headers={"Host": "evil.example"})
        assert moved.status == 302 and moved.header("Location") == landed, path
    # Plain HTTP on the HTTPS port: sent to the configured name, whatever Host said.
    sent = plain_http(target, "/luigi/?x=1", host_header="evil.example")
    assert sent.status == 301
    assert sent.header("Location") == f"https://{PUBLIC_NAME}:{proxy.port}/luigi/?x=1"


def test_tls_offers_only_forward_secret_aead_suites_and_no_old_protocol(proxy):
    target = proxy.target()
    offered, accepted = tls12_suites_accepted(target)
    assert len(offered) > 30  # the probe really offered the weak ones, one at a time
    assert accepted and set(accepted) <= STRONG_TLS12, accepted
    for weak in ("AES128-SHA", "AES128-GCM-SHA256", "ECDHE-RSA-AES128-SHA", "DES-CBC3-SHA"):
        assert weak not in accepted
    assert protocol_accepted(target, ssl.TLSVersion.TLSv1_3)
    for old in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
        assert not protocol_accepted(target, old), old
    assert not session_ticket_issued(target)


def test_the_servers_order_of_suites_wins_in_tls12(proxy):
    import socket

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    # The client prefers the weakest of the strong ones; the server picks its own first.
    context.set_ciphers("ECDHE-RSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-GCM-SHA256")
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as raw:
        with context.wrap_socket(raw) as tls:
            assert tls.cipher()[0] == "ECDHE-RSA-AES128-GCM-SHA256"


def test_a_flood_of_wrong_logins_does_not_slow_anyone_else(proxy):
    seen = flood_of_wrong_logins(proxy.target(), "/api/v1/runs", parallel=16)
    assert all(status == 200 for status, _ in seen["logged_in"]), seen
    assert max(seconds for _, seconds in seen["logged_in"]) < 0.5, seen
    # A first login from another address waits for one bcrypt check at most, not the flood.
    assert seen["newcomer"][0] == 200 and seen["newcomer"][1] < 1.0, seen
    # The flood itself: at most two checks at a time for one address; the rest refused at once.
    assert {status for status, _ in seen["flood"]} <= {401, 429}, seen
    assert sum(1 for status, _ in seen["flood"] if status == 429) >= 10, seen


def test_repeated_failures_from_one_address_are_limited(another_proxy):
    proxy = another_proxy()
    proxy.start()
    target = proxy.target()
    statuses = repeated_failures(target, "/", 12, source="127.0.0.3")
    assert statuses[:10] == [401] * 10 and statuses[10:] == [429, 429], statuses
    limited = request(target, "/", login=(USER, "nope"), source="127.0.0.3")
    assert limited.status == 429 and limited.header("Retry-After") == "60"
    # The right password from that address waits too: a guesser cannot tell it was right.
    assert request(target, "/", source="127.0.0.3", login=(USER, target.password)).status == 429
    # Another address is not affected; and a login verified before is remembered, not checked.
    assert request(target, "/", source="127.0.0.4").status == 200
    assert request(target, "/", source="127.0.0.3").status == 200


@pytest.mark.parametrize("call", LUIGID_WRITES)
def test_luigids_state_changing_calls_do_not_pass(proxy, call):
    target, marks = proxy.target(), upstream_marks(proxy)
    for method in ("GET", "POST"):
        for path in (f"/luigi/api/{call}?data=%7B%7D", f"/luigi/api/{call}",
                     f"/luigi/api/task_list/../{call}", f"/luigi//api/{call}",
                     f"/luigi/api/{call.replace('_', '%5F')}"):  # fmt: skip
            answer = request(target, path, method=method, body=b"data=%7B%7D")
            assert answer.status == 403, (method, path, answer.status)
    assert reached(proxy, marks) == []


def test_luigids_read_calls_pass_and_only_as_reads(proxy):
    target = proxy.target()
    for call in LUIGID_READS:
        marks = upstream_marks(proxy)
        assert request(target, f"/luigi/api/{call}?data=%7B%7D").status == 200, call
        [(name, _, path, _)] = reached(proxy, marks)
        assert (name, path) == ("PROXY_LUIGID", f"/api/{call}?data=%7B%7D")
    for method in ("POST", "PUT", "DELETE"):
        assert request(target, "/luigi/api/task_list", method=method, body=b"").status == 403


@pytest.mark.parametrize("path", PATHS)
def test_a_forged_cross_site_request_is_refused_on_every_route(proxy, path):
    target, marks = proxy.target(), upstream_marks(proxy)
    forged = [
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site", "Origin": f"https://127.0.0.1:{proxy.port}"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": f"https://127.0.0.1:{proxy.port}.evil.example"},
    ]
    for headers in forged:
        for method in ("POST", "PUT", "DELETE", "PATCH"):
            answer = request(target, path, method=method, headers=headers, body=b"{}")
            assert answer.status == 403, (headers, method, answer.status)
    assert reached(proxy, marks) == []


@pytest.mark.parametrize("path", READ_ONLY)
def test_the_read_only_routes_refuse_every_other_method_even_from_the_proxys_own_pages(proxy, path):
    target, marks = proxy.target(), upstream_marks(proxy)
    same = {"Origin": f"https://127.0.0.1:{proxy.port}", "Sec-Fetch-Site": "same-origin"}
    for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
        answer = request(target, path, method=method, headers=same, body=b"{}")
        assert answer.status == 403, (method, answer.status)
    assert reached(proxy, marks) == []


def test_a_same_origin_post_reaches_producto(proxy):
    target, marks = proxy.target(), upstream_marks(proxy)
    same = {"Origin": f"https://127.0.0.1:{proxy.port}", "Sec-Fetch-Site": "same-origin"}
    assert request(target, "/api/v1/runs", method="POST", headers=same, body=b"{}").status == 200
    [(name, method, _, headers)] = reached(proxy, marks)
    assert (name, method, headers["Content-Length"]) == ("PROXY_PRODUCTO", "POST", "2")


def test_the_access_log_names_a_user_only_once_logged_in(proxy):
    target = proxy.target()
    request(target, "/?who=ok")
    request(target, "/?who=mallory", login=("mallory", "guess"))
    request(target, "/?who=wrong", login=(USER, "guess"))
    log = proxy.access_log()
    lines = [line for line in log.splitlines() if '"GET / ' in line]
    assert any(line.split()[1] == USER and " 200 " in line for line in lines), lines
    failed = [line for line in lines if " 401 " in line]
    assert failed and all(line.split()[1] == "-" for line in failed), failed
    assert "mallory" not in log and target.password not in log and "guess" not in log


def test_security_headers_on_every_route_and_a_csp_on_the_uis_behind_producto(proxy):
    target = proxy.target()
    for path, upstream, _ in ROUTES:
        answer = request(target, path)
        assert answer.header("Strict-Transport-Security") == "max-age=31536000", path
        assert answer.header("X-Content-Type-Options") == "nosniff", path
        assert answer.header("X-Frame-Options") == "SAMEORIGIN", path
        csp = answer.header("Content-Security-Policy")
        if upstream == "PROXY_PRODUCTO":
            assert csp is None, path  # producto sends its own (the recorder sends none)
        else:
            assert "default-src 'self'" in csp and "frame-ancestors 'self'" in csp, path
            assert "object-src 'none'" in csp and "form-action 'self'" in csp, path


def test_the_self_signed_certificate_names_each_host_once(proxy):
    cert = proxy.tmp / "state" / "tls.crt"
    text = subprocess.run(
        ["openssl", "x509", "-in", str(cert), "-noout", "-ext", "subjectAltName"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    names = re.findall(r"(DNS:[^,\s]+|IP Address:[^,\s]+)", text)
    assert names == [f"DNS:{PUBLIC_NAME}", "DNS:localhost", "IP Address:127.0.0.1"], names
