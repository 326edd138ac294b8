"""The proxy outside Docker, as `make up` runs it: ``python -m etl.proxy`` with Debian's nginx,
in front of five recording upstreams that keep every request they receive. One proxy for the
package's tests (module ``proxy``), each test reading what the upstreams saw of its requests.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from etl.tools import proxyuser
from tests.proxy.support import CONSOLE_KEY, Target
from tests.support import REPO, free_port, have

USER, PASSWORD = "alice", secrets.token_urlsafe(18)
OTHER_USER, OTHER_PASSWORD = "bob", secrets.token_urlsafe(18)
PUBLIC_NAME = "ufo.test"
#: The services behind the proxy, by its setting.
SERVICES = ("PROXY_PRODUCTO", "PROXY_LUIGID", "PROXY_SPARK", "PROXY_HISTORY", "PROXY_CONSOLE")


class Recorder:
    """An HTTP server on 127.0.0.1 that keeps (method, raw path, headers) of every request.

    Its answer echoes the request as JSON (upstream, method, path, headers, body, and
    header_lines: every header line as received, a repeated one too); a path holding
    ``/redirect-me`` is answered with an absolute redirect built from the Host it was given, as
    Jetty and Starlette build theirs."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.seen: list[tuple[str, str, dict[str, str]]] = []
        self._lock = threading.Lock()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                sent = self.rfile.read(length) if length else b""
                with recorder._lock:
                    recorder.seen.append((self.command, self.path, dict(self.headers.items())))
                if "/redirect-me" in self.path:
                    self.send_response(302)
                    self.send_header("Location", f"http://{self.headers['Host']}/landed")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = json.dumps({
                    "upstream": recorder.name, "method": self.command, "path": self.path,
                    "headers": dict(self.headers.items()), "body": sent.decode("latin-1"),
                    "header_lines": [[name, value] for name, value in self.headers.items()],
                }).encode()  # fmt: skip
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_POST = do_HEAD = _answer  # noqa: N815
            do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _answer  # noqa: N815

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def since(self, mark: int) -> list[tuple[str, str, dict[str, str]]]:
        with self._lock:
            return list(self.seen[mark:])

    def mark(self) -> int:
        with self._lock:
            return len(self.seen)


class RunningProxy:
    """``python -m etl.proxy`` as a child process, its recorders and its folders."""

    def __init__(self, tmp: Path, env_extra: dict[str, str] | None = None) -> None:
        self.recorders = {name: Recorder(name) for name in SERVICES}
        self.port = free_port()
        self.tmp = tmp
        self.env = {
            **os.environ,
            "PROXY_USERS": f"{proxyuser.entry(USER, PASSWORD)} {proxyuser.entry(OTHER_USER, OTHER_PASSWORD)}",
            "PROXY_LISTEN": f"127.0.0.1:{self.port}",
            "PROXY_HOSTNAME": PUBLIC_NAME,
            "PROXY_RUN_DIR": str(tmp / "run"),
            "PROXY_STATE_DIR": str(tmp / "state"),
            "PROXY_LOG_DIR": str(tmp / "logs"),
            "PROXY_TLS_DIR": str(tmp / "tls"),
            "PROXY_CONSOLE_KEY": CONSOLE_KEY,
            **{name: rec.address for name, rec in self.recorders.items()},
            **(env_extra or {}),
        }
        self.log = tmp / "proxy.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "etl.proxy"], cwd=REPO, env=self.env, stdout=out,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the proxy ended at start:\n{self.log.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.2)
        pytest.fail(f"the proxy did not listen within 30 s:\n{self.log.read_text()}")

    def stop(self) -> int:
        """SIGTERM, as `docker stop` and `make stop` send; the exit status."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)

    def target(self) -> Target:
        return Target(port=self.port, user=USER, password=PASSWORD)

    def access_log(self) -> str:
        return (self.tmp / "logs" / "access.log").read_text()


def _require_nginx() -> None:
    if not have("nginx") and not Path("/usr/sbin/nginx").exists():
        pytest.skip("needs nginx (Debian's nginx-light; tests/setup-system.sh installs it)")


@pytest.fixture(scope="package")
def proxy(tmp_path_factory):
    _require_nginx()
    # Many tests log in wrongly from 127.0.0.1 on purpose: the limit on failures is tested on
    # a proxy of its own (another_proxy), with the default.
    running = RunningProxy(tmp_path_factory.mktemp("proxy"), {"PROXY_LOGIN_FAILURES": "10000"})
    running.start()
    yield running
    if running.process and running.process.poll() is None:
        running.stop()


@pytest.fixture
def another_proxy(tmp_path):
    """A proxy of the test's own (for its settings, its start and its stop)."""
    _require_nginx()
    started: list[RunningProxy] = []

    def make(**env_extra: str) -> RunningProxy:
        running = RunningProxy(tmp_path / f"p{len(started)}", env_extra)
        running.tmp.mkdir()
        started.append(running)
        return running

    yield make
    for running in started:
        if running.process and running.process.poll() is None:
            running.stop()
