"""The login verifier: nginx asks it (``auth_request``) whether a request's login is right.

nginx's own ``auth_basic`` checks a bcrypt hash inside an nginx worker: a quarter of a second in
which that worker serves no one else, so a few wrong-password requests in parallel stall every
other client. Here the check runs beside nginx, and three rules keep its cost away from others:

* a login verified once is remembered (a keyed digest of the header, never the password) for
  ``cache_seconds``: a logged-in user's requests cost a dictionary look-up, not a bcrypt check;
* at most one bcrypt check runs at a time, at most ``queue`` wait for it and at most
  ``per_address`` of those come from one address; beyond that a new login is answered "busy"
  at once, so a flood of guesses keeps one core at most and one address cannot fill the queue;
* an address with ``failures`` wrong logins within ``window`` seconds is refused without a
  check until its oldest failure is ``window`` seconds old.

A user name that does not exist costs the same bcrypt check as a wrong password, so the time of
an answer does not tell which names exist.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import http.server
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

import bcrypt

OK, DENIED, LIMITED = "ok", "denied", "limited"


@dataclass(frozen=True)
class Decision:
    """The verifier's answer: OK (with the user), DENIED, or LIMITED (too many failures, busy)."""

    outcome: str
    user: str | None = None


class Verifier:
    """Checks ``Authorization: Basic`` values against the users' bcrypt hashes."""

    def __init__(
        self,
        users: dict[str, bytes],
        cache_seconds: float = 300.0,
        failures: int = 10,
        window: float = 60.0,
        queue: int = 8,
        per_address: int = 2,
        cache_size: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._users = dict(users)
        self._cache_seconds = cache_seconds
        self._failures_allowed = failures
        self._window = window
        self._queue = queue
        self._per_address = per_address
        self._cache_size = cache_size
        self._clock = clock
        self._key = secrets.token_bytes(32)
        self._lock = threading.Lock()
        self._cache: OrderedDict[bytes, tuple[str, float]] = OrderedDict()
        self._failures: dict[str, deque[float]] = {}
        self._checking = threading.Lock()
        self._waiting: dict[str, int] = {}
        # An unknown name is checked against this, at the users' own cost.
        cost = int(next(iter(users.values()))[4:6]) if users else 12
        self._decoy = bcrypt.hashpw(secrets.token_bytes(16), bcrypt.gensalt(rounds=cost))

    def check(self, authorization: str | None, address: str) -> Decision:
        """The decision for one request's ``Authorization`` header from ``address``."""
        credentials = _basic(authorization)
        if credentials is None:
            return Decision(DENIED)
        digest = hmac.new(self._key, authorization.encode("utf-8"), hashlib.sha256).digest()
        now = self._clock()
        with self._lock:
            cached = self._cache.get(digest)
            if cached and cached[1] > now:
                self._cache.move_to_end(digest)
                return Decision(OK, cached[0])
            if self._limited(address, now):
                return Decision(LIMITED)
            mine = self._waiting.get(address, 0)
            if sum(self._waiting.values()) >= self._queue or mine >= self._per_address:
                return Decision(LIMITED)
            self._waiting[address] = mine + 1
        try:
            with self._checking:
                user = self._verify(*credentials)
        finally:
            with self._lock:
                self._waiting[address] -= 1
                if not self._waiting[address]:
                    del self._waiting[address]
        now = self._clock()
        with self._lock:
            if user is None:
                self._failures.setdefault(address, deque()).append(now)
                return Decision(DENIED)
            self._cache[digest] = (user, now + self._cache_seconds)
            self._cache.move_to_end(digest)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
            return Decision(OK, user)

    def _limited(self, address: str, now: float) -> bool:
        times = self._failures.get(address)
        if not times:
            return False
        while times and times[0] <= now - self._window:
            times.popleft()
        if not times:
            del self._failures[address]
            return False
        return len(times) >= self._failures_allowed

    def _verify(self, name: str, password: bytes) -> str | None:
        hashed = self._users.get(name)
        try:
            right = bcrypt.checkpw(password, hashed or self._decoy)
        except ValueError:  # a password bcrypt refuses (over 72 bytes, a NUL): never right
            right = False
        return name if right and hashed is not None else None


def _basic(authorization: str | None) -> tuple[str, bytes] | None:
    """(name, password) of a ``Basic`` header, or None for anything else."""
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "basic" or len(value) > 1024:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    name, colon, password = decoded.partition(b":")
    if not colon:
        return None
    try:
        return name.decode("utf-8"), password
    except UnicodeDecodeError:
        return None


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # nginx keeps its connections to the verifier open
    server_version = "ufo-proxy-verifier"
    sys_version = ""

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        if self.path.startswith("/absent/"):
            # A route whose service this stack does not run: said after the login, not before.
            service = self.path.split("/")[2]
            self._answer(404, {}, f"no {service} behind this proxy\n".encode())
            return
        decision = self.server.verifier.check(
            self.headers.get("Authorization"), self.headers.get("X-Client-Addr", "")
        )
        if decision.outcome == OK:
            self._answer(200, {"X-Ufo-User": decision.user})
        elif decision.outcome == LIMITED:
            self._answer(401, {"X-Ufo-Limited": "1"})
        else:
            self._answer(401, {})

    do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_GET  # noqa: N815

    def _answer(self, status: int, headers: dict[str, str], body: bytes = b"") -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(min(length, 1 << 20))
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:  # noqa: A002
        pass  # nginx's access log records every request; nothing of a login is logged here


class VerifierServer(http.server.ThreadingHTTPServer):
    """The verifier over HTTP on 127.0.0.1, on a port the system chooses, a thread a connection.

    Loopback TCP rather than a Unix socket: nginx's workers run as another user when nginx
    starts as root, and may not be allowed into the folder a socket would be in."""

    daemon_threads = True

    def __init__(self, verifier: Verifier) -> None:
        self.verifier = verifier
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"

    def serve_in_background(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name="verifier", daemon=True)
        thread.start()
        return thread
