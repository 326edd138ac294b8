"""Real local servers that receive what the pipeline sends out: mail, webhooks, lineage events.

``Mailbox`` is an SMTP server (aiosmtpd) that asks for a login and keeps each message it is
given; ``HttpSink`` is an HTTP server that keeps each POST's path and JSON body and answers
with the statuses it is told to (200 once they run out).
"""

from __future__ import annotations

import email
import email.policy
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Mailbox:
    """An SMTP server on 127.0.0.1 that accepts ``user``/``password`` logins only."""

    def __init__(self, port: int, user: str, password: str):
        self.messages: list[email.message.EmailMessage] = []
        self.logins: list[str] = []
        self.user, self.password = user, password
        self.controller = Controller(
            self, hostname="127.0.0.1", port=port, authenticator=self._authenticate,
            auth_require_tls=False,
        )  # fmt: skip

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and (
            auth_data.login.decode(),
            auth_data.password.decode(),
        ) == (self.user, self.password)
        if ok:
            self.logins.append(auth_data.login.decode())
        return AuthResult(success=ok)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        if not session.authenticated:
            return "530 Authentication required"
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append(message)
        return "250 OK"

    def __enter__(self) -> Mailbox:
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()


class HttpSink:
    """An HTTP server on 127.0.0.1 that keeps every POST (path, JSON body)."""

    def __init__(self, statuses: list[int] | None = None):
        self.posts: list[tuple[str, dict]] = []
        self.statuses = list(statuses or [])
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                status = sink.statuses.pop(0) if sink.statuses else 200
                if status == 200:
                    sink.posts.append((self.path, json.loads(body)))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def wait_for(self, count: int, timeout: float = 30.0) -> list[tuple[str, dict]]:
        """The posts once there are ``count`` of them (or all there are after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while len(self.posts) < count and time.monotonic() < deadline:
            time.sleep(0.1)
        return list(self.posts)

    def __enter__(self) -> HttpSink:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
