"""The console as a real server (``python -m etl.console``) over a real PostgreSQL and a lake
folder whose run requests, results and logs a test writes as the worker leaves them."""

from __future__ import annotations

import datetime as dt
import http.client
import os
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.support import REPO, free_port, new_database
from tests.worker.test_ops_cli import insert_runs


@dataclass
class Console:
    url: str
    lake: Path
    process: subprocess.Popen
    log: Path
    cookies: dict[str, str] = field(default_factory=dict)

    @property
    def requests(self) -> Path:
        return self.lake / "requests"

    def call(self, method: str, path: str, body: dict | None = None, headers: dict | None = None,
             cookies: bool = True) -> tuple[int, dict[str, str], str]:  # fmt: skip
        """One HTTP request; (status, headers with lower-case names, body)."""
        parts = urllib.parse.urlsplit(self.url)
        sent = {"Host": parts.netloc, **(headers or {})}
        if cookies and self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        data = None
        if body is not None:
            data = urllib.parse.urlencode(body)
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        try:
            conn.request(method, path, data, sent)
            answer = conn.getresponse()
            got = {k.lower(): v for k, v in answer.getheaders()}
            for header, value in answer.getheaders():
                if header.lower() == "set-cookie":
                    name, _, rest = value.partition("=")
                    self.cookies[name] = rest.split(";", 1)[0]
            return answer.status, got, answer.read().decode()
        finally:
            conn.close()


def start_console(tmp_path: Path, database_url: str, **env: str) -> Console:
    lake = tmp_path / "lake"
    (lake / "requests").mkdir(parents=True, exist_ok=True)
    port = free_port()
    given = {k: v for k, v in os.environ.items() if not k.startswith(("UFO_", "PRODUCTO_"))}
    given.update(UFO_STORAGE=str(lake), UFO_CONSOLE_DATABASE_URL=database_url,
                 UFO_TIMEZONE="UTC", UFO_LOG_DIR=str(tmp_path / "logs"), **env)  # fmt: skip
    log = tmp_path / "console.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "etl.console", "--port", str(port)],
        cwd=REPO, env=given, stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    console = Console(f"http://127.0.0.1:{port}", lake, process, log)
    deadline = time.monotonic() + 30
    while True:
        try:
            if console.call("GET", "/health", cookies=False)[0] == 200:
                return console
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(log.read_text()[-3000:])
        time.sleep(0.1)


def stop_console(console: Console) -> None:
    console.process.terminate()
    try:
        console.process.wait(10)
    except subprocess.TimeoutExpired:
        console.process.kill()


# -- luigid's task history, as Luigi's own DbTaskHistory tables hold it --------------------------


def luigid_history(postgres, rows: list[tuple[str, str, str, list[tuple[str, str]]]]) -> str:
    """A luigid history database with, per row, (task, date value, host, [(event, ts)]); the
    tables are Luigi's own (its ORM), as luigid creates them."""
    from luigi import db_task_history

    url = new_database(postgres)
    engine = sa.create_engine(url)
    db_task_history.Base.metadata.create_all(engine)
    with engine.begin() as conn:
        for n, (name, value, host, events) in enumerate(rows, start=1):
            conn.execute(sa.text("INSERT INTO tasks (id, task_id, name, host) VALUES "
                                 "(:id, :tid, :name, :host)"),
                         {"id": n, "tid": f"{name}_{n}", "name": name, "host": host})  # fmt: skip
            conn.execute(sa.text("INSERT INTO task_parameters (task_id, name, value) VALUES "
                                 "(:id, 'date', :value)"), {"id": n, "value": value})  # fmt: skip
            for event, ts in events:
                conn.execute(sa.text("INSERT INTO task_events (task_id, event_name, ts) VALUES "
                                     "(:id, :event, :ts)"),
                             {"id": n, "event": event, "ts": dt.datetime.fromisoformat(ts)})  # fmt: skip
    engine.dispose()
    return url


__all__ = ["Console", "insert_runs", "luigid_history", "start_console", "stop_console"]


@pytest.fixture
def console_db(database_url) -> str:
    return database_url
