"""The local history server's settings (``make up``); serving the demo's application is tested
in tests/producto/test_local_product.py."""

from __future__ import annotations

import pytest

from etl.adapters import spark
from etl.errors import UfoError
from etl.tools import history


def test_it_reads_the_demos_event_logs_on_the_port_given(tmp_path):
    events = str(tmp_path / "ev")
    argv, extra = history.command(events, 18555, "127.0.0.1")
    assert argv[0].endswith("/bin/spark-class") and argv[1].endswith("HistoryServer")
    options = dict(o[2:].split("=", 1) for o in extra["SPARK_HISTORY_OPTS"].split())
    assert options["spark.history.fs.logDirectory"] == (tmp_path / "ev").as_uri()
    assert options["spark.history.ui.port"] == "18555"
    assert options["spark.history.fs.cleaner.enabled"] == "true"
    assert extra["SPARK_LOCAL_IP"] == "127.0.0.1"  # its UI binds there only
    assert (tmp_path / "ev").is_dir()  # Spark refuses a missing directory


def test_a_url_elsewhere_is_refused():
    history.check_local(None)
    history.check_local("http://127.0.0.1:18555")
    with pytest.raises(UfoError, match="not on this machine"):
        history.check_local("https://spark.example.org")


def test_event_log_settings_for_a_path_a_file_uri_and_s3a(tmp_path):
    local = spark.event_log_conf(str(tmp_path / "a"))
    assert local["spark.eventLog.dir"] == (tmp_path / "a").as_uri() and (tmp_path / "a").is_dir()
    assert spark.event_log_conf((tmp_path / "b").as_uri())["spark.eventLog.dir"].endswith("/b")
    assert (tmp_path / "b").is_dir()
    remote = spark.event_log_conf("s3a://bucket/spark-events")
    assert remote["spark.eventLog.dir"] == "s3a://bucket/spark-events"
    assert remote["spark.eventLog.rolling.enabled"] == "true"
    assert (
        spark.history_page("http://h:1/history/", "app-1")
        == "http://h:1/history/history/app-1/jobs/"
    )
