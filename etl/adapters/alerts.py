"""Failure alerts to people: one message on every configured channel, bounded in time.

Two channels, each on only when configured:

* e-mail to ``UFO_ALERT_EMAIL`` through Luigi's own notifications (``luigi.notifications``):
  luigi.cfg's ``[email]`` (sender, method, prefix) and ``[smtp]`` (host, port, ssl, username,
  timeout); the password comes from ``UFO_SMTP_PASSWORD``, never from a file;
* a JSON POST to ``UFO_ALERT_WEBHOOK`` whose ``text`` Slack, Mattermost, Rocket.Chat and Google
  Chat show as is; ``alert`` carries the same facts for programs.

Sending never fails or holds up what reports the failure: every error is logged (without the
webhook's URL, which is a secret) and dropped; a webhook gets ``WEBHOOK_ATTEMPTS`` tries of
``WEBHOOK_TIMEOUT`` seconds each, and ``deliver`` waits at most ``DELIVERY_BOUND`` seconds for
all channels together. ``Outbox`` sends in the background, for a service that goes on.
"""

from __future__ import annotations

import json
import logging
import queue
import socket
import threading
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass

from etl.adapters import web
from etl.redact import redact_text
from etl.settings import load_settings

logger = logging.getLogger("ufo.alerts")

WEBHOOK_TIMEOUT = 5.0
WEBHOOK_ATTEMPTS = 3
WEBHOOK_BACKOFF = 0.5  # seconds before the second try, doubled before each later one
DELIVERY_BOUND = 20.0


@dataclass(frozen=True)
class Failure:
    """One failed task (or request, or scheduled run): its run dates and its one-line reason."""

    what: str  # "TopStatesToDatabase", "run request nightly.yaml", ...
    dates: tuple[str, ...]  # ISO run dates, or a range as given ("2019-01-01-2019-12-31")
    reason: str  # the ``ufo: error:`` line


@dataclass(frozen=True)
class Alert:
    """What one notification says: where it comes from, what failed, where the full log is."""

    origin: str  # "a pipeline run", "the worker's run requests", "the daily schedule"
    failures: tuple[Failure, ...]
    log: str | None = None
    host: str = socket.gethostname()

    @property
    def subject(self) -> str:
        first = self.failures[0]
        if len(self.failures) == 1 and not first.dates:  # a request that could not be read
            return f"ufo: {first.what} failed"
        if len(self.failures) == 1:
            return f"ufo: {first.what} failed for {_dates_text(first.dates)}"
        return f"ufo: {len(self.failures)} failures in {self.origin}"

    @property
    def text(self) -> str:
        lines = [f"{self.subject} (on {self.host}, {self.origin})", ""]
        for failure in self.failures:
            dates = f", run date {_dates_text(failure.dates)}" if failure.dates else ""
            lines.append(f"- {failure.what}{dates}:")
            lines.append(f"  {failure.reason}")
        if self.log:
            lines += ["", f"Full log: {self.log}"]
        return "\n".join(lines)

    def payload(self) -> dict:
        """The webhook's JSON body."""
        facts = {
            "origin": self.origin,
            "host": self.host,
            "log": self.log,
            "failures": [asdict(f) | {"dates": list(f.dates)} for f in self.failures],
        }
        return {"text": self.text, "alert": facts}

    def redacted(self, secrets: Iterable[str]) -> Alert:
        """The same alert with every secret and every URL's credentials hidden."""
        secrets = list(secrets)
        failures = tuple(
            Failure(f.what, f.dates, redact_text(f.reason, secrets)) for f in self.failures
        )
        log = redact_text(self.log, secrets) if self.log else None
        return Alert(self.origin, failures, log, self.host)


def _dates_text(dates: tuple[str, ...]) -> str:
    if not dates:
        return "no run date"
    if len(dates) == 1:
        return dates[0]
    return f"{dates[0]}..{dates[-1]} ({len(dates)} dates)"


# -- the channels ---------------------------------------------------------------------------


def send_email(alert: Alert, recipients: tuple[str, ...], password: str | None) -> None:
    """Through Luigi's notifications, which read luigi.cfg's [email] and [smtp]."""
    import luigi.configuration
    import luigi.notifications

    if password:
        # In this process's copy of the configuration only; luigi.cfg never holds it.
        luigi.configuration.get_config().set("smtp", "password", password)
    with warnings.catch_warnings():
        # Luigi's own [smtp] local_hostname default (None) warns on every e-mail; not the user's.
        warnings.filterwarnings("ignore", message='Parameter "local_hostname"')
        luigi.notifications.send_email(
            subject=alert.subject,
            message=alert.text,
            sender=luigi.notifications.email().sender,
            recipients=[", ".join(recipients)],
        )


def send_webhook(alert: Alert, url: str, sleep: Callable[[float], None] = time.sleep) -> None:
    """POST the alert as JSON; a few tries for errors that may pass, none for a refusal."""
    body = json.dumps(alert.payload()).encode("utf-8")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    for attempt in range(1, WEBHOOK_ATTEMPTS + 1):
        request = web.request(
            url, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        try:
            with opener.open(request, timeout=WEBHOOK_TIMEOUT) as response:
                response.read()
            return
        except urllib.error.HTTPError as err:
            if err.code != 429 and err.code < 500:
                raise NotDelivered(f"the webhook answered HTTP {err.code}") from None
            problem = f"HTTP {err.code}"
        except (urllib.error.URLError, OSError) as err:
            problem = str(getattr(err, "reason", err))
        if attempt == WEBHOOK_ATTEMPTS:
            raise NotDelivered(f"the webhook did not answer after {attempt} tries ({problem})")
        sleep(WEBHOOK_BACKOFF * 2 ** (attempt - 1))


class NotDelivered(Exception):
    """A channel that did not take the alert; the message (what happened, in words) never
    holds the channel's URL."""


# -- delivery -------------------------------------------------------------------------------


def deliver(alert: Alert, secrets: Iterable[str] = ()) -> list[str]:
    """Send ``alert`` on every configured channel, at most DELIVERY_BOUND seconds in all.

    Returns the channels that took it. Never raises: a channel that fails is logged once.
    """
    try:
        settings = load_settings()
    except Exception as err:  # a bad setting is reported by the run itself
        logger.warning("alerts: not sent, the settings cannot be read: %s", err)
        return []
    secrets = [*secrets, settings.smtp_password or "", settings.alert_webhook or ""]
    alert = alert.redacted(s for s in secrets if s)
    channels: dict[str, Callable[[], None]] = {}
    if settings.alert_email:
        channels["e-mail"] = lambda: send_email(alert, settings.alert_email, settings.smtp_password)
    if settings.alert_webhook:
        channels["webhook"] = lambda: send_webhook(alert, settings.alert_webhook)
    sent: list[str] = []

    def attempt(name: str, send: Callable[[], None]) -> None:
        try:
            send()
            sent.append(name)
        except Exception as err:
            said = str(err) if isinstance(err, NotDelivered) else f"{type(err).__name__}: {err}"
            text = redact_text(said, secrets)
            logger.warning("alerts: the %s alert was not sent: %s", name, text)

    threads = [
        threading.Thread(target=attempt, args=item, name=f"alert {item[0]}", daemon=True)
        for item in channels.items()
    ]
    deadline = time.monotonic() + DELIVERY_BOUND
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            logger.warning("alerts: gave up waiting for the %s after %.0f s", thread.name,
                           DELIVERY_BOUND)  # fmt: skip
    if sent:
        logger.info("alerts: sent %r by %s", alert.subject, " and ".join(sorted(sent)))
    return sent


class Outbox:
    """Alerts sent one after another by a background thread, so that the sender goes on."""

    def __init__(self, secrets: Iterable[str] = ()):
        self.secrets = list(secrets)
        self._queue: queue.Queue[Alert | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    def put(self, alert: Alert) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._send, name="alerts", daemon=True)
            self._thread.start()
        self._queue.put(alert)

    def _send(self) -> None:
        while (alert := self._queue.get()) is not None:
            deliver(alert, self.secrets)
            self._queue.task_done()
        self._queue.task_done()

    def close(self, timeout: float = DELIVERY_BOUND) -> None:
        """Send what is queued, waiting at most ``timeout`` seconds."""
        if self._thread is None:
            return
        self._queue.put(None)
        self._thread.join(timeout)
