"""The worker service's requests loop: list, claim, run and record each run request.

A request is run once: a failed one is not retried (its run is not kept alive for luigid's
retries), and ends at once as ``NAME.error.yaml`` saying why; a finished one as
``NAME.done.yaml``, with the run's log beside it as ``NAME.log`` (uploaded every few seconds
while the run goes on, whole at its end) and its tasks' Spark output as ``NAME.spark.log``
(``etl.worker.runlog``). Any failure while handling a request also ends as its
``.error.yaml``, and is logged; the service goes on with the next request. Credentials never
reach the logs or the results: the request text, the run's output and error messages go through
``etl.redact``.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from etl.adapters.alerts import Alert, Failure, Outbox
from etl.adapters.lake import Lake
from etl.redact import redact_text
from etl.settings import setting
from etl.worker import luigid
from etl.worker.claims import DEFAULT_LEASE, Claims
from etl.worker.requests import (
    REQUESTS,
    RESULT_SUFFIXES,
    BadRequest,
    Incomplete,
    Request,
    environment_secrets,
    parse_request,
    read_request,
    request_audit,
    request_secrets,
)
from etl.worker.runlog import LiveLog, gather_spark_output, keep_spark_output, spark_log_dir
from etl.worker.runs import DEFAULT_TIMEOUT, AnyOf, run_luigi, seconds_text

logger = logging.getLogger("ufo.worker")

#: A request file changed less than this long ago may still be being written: it is read only
#: once it has stayed the same that long.
SETTLE_SECONDS = 1.0
#: How long a request without ``task`` or ``params`` is waited for before it is an error.
INCOMPLETE_WAIT = 300.0


@dataclass
class PassOutcome:
    """What one look at the requests did: the requests that ended done, and those that failed."""

    done: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)  # not whole yet: left for a later look


def result_record(
    text: str | None,
    status: str,
    secrets: list[str],
    worker: str,
    started: dt.datetime,
    result: dict[str, object],
) -> dict[str, object]:
    """What a ``NAME.done.yaml`` or ``NAME.error.yaml`` records, finished now: the request's
    text, its status, who asked and when, the worker, its times, then ``result`` (exit code,
    error). A request's and the daily schedule's runs both end with one."""
    return {
        **({"request": redact_text(text, secrets)} if text is not None else {}),
        "status": status,
        # Who asked and when, as the request says: the audit record of its result.
        **{k: redact_text(v, secrets) for k, v in request_audit(text or "").items()},
        "worker": worker,
        "started": started.isoformat(timespec="seconds"),
        "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        **result,
    }


def _not_granted(log_path: str) -> bool:
    """Whether the run's log says luigid refused to run a task (a disabled one)."""
    try:
        with open(log_path, encoding="utf-8", errors="replace") as log:
            return any("not granted run permission" in line for line in log)
    except OSError:
        return False


class RequestRunner:
    """Lists, claims and runs the run requests of one lake, and records how each ended."""

    def __init__(
        self,
        lake: Lake,
        scheduler: list[str],
        worker_id: str,
        timeout: float = DEFAULT_TIMEOUT,
        lease: float = DEFAULT_LEASE,
        luigid_url: str | None = None,
        stopping: threading.Event | None = None,
        alerts: Outbox | None = None,
        live_every: float | None = None,
    ):
        self.lake = lake
        # Set when the worker is told to stop (SIGTERM): its run is stopped, the request left
        # to run again, and no other request is started.
        self.stopping = stopping or threading.Event()
        self.scheduler = scheduler
        self.luigid_url = luigid_url  # None: runs without luigid
        self.worker_id = worker_id
        self.timeout = timeout
        self.lease = lease
        self.claims = Claims(lake, worker_id, lease)
        self.secrets = environment_secrets()
        self.alerts = alerts or Outbox(self.secrets)
        # How often a running request's log is uploaded: as often as a long step says how far
        # it got (at least runlog.MIN_EVERY apart).
        self.live_every = setting("progress_seconds") if live_every is None else live_every

    def pending(self) -> list[str]:
        """The names of the request files waiting in ``requests/`` (hidden ones are being
        written: left alone; results, the daily schedule's among them, are not requests)."""
        names = []
        for suffix in (".yaml", ".yml"):
            for rel in self.lake.files(REQUESTS, suffix):
                name = rel.rsplit("/", 1)[1]
                if not name.endswith(RESULT_SUFFIXES) and not name.startswith("."):
                    names.append(name)
        return sorted(set(names))

    def _stamp(self, name: str) -> float | None:
        try:
            return self.lake.modified_at(f"{REQUESTS}/{name}")
        except FileNotFoundError:
            return None

    def settled(self, names: list[str]) -> tuple[list[str], list[str]]:
        """``names`` split into the files that stay unchanged for SETTLE_SECONDS and those still
        being written; files removed meanwhile are in neither. Waits only when a file changed
        that recently."""
        now = time.time()
        stamps = {name: self._stamp(name) for name in names}
        young = {n: t for n, t in stamps.items() if t is not None and now - t < SETTLE_SECONDS}
        if not young:
            return names, []
        time.sleep(SETTLE_SECONDS)
        later = {name: self._stamp(name) for name in young}
        # A file gone since is no longer pending: another worker handled it in the meantime.
        gone = [n for n, t in later.items() if t is None]
        growing = [n for n, t in young.items() if later[n] not in (None, t)]
        for name in growing:
            logger.info("request %s is still being written: it waits for the next look", name)
        return [n for n in names if n not in growing and n not in gone], growing

    def run_pending(self) -> PassOutcome:
        """Handle every request this worker manages to claim; which ended done or failed."""
        outcome = PassOutcome()
        names, outcome.waiting = self.settled(self.pending())
        for name in names:
            if self.stopping.is_set():
                break
            claimed, previous = self.claims.claim(name)
            if not claimed:
                continue
            if not self.lake.exists(f"{REQUESTS}/{name}"):
                # Another worker finished it (and dropped its claim) since we listed it.
                self.claims.release(name)
                continue
            if previous is not None and self.claims.finished_by(name, previous):
                logger.info(
                    "request %s was already finished by %s: not running it again", name, previous
                )
                self.lake.remove(f"{REQUESTS}/{name}")
                self.claims.release(name)
                continue
            status = self.handle(name)
            if status == "waiting":
                outcome.waiting.append(name)
            else:
                (outcome.done if status == "done" else outcome.failed).append(name)
        return outcome

    # -- handling ------------------------------------------------------------------------------

    def handle(self, name: str) -> str:
        """Run a claimed request and record how it ended: "done", "error" or "lost"; or leave
        it in place: "waiting" (not whole yet) or "interrupted" (the worker is stopping)."""
        stem = name.rsplit(".", 1)[0]
        rel = f"{REQUESTS}/{name}"
        started = dt.datetime.now(dt.UTC)
        secrets = list(self.secrets)
        text: str | None = None
        request: Request | None = None
        result: dict[str, object]
        with tempfile.TemporaryDirectory(prefix="ufo-request-") as tmp:
            log_path = os.path.join(tmp, "run.log")
            spark_dir, env = spark_log_dir(tmp)
            with self.claims.heartbeat(name) as heartbeat:
                try:
                    text = read_request(self.lake, rel)
                    secrets += request_secrets(text)
                    request = parse_request(text)
                    status, result = self._run(
                        name, request, secrets, log_path, heartbeat.lost, env
                    )
                except Incomplete as err:
                    age = time.time() - (self._stamp(name) or 0)
                    if age < INCOMPLETE_WAIT:
                        logger.info(
                            "request %s is not whole yet (%s s old): it waits; %s",
                            name, int(age), err,
                        )  # fmt: skip
                        status, result = "waiting", {}
                    else:
                        reason = f"incomplete after {int(INCOMPLETE_WAIT)} s: {err}"
                        logger.warning("request %s cannot be run: %s", name, reason)
                        status, result = "error", {"error": reason}
                except BadRequest as err:
                    reason = redact_text(str(err), secrets)
                    logger.warning("request %s cannot be run: %s", name, reason)
                    status, result = "error", {"error": reason}
                    if err.size is not None:
                        result["size"] = err.size
                except Exception as err:
                    reason = redact_text(
                        "the worker failed while handling the request: "
                        f"{type(err).__name__}: {err}",
                        secrets,
                    )
                    logger.error(
                        "request %s: %s\n%s",
                        name, reason, redact_text(traceback.format_exc(), secrets).rstrip(),
                    )  # fmt: skip
                    status, result = "error", {"error": reason}
            if status == "waiting":
                self.claims.release(name)
                return status
            if status == "interrupted" and not heartbeat.lost.is_set():
                logger.warning(
                    "request %s: the worker is stopping: its run was stopped with all its "
                    "processes, and the request is left to run again",
                    name,
                )
                self.claims.release(name)
                return status
            if heartbeat.lost.is_set():
                logger.error(
                    "request %s: this worker lost its claim to %s (it was presumed dead); its "
                    "run is stopped and the request left to that worker",
                    name, heartbeat.holder,
                )  # fmt: skip
                return "lost"
            record = result_record(text, status, secrets, self.worker_id, started, result)
            if os.path.exists(log_path):
                self.lake.put_file(log_path, f"{REQUESTS}/{stem}.log")
                self._put_spark_output(name, spark_dir, started.timestamp(), secrets, tmp)
        self.lake.write_text(
            f"{REQUESTS}/{stem}.{status}.yaml", yaml.safe_dump(record, sort_keys=False)
        )
        self.lake.remove(rel)
        self.claims.release(name)
        if status == "error":
            self._alert(name, request, str(record.get("error", "")), logged=bool(text))
        return status

    def _put_spark_output(
        self, name: str, spark_dir: Path, since: float, secrets: list[str], tmp: str
    ) -> None:
        """Upload the Spark output the run's tasks kept as ``NAME.spark.log`` (none: an earlier
        request's of the same name is removed). A failure is said, and the request ends as
        its run did."""
        stem = name.rsplit(".", 1)[0]
        rel = f"{REQUESTS}/{stem}.spark.log"
        dest = os.path.join(tmp, "spark.log")
        try:
            if gather_spark_output(spark_dir, since, secrets, dest):
                self.lake.put_file(dest, rel)
            else:
                self.lake.remove(rel)
            keep_spark_output(spark_dir)
        except Exception as err:
            reason = redact_text(f"{type(err).__name__}: {err}", secrets)
            logger.warning("request %s: its tasks' Spark output is not in the lake: %s",
                           name, reason)  # fmt: skip

    def _alert(self, name: str, request: Request | None, reason: str, logged: bool) -> None:
        """One alert for a request that ended in its ``.error.yaml`` (sent in the background)."""
        stem = name.rsplit(".", 1)[0]
        dates = (request.params["date"],) if request and "date" in request.params else ()
        log = f"{stem}.log" if logged and self.lake.exists(f"{REQUESTS}/{stem}.log") else None
        where = self.lake.uri(f"{REQUESTS}/{log or stem + '.error.yaml'}")
        failure = Failure(f"run request {name}", dates, reason or "see the result file")
        self.alerts.put(Alert("the worker's run requests", (failure,), where))

    def _run(
        self,
        name: str,
        request: Request,
        secrets: list[str],
        log_path: str,
        lost: threading.Event,
        env: dict[str, str],
    ) -> tuple[str, dict[str, object]]:
        """Run a valid request, its log uploaded while it runs; (status, what its result
        records)."""
        dates = luigid.request_dates(request.params) if self.luigid_url else set()
        if self.luigid_url and request.forced:
            enabled = luigid.re_enable(
                self.luigid_url, luigid.disabled_tasks(self.luigid_url, dates)
            )
            if enabled:
                logger.warning(
                    "request %s: re-enabled %s in luigid (disabled after repeated failures): "
                    "the request is forced", name, ", ".join(enabled),
                )  # fmt: skip
        stem = name.rsplit(".", 1)[0]
        live = LiveLog(self.lake, log_path, f"{REQUESTS}/{stem}.log", self.live_every,
                       label=f"request {name}", secrets=secrets, halt=lost)  # fmt: skip
        with live:
            run = run_luigi(
                request, self.scheduler, title=f"request {name}", label=name,
                timeout=self.timeout, secrets=secrets, log_path=log_path,
                stop=AnyOf(lost, self.stopping), env=env,
            )  # fmt: skip
        result: dict[str, object] = {"exit_code": run.exit_code}
        if run.stopped:
            return ("lost" if lost.is_set() else "interrupted"), result
        if run.timed_out:
            result["error"] = f"timed out after {seconds_text(self.timeout)} s"
        elif run.exit_code != 0:
            disabled = (
                luigid.disabled_tasks(self.luigid_url, dates)
                if self.luigid_url and _not_granted(log_path)
                else []
            )
            if disabled:
                result["error"] = (
                    f"luigid has disabled {', '.join(disabled)} after repeated failures, and "
                    "refuses to run it until luigi.cfg's [scheduler] disable_persist has passed: "
                    "send the request again with 'force: true' (or 'force_upstream: true') in "
                    "its params, which re-enables it, or re-enable it in luigid's UI"
                )
            else:
                result["error"] = run.reason or f"the run exited with code {run.exit_code}: see {stem}.log"  # fmt: skip
        status = "done" if run.exit_code == 0 and not run.timed_out else "error"
        logger.info("request %s: %s (exit code %s)", name, status, run.exit_code)
        return status, result
