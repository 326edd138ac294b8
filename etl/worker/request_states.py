"""What the lake says of the run requests: which wait, which run now, how each finished one ended.

Read from ``{UFO_STORAGE}/requests/`` as the worker leaves it: a request file waits until a
worker claims it (``.claims/NAME``, running while its heartbeat is younger than its lease), and
ends as ``NAME.done.yaml`` or ``NAME.error.yaml``. Each request's run dates are those its
``date`` parameter names (a date, a batch or spans); a request without one ran for the day
before it started. The daily schedule's runs leave results of the same kind when they end
(``schedule-DATE-*``, ``requested_by: the daily schedule``), read here like any other; one
still going has no request file, so it is not shown running. A running request's log, which
its worker uploads every few seconds, says which of its tasks runs now (``task_now``): read only
when asked, for the few running requests a page shows. Nothing here writes to the lake.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, replace
from zoneinfo import ZoneInfo

import yaml

from etl.adapters.lake import Lake
from etl.errors import StorageError
from etl.pipeline.rundates import RunDateParameter, RunDates
from etl.worker.claims import CLAIMS, DEFAULT_LEASE, Claim
from etl.worker.requests import (
    AUDIT_KEYS,
    MAX_REQUEST_BYTES,
    REQUESTS,
    RESULT_SUFFIXES,
    BadRequest,
    Incomplete,
    check_audit,
    parse_request,
    read_request,
)
from etl.worker.runlog import running_task

#: A result holds its request (at most MAX_REQUEST_BYTES) and a reason.
MAX_RESULT_BYTES = 4 * MAX_REQUEST_BYTES
#: Results are the worker's own safe_dump: read with libyaml where it is there (a year of them
#: is read in a blink instead of a second), still the safe loader.
_FAST = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
#: A running request's log is read this far for the task it runs now (its lines are a few per
#: task: a longer log's start would not tell).
LIVE_LOG_READ = 1024 * 1024


@dataclass(frozen=True)
class RequestState:
    """One run request as the lake shows it now."""

    name: str  # its file name in requests/ (a result's: the request's, NAME.yaml)
    status: str  # waiting, running, done or error
    task: str | None  # None: a request that could not be read
    dates: frozenset[dt.date]
    requested_by: str | None = None
    requested_at: str | None = None
    worker: str | None = None  # running: who holds it; done/error: who ran it
    heartbeat: dt.datetime | None = None  # running: its worker's last sign of life
    started: str | None = None  # running: since when (its claim); done/error: when it began
    finished: str | None = None  # done/error: when (UTC, ISO), the order of results
    error: str | None = None  # error: the one-line reason
    task_now: str | None = None  # running, when asked: the task its live log says runs now

    def as_dict(self) -> dict:
        found = {k: v for k, v in self.__dict__.items() if v is not None}
        found["dates"] = [d.isoformat() for d in sorted(self.dates)]
        if self.heartbeat is not None:
            found["heartbeat"] = self.heartbeat.isoformat(timespec="seconds")
        return found


def one_line(reason: str) -> str:
    """The line of a result's error that says why: its ``ufo: error:`` line, else its first."""
    lines = [line.strip() for line in reason.splitlines() if line.strip()]
    said = [line for line in lines if line.startswith("ufo: error:")]
    return (said or lines or [""])[-1 if said else 0]


def request_dates(date: str | None, ran_on: dt.date | None) -> frozenset[dt.date]:
    """The run dates of a request's ``date`` parameter; none given: the day before ``ran_on``."""
    if not date:
        return frozenset({ran_on - dt.timedelta(days=1)} if ran_on else ())
    parsed = RunDateParameter().parse(date)
    return frozenset(parsed) if isinstance(parsed, RunDates) else frozenset({parsed})


class RequestStates:
    """Reads the requests of one lake; finished ones are read once (kept by name and time)."""

    def __init__(self, lake: Lake, zone: ZoneInfo, lease: float = DEFAULT_LEASE):
        self.lake = lake
        self.zone = zone
        self.lease = lease
        self._results: dict[tuple[str, float], RequestState | None] = {}

    def all(self, now: float | None = None) -> list[RequestState]:
        """Every request waiting, running or finished, finished ones in the order they ended."""
        now = time.time() if now is None else now
        open_, results = [], []
        for suffix in (".yaml", ".yml"):
            for rel in self.lake.files(REQUESTS, suffix):
                name = rel.rsplit("/", 1)[1]
                if name.startswith("."):
                    continue  # being written
                if name.endswith(RESULT_SUFFIXES):
                    found = self._result(rel, name)
                    results += [found] if found is not None else []
                else:
                    found = self._open(name, now)
                    open_ += [found] if found is not None else []
        results.sort(key=lambda r: r.finished or "")
        return open_ + results

    def _open(self, name: str, now: float) -> RequestState | None:
        """A request file not finished yet: waiting, or running under a live claim."""
        rel = f"{REQUESTS}/{name}"
        try:
            request = parse_request(read_request(self.lake, rel))
        except (BadRequest, Incomplete):
            return None  # it will end as an error the worker writes, or is being written
        except Exception:
            if self.lake.exists(rel):
                raise
            return None  # finished (or taken back) since the listing
        today = dt.datetime.fromtimestamp(now, self.zone).date()
        state = RequestState(
            name, "waiting", request.task, request_dates(request.params.get("date"), today),
            **request.audit,
        )  # fmt: skip
        claim = self._claim(name, now)
        if claim is None:
            return state
        worker, beat, since = claim
        started = since.isoformat(timespec="seconds") if since else None
        return RequestState(**{**state.__dict__, "status": "running", "worker": worker,
                               "heartbeat": beat, "started": started})  # fmt: skip

    def with_task_now(self, state: RequestState) -> RequestState:
        """A running request with the task its live log says runs now (``task_now``, e.g.
        ``AggregateUFOsByState(date=2019-03-29)``); as it is when the log does not say (none
        yet, none running, or too long to read)."""
        rel = f"{REQUESTS}/{state.name.rsplit('.', 1)[0]}.log"
        try:
            data, size = self.lake.read_head(rel, LIVE_LOG_READ)
        except (FileNotFoundError, StorageError, OSError):
            return state  # not uploaded yet, or the lake does not answer: the request's task
        task = running_task(data.decode("utf-8", "replace")) if size <= LIVE_LOG_READ else None
        return replace(state, task_now=task) if task else state

    def _claim(self, name: str, now: float) -> tuple[str, dt.datetime, dt.datetime | None] | None:
        """(worker, last heartbeat, when it claimed the request) of a live claim on ``name``;
        None: unclaimed, or its worker presumed dead (the request waits to be taken over)."""
        rel = f"{CLAIMS}/{name}"
        text = self.lake.read_optional(rel)
        if text is None:
            return None
        claim = Claim.parse(text)
        beat = claim.heartbeat
        if beat is None:
            try:
                beat = self.lake.modified_at(rel)
            except FileNotFoundError:
                return None
        if now - beat > (claim.lease or self.lease):
            return None
        since = dt.datetime.fromtimestamp(claim.since, dt.UTC) if claim.since else None
        return claim.worker, dt.datetime.fromtimestamp(beat, dt.UTC), since

    def _result(self, rel: str, name: str) -> RequestState | None:
        try:
            key = (rel, self.lake.modified_at(rel))
        except FileNotFoundError:
            return None
        if key not in self._results:
            self._results[key] = self._read_result(rel, name)
        return self._results[key]

    def _read_result(self, rel: str, name: str) -> RequestState | None:
        """A ``.done.yaml`` / ``.error.yaml`` as the worker wrote it; None if it is not one."""
        try:
            doc = yaml.load(self.lake.read_limited(rel, MAX_RESULT_BYTES), Loader=_FAST)  # noqa: S506
        except (yaml.YAMLError, StorageError, OSError):
            return None  # not a result the worker wrote, or gone since the listing
        if not isinstance(doc, dict) or doc.get("status") not in ("done", "error"):
            return None
        suffix = ".done.yaml" if name.endswith(".done.yaml") else ".error.yaml"
        text = doc.get("request")
        task, dates = None, frozenset()
        if isinstance(text, str):
            try:
                # The worker's own checks (no YAML aliases among them): a refused request
                # concerned no run date the worker could name.
                request = parse_request(text)
                started = dt.datetime.fromisoformat(str(_text(doc.get("started"))))
                ran_on = started.astimezone(self.zone).date()
                task, dates = request.task, request_dates(request.params.get("date"), ran_on)
            except (BadRequest, ValueError):
                pass
        audit = {}
        for key in AUDIT_KEYS:  # as the worker copied them from the request
            try:
                audit[key] = check_audit(key, doc[key]) if key in doc else None
            except BadRequest:
                audit[key] = None
        error = _text(doc.get("error"))
        return RequestState(
            name[: -len(suffix)] + ".yaml", doc["status"], task, dates, **audit,
            worker=_text(doc.get("worker")), started=_text(doc.get("started")),
            finished=_text(doc.get("finished")),
            error=one_line(error) if doc["status"] == "error" and error else None,
        )  # fmt: skip


def _text(value) -> str | None:
    """A result's field as text: only scalars (a forged result's nested values are ignored)."""
    return str(value) if isinstance(value, (str, int, float, dt.date)) else None
