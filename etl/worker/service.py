"""The worker service's requests loop: list, claim, run and record each run request.

A request is run once: a failed one is not retried (Luigi's own retries happen inside the run),
and ends as ``NAME.error.yaml`` saying why; a finished one as ``NAME.done.yaml``, with the run's
log beside it as ``NAME.log``. Any failure while handling a request also ends as its
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
import traceback
from dataclasses import dataclass, field

import yaml

from etl.adapters.lake import Lake
from etl.redact import redact_text
from etl.worker.claims import DEFAULT_LEASE, Claims
from etl.worker.requests import (
    REQUESTS,
    RESULT_SUFFIXES,
    BadRequest,
    Request,
    environment_secrets,
    parse_request,
    read_request,
    request_secrets,
)
from etl.worker.runs import DEFAULT_TIMEOUT, run_luigi, seconds_text

logger = logging.getLogger("ufo.worker")


@dataclass
class PassOutcome:
    """What one look at the requests did: the requests that ended done, and those that failed."""

    done: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


class RequestRunner:
    """Lists, claims and runs the run requests of one lake, and records how each ended."""

    def __init__(
        self,
        lake: Lake,
        scheduler: list[str],
        worker_id: str,
        timeout: float = DEFAULT_TIMEOUT,
        lease: float = DEFAULT_LEASE,
    ):
        self.lake = lake
        self.scheduler = scheduler
        self.worker_id = worker_id
        self.timeout = timeout
        self.lease = lease
        self.claims = Claims(lake, worker_id, lease)
        self.secrets = environment_secrets()

    def pending(self) -> list[str]:
        """The names of the request files waiting in ``requests/``."""
        names = []
        for suffix in (".yaml", ".yml"):
            for rel in self.lake.files(REQUESTS, suffix):
                name = rel.rsplit("/", 1)[1]
                if not name.endswith(RESULT_SUFFIXES):
                    names.append(name)
        return sorted(set(names))

    def run_pending(self) -> PassOutcome:
        """Handle every request this worker manages to claim; which ended done or failed."""
        outcome = PassOutcome()
        for name in self.pending():
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
            (outcome.done if status == "done" else outcome.failed).append(name)
        return outcome

    # -- handling ------------------------------------------------------------------------------

    def handle(self, name: str) -> str:
        """Run a claimed request and record how it ended: "done", "error" or "lost"."""
        stem = name.rsplit(".", 1)[0]
        rel = f"{REQUESTS}/{name}"
        started = dt.datetime.now(dt.UTC)
        secrets = list(self.secrets)
        text: str | None = None
        result: dict[str, object]
        with tempfile.TemporaryDirectory(prefix="ufo-request-") as tmp:
            log_path = os.path.join(tmp, "run.log")
            with self.claims.heartbeat(name) as heartbeat:
                try:
                    text = read_request(self.lake, rel)
                    secrets += request_secrets(text)
                    request = parse_request(text)
                    status, result = self._run(name, request, secrets, log_path, heartbeat.lost)
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
            if heartbeat.lost.is_set():
                logger.error(
                    "request %s: this worker lost its claim to %s (it was presumed dead); its "
                    "run is stopped and the request left to that worker",
                    name, heartbeat.holder,
                )  # fmt: skip
                return "lost"
            record = {
                **({"request": redact_text(text, secrets)} if text is not None else {}),
                "status": status,
                "worker": self.worker_id,
                "started": started.isoformat(timespec="seconds"),
                "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                **result,
            }
            if os.path.exists(log_path):
                self.lake.put_file(log_path, f"{REQUESTS}/{stem}.log")
        self.lake.write_text(
            f"{REQUESTS}/{stem}.{status}.yaml", yaml.safe_dump(record, sort_keys=False)
        )
        self.lake.remove(rel)
        self.claims.release(name)
        return status

    def _run(
        self,
        name: str,
        request: Request,
        secrets: list[str],
        log_path: str,
        lost: threading.Event,
    ) -> tuple[str, dict[str, object]]:
        """Run a valid request; (status, what its result records)."""
        run = run_luigi(
            request, self.scheduler, title=f"request {name}", label=name, timeout=self.timeout,
            secrets=secrets, log_path=log_path, stop=lost,
        )  # fmt: skip
        result: dict[str, object] = {"exit_code": run.exit_code}
        if run.stopped:
            return "lost", result
        if run.timed_out:
            result["error"] = f"timed out after {seconds_text(self.timeout)} s"
        elif run.exit_code != 0:
            stem = name.rsplit(".", 1)[0]
            result["error"] = run.reason or f"the run exited with code {run.exit_code}: see {stem}.log"  # fmt: skip
        status = "done" if run.exit_code == 0 and not run.timed_out else "error"
        logger.info("request %s: %s (exit code %s)", name, status, run.exit_code)
        return status, result
