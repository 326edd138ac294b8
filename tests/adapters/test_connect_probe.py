"""The warm path's "does it answer": decided by the Spark Connect protocol, within a bound.

No Spark here: the impostors are a plain web server and a port that accepts connections but
never says anything (tests/pipeline/test_spark_connect.py runs a real server).
"""

from __future__ import annotations

import http.server
import socket
import threading
import time

import pytest

from etl.adapters import spark
from etl.errors import ConfigError
from etl.settings import load_settings


@pytest.fixture
def web_server():
    """A plain HTTP server on 127.0.0.1 (producto stood in that port in the reproduction)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"sc://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def silent_port():
    """A port that accepts connections and never answers."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        yield f"sc://127.0.0.1:{listener.getsockname()[1]}"


def test_a_web_server_on_the_port_is_not_a_spark_connect_server(web_server):
    start = time.monotonic()
    problem = spark.connect_problem(web_server, timeout=3)
    assert time.monotonic() - start < 5
    assert problem and "\n" not in problem
    assert not spark.connect_answers(web_server, timeout=3)


def test_a_port_that_never_answers_is_given_up_on_within_the_bound(silent_port):
    start = time.monotonic()
    assert not spark.connect_answers(silent_port, timeout=2)
    assert time.monotonic() - start < 4


def test_a_token_asks_for_tls_that_a_plain_server_cannot_give(web_server):
    start = time.monotonic()
    problem = spark.connect_problem(f"{web_server}/;token=s3cr3t-token", timeout=3)
    assert time.monotonic() - start < 5
    assert problem and "s3cr3t-token" not in problem


@pytest.mark.parametrize(
    "remote",
    [
        "sc://127.0.0.1:notaport",
        "sc://127.0.0.1:99999",
        "sc://127.0.0.1:0",
        "sc://127.0.0.1:15002/extra/path",
        "sc://:15002",
        "sc://127.0.0.1:15002/;token",
        "http://127.0.0.1:15002",
    ],
)
def test_an_address_that_is_not_whole_is_refused_at_start_naming_the_variable(remote, monkeypatch):
    monkeypatch.setenv("UFO_SPARK_REMOTE", remote)
    with pytest.raises(ConfigError, match="UFO_SPARK_REMOTE.*sc://HOST:PORT"):
        load_settings()


@pytest.mark.parametrize(
    "remote",
    ["sc://127.0.0.1:15002", "sc://spark-connect:1", "sc://[::1]:65535",
     "sc://host:15002/;token=abc;user_id=ufo", "sc://localhost"],
)  # fmt: skip
def test_a_whole_address_is_taken(remote, monkeypatch):
    monkeypatch.setenv("UFO_SPARK_REMOTE", remote)
    assert load_settings().spark_remote == remote


def test_a_refused_address_does_not_show_its_token(monkeypatch):
    monkeypatch.setenv("UFO_SPARK_REMOTE", "sc://127.0.0.1:99999/;token=s3cr3t-token")
    with pytest.raises(ConfigError) as refused:
        load_settings()
    assert "s3cr3t-token" not in str(refused.value)


def test_the_spark_uis_address_is_read_from_the_line_spark_logs_as_it_starts(tmp_path):
    from etl.adapters.spark import ui_address
    from etl.tools.connect import live_ui

    line = "25/12/06 20:00:17 INFO JettyUtils: Start Jetty 127.0.0.1:4099 for SparkUI"
    assert ui_address(line) == "http://127.0.0.1:4099"
    assert ui_address("Start Jetty 0.0.0.0:4040 for SparkUI") == f"http://{socket.getfqdn()}:4040"
    assert ui_address("INFO Utils: Successfully started service 'SparkUI' on port 4040.") is None
    log = tmp_path / "connect.log"
    log.write_text(f"starting\n{line}\nStart Jetty 127.0.0.1:4100 for SparkUI\nready\n")
    assert live_ui(log) == "http://127.0.0.1:4100"  # the last start: a restarted UI
    assert live_ui(tmp_path / "absent.log") is None
