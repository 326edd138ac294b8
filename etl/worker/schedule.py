"""The daily schedule, and which Luigi scheduler runs use.

With ``UFO_SCHEDULE_TIME=HH:MM`` (and ``UFO_TIMEZONE``, default UTC), the worker runs
``TopStatesToDatabase`` for yesterday once a day after that time. Every replica may try; luigid
lets one run it, and a loaded date is complete for the others. A run that takes longer than the
time-out is stopped with its whole process group and ends with one ``ufo: error:`` line; the
date is then left to a run request, and the schedule goes on the next day.

A run that ends (done, failed or timed out; not one stopped because the worker stops) leaves
its result as a run request's would, ``requests/schedule-DATE-WHENZ-RANDOM.done.yaml`` or
``.error.yaml`` (``requested_by: the daily schedule``) with its log beside it as ``.log``, so
whatever reads results tells a night that failed from one that never ran. It is not a request:
no worker runs it. A result the lake cannot take is a warning in the log; the schedule goes on.
A replica whose run luigid gave to another replica (Luigi's ``already_running`` exit code)
leaves nothing and alerts nobody: the replica that runs it records how it ends.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import tempfile
import threading
import urllib.error
import urllib.request
from zoneinfo import ZoneInfo

import luigi.configuration
import yaml

from etl.adapters.alerts import Alert, Failure, Outbox
from etl.adapters.lake import Lake
from etl.redact import redact_text
from etl.settings import load_settings
from etl.worker.requests import REQUESTS, Request, environment_secrets
from etl.worker.runs import DEFAULT_TIMEOUT, RunOutcome, run_luigi, seconds_text
from etl.worker.service import result_record

logger = logging.getLogger("ufo.worker")

TASK = "TopStatesToDatabase"
#: The ``requested_by`` of a scheduled run's result.
REQUESTED_BY = "the daily schedule"


class DailySchedule:
    """Runs the pipeline for yesterday once a day after ``at`` in ``zone``, bound by ``timeout``."""

    def __init__(
        self,
        at: dt.time,
        zone: ZoneInfo,
        scheduler: list[str],
        timeout: float = DEFAULT_TIMEOUT,
        stopping: threading.Event | None = None,
        alerts: Outbox | None = None,
        lake: Lake | None = None,
        worker_id: str | None = None,
    ):
        self.at = at
        self.stopping = stopping
        self.zone = zone
        self.scheduler = scheduler
        self.timeout = timeout
        self.secrets = environment_secrets()
        self.alerts = alerts or Outbox(self.secrets)
        self.last_day: dt.date | None = None
        self.lake = lake  # None: its runs leave no result
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}"

    def due(self, now: dt.datetime) -> dt.date | None:
        """The run date to run now, if any."""
        local = now.astimezone(self.zone)
        if local.time() >= self.at and self.last_day != local.date():
            return local.date() - dt.timedelta(days=1)
        return None

    def run_if_due(self, now: dt.datetime) -> RunOutcome | None:
        """Run the pipeline if it is due now; how that run ended (None when it was not due)."""
        run_date = self.due(now)
        if run_date is None:
            return None
        # Set first: a run that fails or times out is not tried again until the next day.
        self.last_day = now.astimezone(self.zone).date()
        day = run_date.isoformat()
        request = Request(task=TASK, params={"date": day}, env={})
        started = dt.datetime.now(dt.UTC)
        with tempfile.TemporaryDirectory(prefix="ufo-schedule-") as tmp:
            log_path = os.path.join(tmp, "run.log")
            run = run_luigi(
                request, self.scheduler, title="schedule", label=f"schedule {day}",
                timeout=self.timeout, secrets=self.secrets, log_path=log_path, stop=self.stopping,
            )  # fmt: skip
            reason = self._report(day, run)
            if self.lake is not None and not run.stopped and not self._others(run):
                due = dt.datetime.combine(self.last_day, self.at, self.zone)
                self._record(day, due, started, run, reason, log_path)
        return run

    @staticmethod
    def _others(run: RunOutcome) -> bool:
        """Whether luigid gave the run to another worker (a replica's schedule took it first):
        Luigi's ``already_running`` exit code ([retcode] in luigi.cfg)."""
        code = luigi.configuration.get_config().getint("retcode", "already_running", 10)
        return not run.timed_out and not run.stopped and code != 0 and run.exit_code == code

    def _report(self, day: str, run: RunOutcome) -> str | None:
        """Log how the run for ``day`` ended, and alert a failed one; its reason if it failed."""
        if run.stopped:
            logger.warning(
                "schedule: the worker is stopping: the run for %s was stopped with all its "
                "processes; a worker started again runs it (once past %s %s)",
                day, self.at.strftime("%H:%M"), self.zone,
            )  # fmt: skip
        elif run.timed_out:
            logger.error(
                "ufo: error: schedule: the run for %s timed out after %s s and was stopped with "
                "all its processes before it finished. Look for what hung in its lines above "
                "('schedule %s | ...'), give runs more time with --timeout if it only needs "
                "longer, then load %s with a run request (task: TopStatesToDatabase, params: "
                "{date: %s}); the schedule goes on tomorrow after %s %s.",
                day, seconds_text(self.timeout), day, day, day, self.at.strftime("%H:%M"), self.zone,
            )  # fmt: skip
        elif self._others(run):
            logger.info(
                "schedule: the run for %s is another worker's (luigid runs it there; exit code "
                "%s): that worker records how it ends", day, run.exit_code,
            )  # fmt: skip
            return None
        elif run.exit_code != 0:
            logger.error(
                "schedule: the run for %s failed (exit code %s)%s",
                day, run.exit_code, f": {run.reason}" if run.reason else "",
            )  # fmt: skip
        else:
            logger.info("schedule: the run for %s is done (exit code 0)", day)
        if not (run.timed_out or (run.exit_code != 0 and not run.stopped)):
            return None
        reason = (
            f"ufo: error: schedule: the run for {day} timed out after "
            f"{seconds_text(self.timeout)} s and was stopped"
            if run.timed_out
            else run.reason or f"the run exited with code {run.exit_code}"
        )
        failure = Failure("the daily run of TopStatesToDatabase", (day,), reason)
        self.alerts.put(Alert("the daily schedule", (failure,), "the worker's log"))
        return reason

    def _record(
        self,
        day: str,
        due: dt.datetime,
        started: dt.datetime,
        run: RunOutcome,
        reason: str | None,
        log_path: str,
    ) -> None:
        """Leave the run's result and log in ``requests/``, as a request's (a warning if not)."""
        stem = f"schedule-{day}-{started:%Y%m%dT%H%M%SZ}-{os.urandom(3).hex()}"
        # The request this run amounts to: what readers of results parse for its task and date.
        text = yaml.safe_dump(
            {"task": TASK, "params": {"date": day}, "requested_by": REQUESTED_BY,
             "requested_at": due.astimezone(dt.UTC).isoformat(timespec="seconds")},
            sort_keys=False,
        )  # fmt: skip
        status = "done" if reason is None else "error"
        result = {"exit_code": run.exit_code, **({"error": reason} if reason else {})}
        try:
            record = result_record(text, status, self.secrets, self.worker_id, started, result)
            if os.path.exists(log_path):
                self.lake.put_file(log_path, f"{REQUESTS}/{stem}.log")
            self.lake.write_text(
                f"{REQUESTS}/{stem}.{status}.yaml", yaml.safe_dump(record, sort_keys=False)
            )
        except Exception as err:
            # The run itself is over and said how it ended: only its record in the lake is lost.
            problem = redact_text(f"{type(err).__name__}: {err}", self.secrets)
            logger.warning(
                "schedule: the result of the run for %s (%s.%s.yaml) could not be written to "
                "%s: %s", day, stem, status, self.lake.uri(REQUESTS), problem,
            )  # fmt: skip


def schedule_from_settings(
    scheduler: list[str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    stopping: threading.Event | None = None,
    alerts: Outbox | None = None,
    lake: Lake | None = None,
    worker_id: str | None = None,
) -> DailySchedule | None:
    """The daily schedule UFO_SCHEDULE_TIME and UFO_TIMEZONE set, or None without a time; its
    runs leave their results in ``lake``, if given, in the name of ``worker_id``."""
    settings = load_settings()
    if settings.schedule_time is None:
        return None
    return DailySchedule(
        settings.schedule_time, settings.timezone, scheduler or scheduler_args(), timeout=timeout,
        stopping=stopping, alerts=alerts, lake=lake, worker_id=worker_id,
    )  # fmt: skip


def scheduler_args(
    local: bool | None = None,
    host: str | None = None,
    port: int | None = None,
    keep_alive: bool = True,
) -> list[str]:
    """Luigi's scheduler flags: ``--local-scheduler``, or luigid (luigi.cfg's, or host/port).

    ``local=None`` asks UFO_LOCAL_SCHEDULER. Under luigid with ``keep_alive`` (the daily
    schedule) the worker is kept alive, so a failed task is retried after luigid's
    ``retry_delay`` until it succeeds or luigid disables it (then the run ends, failed); run
    requests are not (``keep_alive=False``) and end at their first failure.
    """
    if local is None:
        local = load_settings().local_scheduler
    if local:
        return ["--local-scheduler"]
    args = ["--worker-keep-alive"] if keep_alive else []
    if host:
        args += ["--scheduler-host", host]
    if port:
        args += ["--scheduler-port", str(port)]
    return args


def scheduler_url(host: str | None = None, port: int | None = None) -> str:
    """The luigid that runs will use: ``host``/``port``, else luigi.cfg's ``[core]``."""
    config = luigi.configuration.get_config()
    url = config.get("core", "scheduler_url", "")
    if url and not host and not port:
        return url.rstrip("/") + "/"  # Luigi prefers it to host and port
    host = host or config.get("core", "scheduler_host", "localhost")
    port = port or config.getint("core", "scheduler_port", 8082)
    return f"http://{host}:{port}/"


def luigid_problem(url: str, timeout: float = 2.0) -> str | None:
    """Why no luigid answers at ``url``; None when its ``/api/task_list`` answers 200."""
    # luigid is reached directly, as Luigi's workers reach it: no HTTP proxy in between.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url + "api/task_list", timeout=timeout) as response:
            return None if response.status == 200 else f"HTTP {response.status}"
    except urllib.error.HTTPError as err:
        return f"HTTP {err.code}"
    except (urllib.error.URLError, OSError, ValueError) as err:
        return str(getattr(err, "reason", err))
