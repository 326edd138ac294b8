"""The proxy tried as an attacker would: requests, TLS handshakes and floods against a running
proxy, whether started here (tests/proxy/conftest.py) or in the compose stack.

``Target`` names a proxy and a login that opens it; the functions return what they saw, and the
tests assert on it.
"""

from __future__ import annotations

import base64
import concurrent.futures
import http.client
import json
import socket
import ssl
import time
from dataclasses import dataclass, field

#: The headers an upstream may receive from the proxy: its allowlist, plus what nginx adds for a
#: body. Anything else reaching an upstream came from a client and is a leak.
ALLOWED_UPSTREAM = {
    "host", "connection", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-context",
    "x-forwarded-prefix", "x-ufo-user", "x-ufo-proxy-key", "accept", "accept-encoding", "accept-language",
    "cache-control", "content-type", "cookie", "if-modified-since", "if-none-match", "range",
    "if-range", "origin", "referer", "sec-fetch-site", "user-agent", "x-requested-with",
    "content-length",
}  # fmt: skip
#: The key the tests' proxy sends the console (PROXY_CONSOLE_KEY).
CONSOLE_KEY = "k3y-0f-the-pr0xy-f0r-the-c0ns0le-only"
#: What a client forges: forwarding headers, a proxy's auth headers (the console's X-Ufo-User
#: among them), an override of the method or the path, and a scheme.
FORGED = {
    "X-Forwarded-For": "6.6.6.6",
    "X-Forwarded-Host": "evil.example",
    "X-Forwarded-Proto": "http",
    "X-Forwarded-Port": "80",
    "X-Forwarded-Prefix": "/evil",
    "X-Forwarded-Context": "/evil",
    "X-Forwarded-User": "admin",
    "Forwarded": "for=6.6.6.6;host=evil.example;proto=http",
    "X-Real-IP": "6.6.6.6",
    "X-Original-URL": "/admin",
    "X-Rewrite-URL": "/admin",
    "X-HTTP-Method-Override": "DELETE",
    "X-Remote-User": "admin",
    "X-Ufo-User": "admin",
    "X-Ufo-Proxy-Key": "a-key-the-client-made-up-of-32-chars-or-more",
    "Proxy": "http://evil.example:3128",
}
#: TLS 1.2 suites the proxy may accept: ECDHE key exchange and an AEAD cipher.
STRONG_TLS12 = {
    "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
}  # fmt: skip
#: luigid's API calls that change its state (luigi.scheduler's rpc methods that write).
LUIGID_WRITES = [
    "add_task", "add_task_batcher", "add_worker", "announce_scheduling_failure",
    "disable_worker", "set_worker_processes", "re_enable_task", "forgive_failures",
    "mark_as_done", "prune", "pause", "unpause", "update_resource", "update_resources",
    "set_task_status_message", "set_task_progress_percentage", "send_scheduler_message",
    "add_scheduler_message_response", "get_work", "ping", "decrease_running_task_resources",
    "update_metrics_task_started", "report_task_statistics",
]  # fmt: skip
#: luigid's read calls that its pages make: these pass.
LUIGID_READS = ["task_list", "worker_list", "resource_list", "task_search", "fetch_error",
                "dep_graph", "inverse_dep_graph", "graph", "is_paused", "is_pause_enabled",
                "has_task_history", "get_task_status_message", "get_task_progress_percentage"]  # fmt: skip


@dataclass
class Target:
    """A running proxy: where it listens, the login that opens it, the certificate to trust."""

    port: int
    user: str
    password: str
    pem: str | None = None  # None: the certificate is not checked (tests of TLS itself)
    host: str = "127.0.0.1"
    source: str | None = None  # the client's own address (127.0.0.x), for per-address limits
    extra: dict = field(default_factory=dict)

    def context(self) -> ssl.SSLContext:
        if self.pem:
            return ssl.create_default_context(cadata=self.pem)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context

    def auth(self, user: str | None = None, password: str | None = None) -> str:
        pair = f"{user or self.user}:{self.password if password is None else password}"
        return "Basic " + base64.b64encode(pair.encode()).decode()


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


def request(
    target: Target,
    path: str,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    login: bool | tuple[str, str] = True,
    body: bytes | None = None,
    source: str | None = None,
) -> Answer:
    """One HTTPS request; ``login`` True sends the target's login, a pair sends that one."""
    sent = dict(headers or {})
    if login is True:
        sent["Authorization"] = target.auth()
    elif login:
        sent["Authorization"] = target.auth(*login)
    source_address = (source or target.source, 0) if (source or target.source) else None
    conn = http.client.HTTPSConnection(
        target.host, target.port, context=target.context(), timeout=30,
        source_address=source_address,
    )  # fmt: skip
    started = time.monotonic()
    try:
        conn.putrequest(method, path, skip_host="Host" in sent, skip_accept_encoding=True)
        for name, value in sent.items():
            conn.putheader(name, value)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        data = response.read()
        headers_seen = {k.lower(): v for k, v in response.getheaders()}
        return Answer(response.status, headers_seen, data, time.monotonic() - started)
    finally:
        conn.close()


def plain_http(target: Target, path: str, host_header: str) -> Answer:
    """A plain-HTTP request to the HTTPS port, with the Host header an attacker chose."""
    conn = http.client.HTTPConnection(target.host, target.port, timeout=30)
    try:
        conn.putrequest("GET", path, skip_host=True)
        conn.putheader("Host", host_header)
        conn.endheaders()
        response = conn.getresponse()
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()},
                      response.read(), 0.0)  # fmt: skip
    finally:
        conn.close()


def tls12_suites_accepted(target: Target) -> tuple[list[str], list[str]]:
    """(every TLS 1.2 suite this OpenSSL can offer, those the proxy accepts), one handshake each."""
    probe = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    probe.set_ciphers("ALL:COMPLEMENTOFALL:@SECLEVEL=0")
    offered = sorted({c["name"] for c in probe.get_ciphers() if c["protocol"] == "TLSv1.2"})
    accepted = []
    for name in offered:
        context = _insecure(ssl.TLSVersion.TLSv1_2)
        try:
            context.set_ciphers(f"{name}:@SECLEVEL=0")
        except ssl.SSLError:
            continue
        if _handshake(target, context):
            accepted.append(name)
    return offered, accepted


def protocol_accepted(target: Target, version: ssl.TLSVersion) -> bool:
    context = _insecure(version)
    context.set_ciphers("ALL:@SECLEVEL=0")
    return _handshake(target, context)


def session_ticket_issued(target: Target) -> bool:
    """Whether a TLS 1.2 session comes with a ticket (a key the server keeps for long)."""
    context = _insecure(ssl.TLSVersion.TLSv1_2)
    with socket.create_connection((target.host, target.port), timeout=10) as raw:
        with context.wrap_socket(raw) as tls:
            return bool(tls.session and tls.session.has_ticket)


def _insecure(version: ssl.TLSVersion) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = context.maximum_version = version
    return context


def _handshake(target: Target, context: ssl.SSLContext) -> bool:
    try:
        with socket.create_connection((target.host, target.port), timeout=10) as raw:
            with context.wrap_socket(raw):
                return True
    except (ssl.SSLError, OSError):
        return False


def flood_of_wrong_logins(target: Target, path: str, parallel: int = 16) -> dict:
    """``parallel`` wrong-password requests at once; meanwhile a logged-in client, and a first
    login from another address, ask too. What each saw, in seconds."""
    request(target, path)  # the logged-in client has logged in once already
    with concurrent.futures.ThreadPoolExecutor(parallel) as pool:
        wrong = [
            pool.submit(request, target, path, login=(target.user, f"guess-{i}"))
            for i in range(parallel)
        ]
        time.sleep(0.2)  # the flood is under way
        logged_in = [request(target, path) for _ in range(5)]
        newcomer = request(target, path, source="127.0.0.2", login=(target.user, target.password))
        flood = [f.result() for f in wrong]
    return {
        "logged_in": [(a.status, a.seconds) for a in logged_in],
        "newcomer": (newcomer.status, newcomer.seconds),
        "flood": sorted((a.status, round(a.seconds, 2)) for a in flood),
    }


def repeated_failures(target: Target, path: str, count: int, source: str) -> list[int]:
    """Statuses of ``count`` wrong logins one after another from ``source``."""
    return [
        request(target, path, login=(target.user, f"nope-{i}"), source=source).status
        for i in range(count)
    ]


def as_json(answer: Answer):
    return json.loads(answer.body)


def upstream_marks(proxy) -> dict[str, int]:
    """How many requests each of a running proxy's recording upstreams has received so far."""
    return {name: recorder.mark() for name, recorder in proxy.recorders.items()}


def reached(proxy, marks: dict[str, int]) -> list[tuple[str, str, str, dict]]:
    """(upstream, method, path, headers) of what the upstreams received since ``marks``."""
    return [
        (name, method, path, headers)
        for name, recorder in proxy.recorders.items()
        for method, path, headers in recorder.since(marks[name])
    ]
