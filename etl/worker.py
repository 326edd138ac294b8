"""The Luigi worker service: run requests dropped in the lake, and the daily schedule.

    python -m etl.worker [--once] [--poll 15] [--timeout 7200] [--lease 120]
                         [--local-scheduler | --scheduler-host HOST --scheduler-port PORT]

Run requests: a YAML file under ``{UFO_STORAGE}/requests/``::

    task: TopStatesToDatabase        # one of the pipeline's tasks
    params: {date: 2019-03-29, force: true}
    env: {UFO_SOURCE: s3://incoming/nuforc_index.csv}   # optional; only UFO_SOURCE

is claimed by exactly one worker (an exclusive create of ``requests/.claims/NAME``: a local
O_EXCL create, or an S3 PUT with ``If-None-Match: *``), run as ``python -m luigi --module etl
TASK --param value ...`` against the scheduler, then renamed to ``NAME.done.yaml`` or
``NAME.error.yaml`` with the run's log beside it as ``NAME.log``. A request is run once: a
failed one is not retried (Luigi's own retries happen inside the run). Nothing in a request is
executed: the task name and parameter names are checked against the pipeline's, values are
parsed by Luigi's parameter types, and the command is an argument list (no shell).

What is refused, with an ``.error.yaml`` saying why: a malformed request; one that is a symlink
or not a regular file, is over 64 KiB (the result records its size, never its content) or is
not UTF-8. Any other failure while handling a request also ends as its ``.error.yaml``, and is
logged; the service goes on with the next request. Credentials never reach the logs or the
results: the request text, the run's output and error messages go through ``etl.redact``.

Claims are leases. A claim records its worker's id, a heartbeat time and the lease; the worker
rewrites it every lease/3 while it handles the request. A worker that finds a claim whose
heartbeat is older than its lease (``--lease`` or ``UFO_CLAIM_LEASE``, default 120 s; a claim
without a heartbeat is aged by its file time) presumes that worker dead and takes the request
over: of several racing workers the one that creates ``.claims/NAME.takeover-*`` exclusively
replaces the claim, and logs that it took over. A request the dead worker had already finished
(its result names that worker) is cleaned up, not run again. A worker that finds its claim
taken stops its run and leaves the request to the new owner.

A run's output is logged live, line by line, prefixed with the request's name. A run may take
``--timeout`` seconds (default 2 h); then its whole process group (Luigi and any spark-submit)
is terminated, and the ``.error.yaml`` says "timed out after N s". Whatever a run leaves in its
process group when it ends is killed too. The scheduled run (below) is run the same way.

Scheduler: luigid at luigi.cfg's ``[core] scheduler_host/scheduler_port``, or the one that
``--scheduler-host/--scheduler-port`` name; ``--local-scheduler`` (or UFO_LOCAL_SCHEDULER=1)
runs without one. At start-up the worker says in one line when no luigid answers there.

Exit status of ``--once``: 0 when every request it handled succeeded, or there was none; 1 when
one failed, was refused or malformed, or the lake could not be used; 2 for a bad command line.

Schedule: with ``UFO_SCHEDULE_TIME=HH:MM`` (and ``UFO_TIMEZONE``, default UTC), the worker runs
``TopStatesToDatabase`` for yesterday once a day after that time. Every replica may try; luigid
lets one run it, and a loaded date is complete for the others. Its output is logged live as
``schedule DATE | line``, and it is bound by the same ``--timeout`` as requests: a run that
takes longer is stopped with its whole process group and ends with one ``ufo: error:`` line
saying so; the date is then left to a run request, and the schedule goes on the next day.
"""

from __future__ import annotations

import argparse
import datetime as dt
import errno
import hashlib
import logging
import os
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from urllib.parse import urlparse
from zoneinfo import ZoneInfo

import luigi.configuration
import yaml

from etl import logs
from etl.config import load_settings
from etl.errors import UfoError
from etl.redact import redact_source, redact_text, source_secrets
from etl.storage import Lake, LocalLake, S3Lake

logger = logging.getLogger("ufo.worker")

REQUESTS = "requests"
CLAIMS = f"{REQUESTS}/.claims"
ALLOWED_TASKS = ("ReadUFOs", "AggregateUFOsByState", "TopTenStates", "TopStatesToDatabase")
ALLOWED_ENV = ("UFO_SOURCE",)
RESULT_SUFFIXES = (".done.yaml", ".error.yaml")
MAX_REQUEST_BYTES = 64 * 1024
DEFAULT_LEASE = 120.0
DEFAULT_TIMEOUT = 2 * 3600.0
# A run's processes get this long between SIGTERM and SIGKILL: enough for luigi and
# spark-submit to stop their children, short next to any timeout.
KILL_GRACE = 5.0
# The worker's own settings that may hold credentials; their secret parts are hidden too.
_URL_ENV = ("UFO_SOURCE", "UFO_DATABASE_URL")
_SECRET_ENV = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "PGPASSWORD")


class _RequestLoader(yaml.SafeLoader):
    """Safe YAML whose dates stay text, so that Luigi's parameter types judge them."""


_RequestLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class BadRequest(ValueError):
    """A request file that cannot be run; the message says why (``size``: its bytes, if known)."""

    def __init__(self, message: str, size: int | None = None):
        super().__init__(message)
        self.size = size


@dataclass(frozen=True)
class Request:
    """A validated run request: a pipeline task, its parameters as text, and its environment."""

    task: str
    params: dict[str, str]
    env: dict[str, str]

    def argv(self, scheduler: list[str]) -> list[str]:
        args = [sys.executable, "-m", "luigi", "--module", "etl", self.task, *scheduler]
        for name, value in self.params.items():
            flag = "--" + name.replace("_", "-")
            if value == "__flag__":
                args.append(flag)
            elif value != "__off__":
                args += [flag, value]
        return args


def parse_request(text: str) -> Request:
    """Validate a request file's text; raise BadRequest with the reason."""
    import etl

    try:
        doc = yaml.load(text, Loader=_RequestLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as err:
        raise BadRequest(f"not valid YAML: {err}".replace("\n", " ")) from err
    if not isinstance(doc, dict):
        raise BadRequest("a request must be a mapping with 'task' and 'params'")
    unknown = set(doc) - {"task", "params", "env"}
    if unknown:
        raise BadRequest(f"unknown key(s) {sorted(unknown)}: use task, params, env")
    task = doc.get("task")
    if task not in ALLOWED_TASKS:
        raise BadRequest(f"task {task!r} is not one of {', '.join(ALLOWED_TASKS)}")
    cls = getattr(etl, task)
    params_in = doc.get("params") or {}
    if not isinstance(params_in, dict):
        raise BadRequest("'params' must be a mapping of parameter names to values")
    known = dict(cls.get_params())
    params: dict[str, str] = {}
    for name, value in params_in.items():
        if name not in known:
            raise BadRequest(
                f"{task} has no parameter {name!r} (it has {', '.join(sorted(known))})"
            )
        if isinstance(value, (dict, list)) or value is None:
            raise BadRequest(f"parameter {name!r} must be a single value")
        param = known[name]
        text_value = str(value)
        if "\0" in text_value:
            raise BadRequest(f"parameter {name!r} must not contain a NUL byte")
        try:
            parsed = param.parse(text_value)
        except (ValueError, TypeError) as err:
            raise BadRequest(f"parameter {name!r}: {text_value!r} is not valid ({err})") from err
        if isinstance(parsed, bool):
            params[name] = "__flag__" if parsed else "__off__"
        else:
            params[name] = param.serialize(parsed)
    env_in = doc.get("env") or {}
    if not isinstance(env_in, dict) or set(env_in) - set(ALLOWED_ENV):
        raise BadRequest(f"'env' may only set {', '.join(ALLOWED_ENV)}")
    env = {name: str(value) for name, value in env_in.items()}
    for name, value in env.items():
        # The operating system cannot pass it on: subprocess would raise "embedded null byte".
        if "\0" in value:
            raise BadRequest(f"env {name} must not contain a NUL byte")
    return Request(task=task, params=params, env=env)


def _request_secrets(text: str) -> list[str]:
    """The secret parts of the sources a request's text names (even if it is malformed)."""
    try:
        doc = yaml.load(text, Loader=_RequestLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError:
        return []  # not YAML: redact_text's scan for URLs still covers it
    env = doc.get("env") if isinstance(doc, dict) else None
    if not isinstance(env, dict):
        return []
    return [s for value in env.values() for s in source_secrets(str(value))]


def _environment_secrets() -> list[str]:
    """What of this process's own settings must not appear in what the worker writes."""
    found = [s for name in _URL_ENV for s in source_secrets(os.environ.get(name, ""))]
    return found + [os.environ[name] for name in _SECRET_ENV if os.environ.get(name)]


# --------------------------------------------------------------------------------------------
# Reading a request from the lake: regular files only, at most MAX_REQUEST_BYTES.

_NOT_REGULAR = "requests must be regular files, not symlinks"


def _too_big(size: int) -> BadRequest:
    return BadRequest(
        f"request is {size} bytes, the limit is {MAX_REQUEST_BYTES // 1024} KiB", size=size
    )


def _read_request_bytes(lake: Lake, rel: str) -> bytes:
    """A request file's bytes; BadRequest if it is a symlink, not a file, or too big."""
    if isinstance(lake, LocalLake):
        # O_NOFOLLOW refuses a symlink in the same step that opens the file, so the check
        # cannot be raced; O_NONBLOCK keeps a FIFO from blocking the open.
        try:
            fd = os.open(lake.uri(rel), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError as err:
            if err.errno == errno.ELOOP:
                raise BadRequest(_NOT_REGULAR) from err
            raise
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise BadRequest(_NOT_REGULAR)
            if info.st_size > MAX_REQUEST_BYTES:
                raise _too_big(info.st_size)
            data = handle.read(MAX_REQUEST_BYTES + 1)
    elif isinstance(lake, S3Lake):
        # No symlinks on S3; the size comes with the response, and the body is never read
        # beyond the limit.
        location = urlparse(lake.uri(rel))
        s3 = lake.client.s3.meta.client
        response = s3.get_object(Bucket=location.netloc, Key=location.path.lstrip("/"))
        body = response["Body"]
        try:
            if response["ContentLength"] > MAX_REQUEST_BYTES:
                raise _too_big(response["ContentLength"])
            data = body.read(MAX_REQUEST_BYTES + 1)
        finally:
            body.close()
    else:
        data = lake.read_text(rel).encode("utf-8")
    if len(data) > MAX_REQUEST_BYTES:  # it grew after the size was taken
        raise _too_big(len(data))
    return data


def _read_request(lake: Lake, rel: str) -> str:
    """A request file's text; BadRequest if it cannot be read as a request."""
    data = _read_request_bytes(lake, rel)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise BadRequest(
            f"request is not UTF-8 text (byte 0x{data[err.start]:02x} at position {err.start})"
        ) from err


def _read_optional(lake: Lake, rel: str) -> str | None:
    """The text of a small lake file, or None if it does not exist (or just went away)."""
    if not lake.target(rel).exists():
        return None
    try:
        return lake.read_text(rel)
    except Exception:
        if not lake.target(rel).exists():
            return None  # removed between the two calls: its owner finished
        raise


def _modified_at(lake: Lake, rel: str) -> float | None:
    """When a lake file was last written (seconds since the epoch), if the lake can say."""
    if isinstance(lake, LocalLake):
        return os.path.getmtime(lake.uri(rel))
    if isinstance(lake, S3Lake):
        location = urlparse(lake.uri(rel))
        head = lake.client.s3.meta.client.head_object(
            Bucket=location.netloc, Key=location.path.lstrip("/")
        )
        return head["LastModified"].timestamp()
    return None


# --------------------------------------------------------------------------------------------
# Claims with a lease


@dataclass(frozen=True)
class Claim:
    """What a claim file says: the worker holding the request, its last heartbeat and lease."""

    worker: str
    heartbeat: float | None  # seconds since the epoch; None in claims of older workers
    lease: float | None

    @staticmethod
    def render(worker: str, lease: float) -> str:
        now = time.time()
        return yaml.safe_dump(
            {
                "worker": worker,
                "heartbeat": round(now, 3),
                "heartbeat_utc": dt.datetime.fromtimestamp(now, dt.UTC).isoformat("T", "seconds"),
                "lease": lease,
            },
            sort_keys=False,
        )

    @staticmethod
    def parse(text: str) -> Claim:
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError:
            doc = None
        if not isinstance(doc, dict) or "worker" not in doc:
            # Workers before leases wrote their id alone.
            return Claim(worker=text.strip()[:200], heartbeat=None, lease=None)

        def number(value) -> float | None:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            return float(value) if ok else None

        return Claim(str(doc["worker"]), number(doc.get("heartbeat")), number(doc.get("lease")))


class _Heartbeat:
    """Refreshes a claim every lease/3 while its request is handled; notices a lost claim.

    ``lost`` is set when the claim names another worker (or is gone): someone took the request
    over, so this worker must stop its run. ``holder`` then says who.
    """

    def __init__(self, lake: Lake, rel: str, worker_id: str, lease: float):
        self.lake = lake
        self.rel = rel
        self.worker_id = worker_id
        self.lease = lease
        self.lost = threading.Event()
        self.holder: str | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat {rel}", daemon=True)

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        # No time limit: a beat still under way could otherwise re-create the claim after the
        # request's result is written and the claim removed. The lake client's own timeouts
        # bound a beat.
        self._thread.join()

    def _beat(self) -> None:
        while not self._done.wait(self.lease / 3):
            try:
                text = _read_optional(self.lake, self.rel)
                holder = Claim.parse(text).worker if text is not None else "nobody"
                if holder != self.worker_id:
                    self.holder = holder
                    self.lost.set()
                    return
                self.lake.write_text(self.rel, Claim.render(self.worker_id, self.lease))
            except Exception as err:
                # A lake hiccup: the lease outlasts a missed beat or two, and the next beat
                # retries. If beats keep failing, another worker takes over and the next
                # successful look sees it.
                logger.warning("heartbeat of %s failed: %s", self.rel, err)


# --------------------------------------------------------------------------------------------
# Running one request


@dataclass(frozen=True)
class RunOutcome:
    """How a run ended: its exit code, and whether it was stopped for time or a lost claim."""

    exit_code: int
    timed_out: bool
    stopped: bool
    reason: str | None  # the run's last "ufo: error: " line, if any


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass  # the group is empty: every process of the run has ended


def run_streamed(
    argv: list[str],
    env: dict[str, str],
    *,
    label: str,
    timeout: float,
    secrets: list[str],
    log_path: str | None = None,
    stop: threading.Event | None = None,
) -> RunOutcome:
    """Run ``argv`` in its own process group, logging its output live and into ``log_path``.

    Each line is redacted, logged as ``LABEL | line`` and written to ``log_path`` (if any). After
    ``timeout`` seconds, or once ``stop`` is set, the group gets SIGTERM and, KILL_GRACE
    seconds later, SIGKILL; when the run ends, whatever is left in its group is killed.
    """
    proc = subprocess.Popen(
        argv,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        start_new_session=True,  # its own process group, so that it can be killed as a whole
    )
    reasons: list[str] = []

    def pump() -> None:
        with open(log_path or os.devnull, "w", encoding="utf-8") as log:
            for raw in proc.stdout:
                line = redact_text(raw.rstrip("\n"), secrets)
                logger.info("%s | %s", label, line)
                log.write(line + "\n")
                if line.startswith("ufo: error: "):
                    reasons.append(line)

    reader = threading.Thread(target=pump, name=f"output of {label}", daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    timed_out = stopped = False
    while proc.poll() is None:
        if stop is not None and stop.is_set():
            stopped = True
            break
        if time.monotonic() >= deadline:
            timed_out = True
            break
        try:
            proc.wait(timeout=min(0.5, max(deadline - time.monotonic(), 0.01)))
        except subprocess.TimeoutExpired:
            pass
    if proc.poll() is None:
        _signal_group(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=KILL_GRACE)
        except subprocess.TimeoutExpired:
            pass
    _signal_group(proc.pid, signal.SIGKILL)
    proc.wait()
    # The group is gone, so the pipe is closed and the reader ends; the limit only guards
    # against a process that left the group while keeping the pipe open.
    reader.join(timeout=30)
    return RunOutcome(proc.returncode, timed_out, stopped, reasons[-1] if reasons else None)


def run_luigi(
    request: Request,
    scheduler: list[str],
    *,
    title: str,
    label: str,
    timeout: float,
    secrets: list[str],
    log_path: str | None = None,
    stop: threading.Event | None = None,
) -> RunOutcome:
    """Run a pipeline task as ``python -m luigi``, bound by ``timeout``, its output logged live.

    Requests and the daily schedule both run through here. The command is logged as ``TITLE:
    running ...``, its output as ``LABEL | line``; run_streamed says how the bound is kept.
    """
    argv = request.argv(scheduler)
    logger.info("%s: running %s", title, redact_text(" ".join(argv[2:]), secrets))
    # Unbuffered, so that the run's lines reach the log as they are printed.
    env = dict(os.environ, **request.env, PYTHONUNBUFFERED="1")
    return run_streamed(
        argv, env, label=label, timeout=timeout, secrets=secrets, log_path=log_path, stop=stop
    )


def _seconds(value: float) -> str:
    return str(int(value)) if value == int(value) else str(value)


@dataclass
class PassOutcome:
    """What one look at the requests did: the requests that ended done, and those that failed."""

    done: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


class RequestRunner:
    """Claims and runs the run requests of one lake."""

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
        self.secrets = _environment_secrets()

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
            claimed, previous = self._claim(name)
            if not claimed:
                continue
            if not self.lake.target(f"{REQUESTS}/{name}").exists():
                # Another worker finished it (and dropped its claim) since we listed it.
                self._release(name)
                continue
            if previous is not None and self._finished_by(name, previous):
                logger.info(
                    "request %s was already finished by %s: not running it again", name, previous
                )
                self.lake.remove(f"{REQUESTS}/{name}")
                self._release(name)
                continue
            status = self.handle(name)
            (outcome.done if status == "done" else outcome.failed).append(name)
        return outcome

    # -- claiming ------------------------------------------------------------------------------

    def _claim_text(self) -> str:
        return Claim.render(self.worker_id, self.lease)

    def _claim(self, name: str) -> tuple[bool, str | None]:
        """Try to claim a request: (whether this worker holds it now, the dead worker it was
        taken from, if it was)."""
        rel = f"{CLAIMS}/{name}"
        if self.lake.create_exclusive(rel, self._claim_text()):
            return True, None
        stale = self._stale(rel)
        if stale is None:
            return False, None  # its worker is alive (or just finished)
        text, claim, age = stale
        if not self._take_over(rel, text):
            return False, None
        logger.warning(
            "request %s: took over from worker %s, presumed dead (its last heartbeat was "
            "%.0f s ago, its lease %s s)",
            name, claim.worker, age, _seconds(claim.lease or self.lease),
        )  # fmt: skip
        return True, claim.worker

    def _stale(self, rel: str) -> tuple[str, Claim, float] | None:
        """(text, claim, age in s) of a claim whose heartbeat is older than its lease, else None."""
        text = _read_optional(self.lake, rel)
        if text is None:
            return None
        claim = Claim.parse(text)
        beat = claim.heartbeat if claim.heartbeat is not None else _modified_at(self.lake, rel)
        if beat is None:
            return None
        age = time.time() - beat
        return (text, claim, age) if age > (claim.lease or self.lease) else None

    def _take_over(self, rel: str, stale_text: str) -> bool:
        """Replace a stale claim by this worker's; whether this worker won the request.

        Removing the stale claim and creating a new one is two steps, so workers racing for
        it first race for a marker named after the stale claim's content: only its creator
        replaces the claim, and only if the claim is still the stale one it saw.
        """
        digest = hashlib.sha256(stale_text.encode("utf-8", "replace")).hexdigest()[:16]
        marker = f"{rel}.takeover-{digest}"
        if not self.lake.create_exclusive(marker, self._claim_text()):
            # Another worker is taking it over, or died doing so: then its marker goes stale.
            if self._stale(marker) is not None:
                self.lake.remove(marker)
            return False
        try:
            if _read_optional(self.lake, rel) != stale_text:
                return False  # already taken over (or finished) by another worker
            self.lake.remove(rel)
            return self.lake.create_exclusive(rel, self._claim_text())
        finally:
            self.lake.remove(marker)

    def _release(self, name: str) -> None:
        self.lake.remove(f"{CLAIMS}/{name}")

    def _finished_by(self, name: str, worker: str) -> bool:
        """Whether ``worker`` wrote this request's result (then died before removing it).

        A request file newer than the result is a new request of the same name (its worker
        died after removing the old request, before removing its claim).
        """
        stem = name.rsplit(".", 1)[0]
        for suffix in RESULT_SUFFIXES:
            result = f"{REQUESTS}/{stem}{suffix}"
            text = _read_optional(self.lake, result)
            try:
                doc = yaml.safe_load(text) if text is not None else None
            except yaml.YAMLError:
                continue  # not a result this worker wrote
            if not isinstance(doc, dict) or doc.get("worker") != worker:
                continue
            written = _modified_at(self.lake, result)
            requested = _modified_at(self.lake, f"{REQUESTS}/{name}")
            return written is None or requested is None or requested <= written
        return False

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
            claim = f"{CLAIMS}/{name}"
            with _Heartbeat(self.lake, claim, self.worker_id, self.lease) as heartbeat:
                try:
                    text = _read_request(self.lake, rel)
                    secrets += _request_secrets(text)
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
        self._release(name)
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
            result["error"] = f"timed out after {_seconds(self.timeout)} s"
        elif run.exit_code != 0:
            stem = name.rsplit(".", 1)[0]
            result["error"] = run.reason or f"the run exited with code {run.exit_code}: see {stem}.log"  # fmt: skip
        status = "done" if run.exit_code == 0 and not run.timed_out else "error"
        logger.info("request %s: %s (exit code %s)", name, status, run.exit_code)
        return status, result


# --------------------------------------------------------------------------------------------
# The daily schedule and the scheduler


class DailySchedule:
    """Runs the pipeline for yesterday once a day after ``at`` in ``zone``, bound by ``timeout``."""

    def __init__(
        self,
        at: dt.time,
        zone: ZoneInfo,
        scheduler: list[str],
        timeout: float = DEFAULT_TIMEOUT,
    ):
        self.at = at
        self.zone = zone
        self.scheduler = scheduler
        self.timeout = timeout
        self.secrets = _environment_secrets()
        self.last_day: dt.date | None = None

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
        request = Request(task="TopStatesToDatabase", params={"date": day}, env={})
        run = run_luigi(
            request, self.scheduler, title="schedule", label=f"schedule {day}",
            timeout=self.timeout, secrets=self.secrets,
        )  # fmt: skip
        if run.timed_out:
            logger.error(
                "ufo: error: schedule: the run for %s timed out after %s s and was stopped with "
                "all its processes before it finished. Look for what hung in its lines above "
                "('schedule %s | ...'), give runs more time with --timeout if it only needs "
                "longer, then load %s with a run request (task: TopStatesToDatabase, params: "
                "{date: %s}); the schedule goes on tomorrow after %s %s.",
                day, _seconds(self.timeout), day, day, day, self.at.strftime("%H:%M"), self.zone,
            )  # fmt: skip
        elif run.exit_code != 0:
            logger.error(
                "schedule: the run for %s failed (exit code %s)%s",
                day, run.exit_code, f": {run.reason}" if run.reason else "",
            )  # fmt: skip
        else:
            logger.info("schedule: the run for %s is done (exit code 0)", day)
        return run


def schedule_from_env(
    scheduler: list[str] | None = None, timeout: float = DEFAULT_TIMEOUT
) -> DailySchedule | None:
    """The daily schedule UFO_SCHEDULE_TIME and UFO_TIMEZONE set, or None without a time."""
    at = os.environ.get("UFO_SCHEDULE_TIME")
    if not at:
        return None
    zone = ZoneInfo(os.environ.get("UFO_TIMEZONE") or "UTC")
    return DailySchedule(
        dt.time.fromisoformat(at), zone, scheduler or scheduler_args(), timeout=timeout
    )


def scheduler_args(
    local: bool | None = None, host: str | None = None, port: int | None = None
) -> list[str]:
    """Luigi's scheduler flags: ``--local-scheduler``, or luigid (luigi.cfg's, or host/port).

    ``local=None`` asks UFO_LOCAL_SCHEDULER=1. Under luigid the worker is kept alive, so a
    failed task is retried after luigid's ``retry_delay`` until it succeeds or luigid disables
    it (then the run ends, failed).
    """
    if local is None:
        local = os.environ.get("UFO_LOCAL_SCHEDULER") == "1"
    if local:
        return ["--local-scheduler"]
    args = ["--worker-keep-alive"]
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


def _lease_default() -> float:
    value = os.environ.get("UFO_CLAIM_LEASE")
    return float(value) if value else DEFAULT_LEASE


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Run requests from the lake and the daily schedule."
    )
    parser.add_argument("--once", action="store_true", help="handle pending requests once and exit")
    parser.add_argument("--poll", type=float, default=15.0, help="seconds between looks")
    parser.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT,
        help="seconds a run (a request's, or the daily schedule's) may take before its "
        "processes are killed (default 2 h)",
    )  # fmt: skip
    parser.add_argument(
        "--lease", type=float, default=None,
        help="seconds without a heartbeat after which a claim is taken over "
        f"(default UFO_CLAIM_LEASE or {_seconds(DEFAULT_LEASE)})",
    )  # fmt: skip
    parser.add_argument(
        "--local-scheduler", action="store_true",
        help="run without luigid (as UFO_LOCAL_SCHEDULER=1 does)",
    )  # fmt: skip
    parser.add_argument("--scheduler-host", help="luigid's host (default: luigi.cfg [core])")
    parser.add_argument("--scheduler-port", type=int, help="luigid's port (default: luigi.cfg)")
    args = parser.parse_args(argv)
    if args.lease is None:
        try:
            args.lease = _lease_default()
        except ValueError:
            parser.error(f"UFO_CLAIM_LEASE={os.environ['UFO_CLAIM_LEASE']!r} is not seconds")
    if args.lease <= 0 or args.timeout <= 0:
        parser.error("--lease and --timeout must be positive numbers of seconds")
    local = args.local_scheduler or os.environ.get("UFO_LOCAL_SCHEDULER") == "1"
    if local and (args.scheduler_host or args.scheduler_port):
        parser.error("--local-scheduler runs without luigid: drop --scheduler-host/--port")

    logs.configure()
    lake = Lake.from_uri(load_settings().storage)
    # The random part keeps ids unique when a restarted container reuses hostname and pid.
    worker_id = f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"
    scheduler = scheduler_args(local, args.scheduler_host, args.scheduler_port)
    runner = RequestRunner(lake, scheduler, worker_id, timeout=args.timeout, lease=args.lease)
    schedule = schedule_from_env(scheduler, timeout=args.timeout)
    logger.info("worker %s watching %s", worker_id, lake.uri(REQUESTS))
    if not local:
        url = scheduler_url(args.scheduler_host, args.scheduler_port)
        problem = luigid_problem(url)
        if problem is not None:
            logger.warning(
                "no luigid answers at %s (%s): runs will wait for it and then fail; start "
                "luigid there, or use --local-scheduler",
                redact_source(url), problem,
            )  # fmt: skip
    if args.once:
        try:
            outcome = runner.run_pending()
        except UfoError as err:
            logger.error("worker: %s", err)
            return 1
        return 1 if outcome.failed else 0
    while True:
        try:
            runner.run_pending()
            if schedule is not None:
                schedule.run_if_due(dt.datetime.now(dt.UTC))
        except UfoError as err:
            # A service outlives an outage of the lake or the scheduler: say so, look again later.
            logger.error("worker: %s (retrying in %s s)", err, args.poll)
        time.sleep(args.poll)


if __name__ == "__main__":
    sys.exit(main())
