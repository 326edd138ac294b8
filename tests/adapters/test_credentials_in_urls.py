"""URLs with ``user:password@`` work: the credentials go to the server as HTTP basic auth
(percent-escapes decoded), never into the URL the client resolves, and never into a message."""

from __future__ import annotations

import base64
import gzip
import http.server
import threading
from pathlib import Path

import pytest

from etl.adapters import alerts, source
from etl.errors import SourceError

USER, PASSWORD = "ufo", "p@ss:w/rd"
ESCAPED = "p%40ss%3Aw%2Frd"
BODY = b"Date / Time,City,State,Shape,Duration,Summary,Posted\r\n"


class _Guarded(http.server.BaseHTTPRequestHandler):
    """Answers 401 without the right basic auth; keeps what it was sent."""

    expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    seen: list[tuple[str, str | None]] = []

    def _guard(self) -> bool:
        self.seen.append((self.command, self.headers.get("Authorization")))
        if self.headers.get("Authorization") != self.expected:
            self.send_response(401)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return False
        return True

    def do_GET(self):  # noqa: N802 - http.server's name
        if self._guard():
            body = gzip.compress(BODY)
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self._guard():
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def guarded():
    _Guarded.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Guarded)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_a_source_url_with_credentials_downloads_with_them(guarded):
    url = f"http://{USER}:{ESCAPED}@127.0.0.1:{guarded}/index.csv.gz"
    with source.fetched(url) as local:
        assert Path(local).read_bytes() == BODY
    assert [auth for _, auth in _Guarded.seen] == [_Guarded.expected]


def test_wrong_credentials_are_refused_without_showing_them(guarded):
    url = f"http://{USER}:wrong-Pa55@127.0.0.1:{guarded}/index.csv.gz"
    with pytest.raises(SourceError, match="HTTP 401") as refused:
        with source.fetched(url):
            pass
    assert "wrong-Pa55" not in str(refused.value)


def test_a_webhook_url_with_credentials_posts_with_them(guarded):
    alert = alerts.Alert("a test", (alerts.Failure("ReadUFOs", ("2019-03-29",), "why"),))
    alerts.send_webhook(alert, f"http://{USER}:{ESCAPED}@127.0.0.1:{guarded}/hook",
                        sleep=lambda _: None)  # fmt: skip
    assert _Guarded.seen == [("POST", _Guarded.expected)]
