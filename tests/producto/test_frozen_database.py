"""producto keeps answering, within its bound, while PostgreSQL is frozen (not stopped).

A stopped server refuses connections at once; a frozen one (SIGSTOP: a stuck host, a full
disk, a paused VM) accepts them in the kernel and then never answers. Every wait of the app must
be bounded then: /health and the API answer 503, /metrics answers with ``ufo_database_up 0``,
each within the 2 s the docs promise. A private PostgreSQL is frozen here, and thawed after.
"""

from __future__ import annotations

import os
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.producto.conftest import start_server, stop_server

pytestmark = pytest.mark.integration

BOUND = 2.5  # seconds: the docs' 2 s and the time of a loopback request


@pytest.fixture
def private_postgres(tmp_path_factory):
    from etl.errors import DatabaseError
    from etl.tools.localpg import LocalPostgres, _bin

    try:
        _bin("initdb")
    except DatabaseError as err:
        pytest.skip(str(err))
    server = LocalPostgres(tmp_path_factory.mktemp("frozen-postgres")).start()
    yield server
    server.discard()


def _instance_pids(data_dir: Path) -> list[int]:
    """The postmaster of ``data_dir`` and every process it started (its backends)."""
    postmaster = int((data_dir / "postmaster.pid").read_text().splitlines()[0])
    pids = [postmaster]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == postmaster:
                pids.append(int(entry.name))
    return pids


def _get(url: str, timeout: float = 30) -> tuple[int, bytes, float]:
    start = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as err:
        status, body = err.code, err.read()
    return status, body, time.monotonic() - start


def test_every_answer_is_bounded_while_the_database_is_frozen(private_postgres, tmp_path):
    server = start_server(private_postgres.url, tmp_path / "producto.log")
    pids: list[int] = []
    try:
        for path in ("/health", "/api/v1/runs", "/metrics"):  # the pool holds connections now
            assert _get(server.url + path)[0] == 200
        pids = _instance_pids(private_postgres.data_dir)
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        timings = {}
        for attempt in (1, 2):  # a pooled connection first, then new ones
            for path in ("/health", "/api/v1/runs", "/api/v1/runs/2019-03-29", "/metrics"):
                status, body, took = _get(server.url + path)
                timings[f"{path} #{attempt}"] = round(took, 2)
                if path == "/metrics":
                    assert status == 200 and b"ufo_database_up 0.0" in body, body[-500:]
                else:
                    assert status == 503, body
                assert took < BOUND, timings
        print("answers with PostgreSQL frozen (s):", timings)
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
    try:
        deadline = time.monotonic() + 15
        while _get(server.url + "/health")[0] != 200:  # thawed: it serves again by itself
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert _get(server.url + "/api/v1/runs")[0] == 200
    finally:
        stop_server(server)
