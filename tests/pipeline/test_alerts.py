"""Failure alerts of ``python -m luigi`` runs, received by a real SMTP server and HTTP server.

One failed run sends exactly one alert on each channel, saying what failed, for which run
dates, the run's own ``ufo: error:`` line and where the log is, without any secret; a backfill
sends one alert for all its dates; channels that are down never change how the run ends.
"""

from __future__ import annotations

import json
import time

import pytest

from etl.adapters import alerts
from etl.pipeline.reporting import failed_tasks
from tests.receivers import HttpSink, Mailbox
from tests.support import free_port, pipeline_env, run_luigi

pytestmark = pytest.mark.integration

TASK_FAILED = 30
SMTP_USER, SMTP_PASSWORD = "alerts@example.org", "smtp-Pa55-word"
SOURCE_PASSWORD = "src-Pa55-word"
HOOK_TOKEN = "T0KEN-of-the-hook"


def _config(tmp_path, smtp_port: int) -> str:
    path = tmp_path / "alerts.cfg"
    path.write_text(
        f"[smtp]\nhost = 127.0.0.1\nport = {smtp_port}\nusername = {SMTP_USER}\ntimeout = 5\n"
        "[email]\nsender = ufo@example.org\n"
    )
    return str(path)


def _env(tmp_path, smtp_port: int, hook: str, source: str) -> dict:
    return pipeline_env(
        str(tmp_path / "lake"), None, source,
        LUIGI_CONFIG_PATH=_config(tmp_path, smtp_port), UFO_ALERT_EMAIL="oncall@example.org",
        UFO_SMTP_PASSWORD=SMTP_PASSWORD, UFO_ALERT_WEBHOOK=hook, UFO_LOG_DIR=str(tmp_path / "logs"),
    )  # fmt: skip


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("ufo: error: ")]


def _body(mail) -> str:
    """The plain text of a message (Luigi sends multipart/related)."""
    return mail.get_body(preferencelist=("plain",)).get_content()


def _no_secret(*texts: str) -> None:
    for text in texts:
        for secret in (SMTP_PASSWORD, SOURCE_PASSWORD, HOOK_TOKEN):
            assert secret not in text


def test_a_failed_run_sends_one_alert_by_mail_and_one_to_the_webhook(tmp_path):
    closed = free_port()  # nothing listens: the source cannot be read
    source = f"https://reader:{SOURCE_PASSWORD}@127.0.0.1:{closed}/nuforc.csv"
    with Mailbox(free_port(), SMTP_USER, SMTP_PASSWORD) as mailbox, HttpSink() as sink:
        hook = f"{sink.url}/hooks/{HOOK_TOKEN}"
        env = _env(tmp_path, mailbox.controller.port, hook, source)
        result = run_luigi("ReadUFOs", "--date", "2019-03-29", "--local-scheduler", env=env)
        assert result.returncode == TASK_FAILED, result.stderr[-3000:]
        [line] = _error_lines(result.stderr)
        posts = sink.wait_for(1)
    # The docs: the error line is the run's last, after the alerts' own lines.
    assert result.stderr.rstrip("\n").splitlines()[-1] == line, result.stderr[-2000:]
    assert "alerts: sent" in result.stdout + result.stderr
    assert len(mailbox.messages) == 1 and mailbox.logins == [SMTP_USER]
    [mail] = mailbox.messages
    assert mail["To"] == "oncall@example.org"
    assert mail["Subject"] == "ufo: ReadUFOs failed for 2019-03-29"
    body = _body(mail)
    assert line in body and "ReadUFOs, run date 2019-03-29" in body
    assert str(tmp_path / "logs" / "pipeline.log") in body

    [(path, payload)] = posts
    assert path == f"/hooks/{HOOK_TOKEN}"
    assert payload["text"] == body.rstrip("\n")
    [failure] = payload["alert"]["failures"]
    assert failure == {"what": "ReadUFOs", "dates": ["2019-03-29"], "reason": line}
    _no_secret(body, json.dumps(payload), result.stdout, result.stderr)
    assert not list(tmp_path.glob("ufo-run-*"))  # the ledger is removed


def test_a_failed_backfill_sends_one_alert_for_all_its_dates(tmp_path):
    missing = str(tmp_path / "nowhere.csv")
    with Mailbox(free_port(), SMTP_USER, SMTP_PASSWORD) as mailbox, HttpSink() as sink:
        env = _env(tmp_path, mailbox.controller.port, f"{sink.url}/hook", missing)
        result = run_luigi(
            "RangeDaily", "--of", "ReadUFOs", "--start", "2019-03-01", "--stop", "2019-03-08",
            "--days-back", "36500", "--local-scheduler", "--workers", "2", env=env,
        )  # fmt: skip
        assert result.returncode != 0, result.stderr[-3000:]
        posts = sink.wait_for(1)
        time.sleep(1)  # a second alert, if any, would have arrived by now
    expected_dates = [f"2019-03-0{day}" for day in range(1, 8)]
    assert len(mailbox.messages) == 1 and len(sink.posts) == 1
    [failure] = posts[0][1]["alert"]["failures"]
    assert failure["what"] == "ReadUFOs" and failure["dates"] == expected_dates
    assert "2019-03-01..2019-03-07 (7 dates)" in _body(mailbox.messages[0])


def test_channels_that_are_down_do_not_change_how_the_run_ends(tmp_path):
    missing = str(tmp_path / "nowhere.csv")
    env = _env(tmp_path, free_port(), f"http://127.0.0.1:{free_port()}/hook", missing)
    started = time.monotonic()
    result = run_luigi("ReadUFOs", "--date", "2019-03-29", "--local-scheduler", env=env)
    took = time.monotonic() - started
    assert result.returncode == TASK_FAILED
    assert len(_error_lines(result.stderr)) == 1
    out = result.stdout + result.stderr
    assert "alerts: the webhook alert was not sent" in out
    assert "alerts: the e-mail alert was not sent" in out or "Not able to connect" in out
    assert "_Refused" not in out  # what failed, in words, not an internal class name
    assert result.stderr.rstrip("\n").splitlines()[-1].startswith("ufo: error: ")
    assert took < 60, "refused connections must fail fast"
    _no_secret(out)


def test_a_run_without_failures_sends_nothing(tmp_path):
    source = tmp_path / "reports.csv"
    source.write_text(
        "Date / Time,City,State,Shape,Duration,Summary,Posted\r\n"
        "3/1/19 21:00,Austin,TX,Light,5 minutes,A light,3/2/19\r\n"
    )
    with Mailbox(free_port(), SMTP_USER, SMTP_PASSWORD) as mailbox, HttpSink() as sink:
        env = _env(tmp_path, mailbox.controller.port, f"{sink.url}/hook", str(source))
        result = run_luigi("ReadUFOs", "--date", "2019-03-29", "--local-scheduler", env=env)
        assert result.returncode == 0, result.stderr[-3000:]
        assert (tmp_path / "lake" / "raw" / "date=2019-03-29" / "_MANIFEST.json").exists()
        time.sleep(0.5)
    assert mailbox.messages == [] and sink.posts == []


def test_the_webhook_is_tried_again_after_a_server_error_and_not_after_a_refusal():
    alert = alerts.Alert("a test", (alerts.Failure("ReadUFOs", ("2019-03-29",), "why"),))
    with HttpSink(statuses=[503, 502]) as sink:
        alerts.send_webhook(alert, f"{sink.url}/hook", sleep=lambda _: None)
        assert [body for _, body in sink.posts] == [alert.payload()]
    with HttpSink(statuses=[404]) as sink, pytest.raises(alerts.NotDelivered, match="HTTP 404"):
        alerts.send_webhook(alert, f"{sink.url}/hook", sleep=lambda _: None)
    assert sink.posts == []


def test_the_ledger_keeps_the_last_outcome_of_each_task(tmp_path):
    """A failure that a retry mended is no failure; two failed tasks are both listed."""
    ledger = tmp_path / "ledger.jsonl"
    entries = [
        ("A(date=1)", "A", ["2019-03-01"], "failed"),
        ("B(date=1)", "B", ["2019-03-01"], "failed"),
        ("A(date=1)", "A", ["2019-03-01"], "done"),
        ("C(date=1)", "C", ["2019-03-01", "2019-03-02"], "failed"),
    ]
    lines = [
        json.dumps({"id": i, "family": f, "dates": d, "outcome": o, "reason": f"ufo: error: {i}"})
        for i, f, d, o in entries
    ]
    ledger.write_text("\n".join(lines) + '\n{"id": "cut sh')
    found = failed_tasks(ledger)
    assert [(f.what, f.dates) for f in found] == [
        ("B", ("2019-03-01",)), ("C", ("2019-03-01", "2019-03-02")),
    ]  # fmt: skip


def test_an_alert_without_a_run_date_does_not_speak_of_one():
    failure = alerts.Failure("run request bad.yaml", (), "not valid YAML: mapping values ...")
    alert = alerts.Alert("the worker's run requests", (failure,), "requests/bad.error.yaml")
    assert alert.subject == "ufo: run request bad.yaml failed"
    assert "run date" not in alert.text
    assert "- run request bad.yaml:\n  not valid YAML" in alert.text
    dated = alerts.Alert("a pipeline run", (alerts.Failure("ReadUFOs", ("2019-03-29",), "why"),))
    assert dated.subject == "ufo: ReadUFOs failed for 2019-03-29"
    assert "- ReadUFOs, run date 2019-03-29:\n  why" in dated.text
