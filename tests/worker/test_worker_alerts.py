"""The worker service's alerts: one per request that ends in ``.error.yaml``, one per failed or
timed-out scheduled run, received by a real SMTP server and a real HTTP server; the runs it
starts send none of their own."""

from __future__ import annotations

import datetime as dt
import time
from zoneinfo import ZoneInfo

import pytest
import yaml

from etl.adapters.alerts import Outbox
from etl.worker.schedule import DailySchedule
from tests.receivers import HttpSink, Mailbox
from tests.support import free_port, pipeline_env
from tests.worker.support import hook_pids, kill_all, lake_with_source, run_hook, run_worker

pytestmark = pytest.mark.integration

USER, PASSWORD = "alerts@example.org", "smtp-Pa55-word"


def test_each_failed_request_sends_one_alert_and_its_run_none(tmp_path):
    requests, src = lake_with_source(tmp_path)
    (requests / "a-missing.yaml").write_text(
        f"task: ReadUFOs\nparams: {{date: 2019-03-28}}\nenv: {{UFO_SOURCE: {tmp_path}/none.csv}}\n"
    )
    (requests / "b-broken.yaml").write_text("task: [ReadUFOs\n")
    (requests / "c-good.yaml").write_text("task: ReadUFOs\nparams: {date: 2019-03-29}\n")
    config = tmp_path / "smtp.cfg"
    with Mailbox(free_port(), USER, PASSWORD) as mailbox, HttpSink() as sink:
        config.write_text(
            f"[smtp]\nhost = 127.0.0.1\nport = {mailbox.controller.port}\nusername = {USER}\n"
        )
        env = pipeline_env(
            str(requests.parent), None, str(src), LUIGI_CONFIG_PATH=str(config),
            UFO_ALERT_EMAIL="oncall@example.org", UFO_SMTP_PASSWORD=PASSWORD,
            UFO_ALERT_WEBHOOK=f"{sink.url}/hook",
        )  # fmt: skip
        result = run_worker(env)  # --once: exits after the pass, once its alerts are sent
        assert result.returncode == 1, result.stderr[-3000:]
        time.sleep(1)  # a third alert, if any, would have arrived by now
    failures = {post["alert"]["failures"][0]["what"]: post for _, post in sink.posts}
    assert sorted(failures) == ["run request a-missing.yaml", "run request b-broken.yaml"]
    assert len(sink.posts) == 2 and len(mailbox.messages) == 2
    assert sorted(m["Subject"] for m in mailbox.messages) == [
        "ufo: run request a-missing.yaml failed for 2019-03-28",
        "ufo: run request b-broken.yaml failed",  # bad YAML: no run date to speak of
    ]
    for name in ("a-missing", "b-broken"):
        recorded = yaml.safe_load((requests / f"{name}.error.yaml").read_text())["error"]
        alert = failures[f"run request {name}.yaml"]["alert"]
        assert alert["failures"][0]["reason"] == recorded
    missing = failures["run request a-missing.yaml"]["alert"]
    assert missing["failures"][0]["dates"] == ["2019-03-28"]
    assert missing["log"] == str(requests / "a-missing.log")
    assert failures["run request b-broken.yaml"]["alert"]["log"].endswith("b-broken.error.yaml")


def test_a_failed_and_a_timed_out_scheduled_run_each_send_one_alert(tmp_path, monkeypatch):
    monkeypatch.setenv("UFO_STORAGE", str(tmp_path / "lake"))
    monkeypatch.setenv("UFO_SOURCE", str(tmp_path / "none.csv"))
    monkeypatch.delenv("UFO_DATABASE_URL", raising=False)  # the run fails at once, saying so
    day = dt.datetime(2026, 11, 22, 3, 0, tzinfo=dt.UTC)
    with HttpSink() as sink:
        monkeypatch.setenv("UFO_ALERT_WEBHOOK", f"{sink.url}/hook")
        outbox = Outbox()
        failing = DailySchedule(dt.time(2, 0), ZoneInfo("UTC"), ["--local-scheduler"],
                                timeout=120, alerts=outbox)  # fmt: skip
        failed = failing.run_if_due(day)

        hook, hook_env = run_hook(tmp_path, "hang")
        for name, value in hook_env.items():
            monkeypatch.setenv(name, value)
        hanging = DailySchedule(dt.time(2, 0), ZoneInfo("UTC"), ["--local-scheduler"],
                                timeout=2, alerts=outbox)  # fmt: skip
        try:
            timed_out = hanging.run_if_due(day + dt.timedelta(days=1))
        finally:
            kill_all(hook_pids(hook, "run"))
        outbox.close()
        posts = sink.wait_for(2)
    assert failed.exit_code != 0 and timed_out.timed_out
    assert len(posts) == 2
    first, second = (body["alert"]["failures"] for _, body in posts)
    assert first[0]["dates"] == ["2026-11-21"] and first[0]["reason"] == failed.reason
    assert failed.reason.startswith("ufo: error: TopStatesToDatabase")
    assert second[0]["dates"] == ["2026-11-22"] and "timed out after 2 s" in second[0]["reason"]
