"""The Luigi worker service: run requests dropped in the lake, and the daily schedule.

    python -m etl.worker [--once] [--poll 15]

Run requests: a YAML file under ``{UFO_STORAGE}/requests/``::

    task: TopStatesToDatabase        # one of the pipeline's tasks
    params: {date: 2019-03-29, force: true}
    env: {UFO_SOURCE: s3://incoming/nuforc_index.csv}   # optional; only UFO_SOURCE

is claimed by exactly one worker (an exclusive create of ``requests/.claims/NAME``: a local
O_EXCL create, or an S3 PUT with ``If-None-Match: *``), run as ``python -m luigi --module etl
TASK --param value ...`` against the configured scheduler (luigid), then renamed to
``NAME.done.yaml`` or ``NAME.error.yaml`` with the run's log beside it as ``NAME.log``. A
request is run once: a failed one is not retried (Luigi's own retries happen inside the run). A
malformed request gets an ``.error.yaml`` saying why. Nothing in a request is executed: the task
name and parameter names are checked against the pipeline's, values are parsed by Luigi's
parameter types, and the command is an argument list (no shell).

Schedule: with ``UFO_SCHEDULE_TIME=HH:MM`` (and ``UFO_TIMEZONE``, default UTC), the worker runs
``TopStatesToDatabase`` for yesterday once a day after that time. Every replica may try; luigid
lets one run it, and a loaded date is complete for the others.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import yaml

from etl import logs
from etl.config import load_settings
from etl.errors import UfoError
from etl.storage import Lake

logger = logging.getLogger("ufo.worker")

REQUESTS = "requests"
CLAIMS = f"{REQUESTS}/.claims"
ALLOWED_TASKS = ("ReadUFOs", "AggregateUFOsByState", "TopTenStates", "TopStatesToDatabase")
ALLOWED_ENV = ("UFO_SOURCE",)
RESULT_SUFFIXES = (".done.yaml", ".error.yaml")


class _RequestLoader(yaml.SafeLoader):
    """Safe YAML whose dates stay text, so that Luigi's parameter types judge them."""


_RequestLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class BadRequest(ValueError):
    """A request file that cannot be run; the message says why."""


@dataclass(frozen=True)
class Request:
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
    return Request(task=task, params=params, env={k: str(v) for k, v in env_in.items()})


class RequestRunner:
    """Claims and runs the run requests of one lake."""

    def __init__(self, lake: Lake, scheduler: list[str], worker_id: str, timeout: float = 6 * 3600):
        self.lake = lake
        self.scheduler = scheduler
        self.worker_id = worker_id
        self.timeout = timeout

    def pending(self) -> list[str]:
        names = []
        for suffix in (".yaml", ".yml"):
            for rel in self.lake.files(REQUESTS, suffix):
                name = rel.rsplit("/", 1)[1]
                if not name.endswith(RESULT_SUFFIXES):
                    names.append(name)
        return sorted(set(names))

    def run_pending(self) -> int:
        """Run every request this worker manages to claim; how many it ran."""
        ran = 0
        for name in self.pending():
            claim = f"{CLAIMS}/{name}"
            if not self.lake.create_exclusive(claim, self.worker_id):
                continue  # another worker has it
            if not self.lake.target(f"{REQUESTS}/{name}").exists():
                # Another worker finished it (and dropped its claim) since we listed it.
                self.lake.remove(claim)
                continue
            self.handle(name)
            ran += 1
        return ran

    def handle(self, name: str) -> None:
        stem = name.rsplit(".", 1)[0]
        rel = f"{REQUESTS}/{name}"
        text = self.lake.read_text(rel)
        started = dt.datetime.now(dt.UTC)
        try:
            request = parse_request(text)
        except BadRequest as err:
            logger.warning("request %s is malformed: %s", name, err)
            self._finish(rel, stem, text, "error", {"error": str(err)}, log=None, started=started)
            return
        argv = request.argv(self.scheduler)
        logger.info("request %s: running %s", name, " ".join(argv[2:]))
        env = dict(os.environ, **request.env)
        try:
            proc = subprocess.run(
                argv, env=env, capture_output=True, text=True, timeout=self.timeout
            )
            code, output = proc.returncode, proc.stdout + proc.stderr
        except subprocess.TimeoutExpired as err:
            code, output = (
                -1,
                f"timed out after {self.timeout} s\n{err.stdout or ''}{err.stderr or ''}",
            )
        status = "done" if code == 0 else "error"
        result = {"exit_code": code}
        if code != 0:
            reasons = [ln for ln in output.splitlines() if ln.startswith("ufo: error: ")]
            result["error"] = (
                reasons[-1] if reasons else f"the run exited with code {code}: see {stem}.log"
            )
        logger.info("request %s: %s (exit code %s)", name, status, code)
        self._finish(rel, stem, text, status, result, log=output, started=started)

    def _finish(self, rel, stem, text, status, result, log, started) -> None:
        record = {
            "request": text,
            "status": status,
            "worker": self.worker_id,
            "started": started.isoformat(timespec="seconds"),
            "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            **result,
        }
        if log is not None:
            self.lake.write_text(f"{REQUESTS}/{stem}.log", log)
        self.lake.write_text(
            f"{REQUESTS}/{stem}.{status}.yaml", yaml.safe_dump(record, sort_keys=False)
        )
        self.lake.remove(rel)
        self.lake.remove(f"{CLAIMS}/{rel.rsplit('/', 1)[1]}")


class DailySchedule:
    """Runs the pipeline for yesterday once a day, after ``at`` in ``zone``."""

    def __init__(self, at: dt.time, zone: ZoneInfo, scheduler: list[str]):
        self.at = at
        self.zone = zone
        self.scheduler = scheduler
        self.last_day: dt.date | None = None

    def due(self, now: dt.datetime) -> dt.date | None:
        """The run date to run now, if any."""
        local = now.astimezone(self.zone)
        if local.time() >= self.at and self.last_day != local.date():
            return local.date() - dt.timedelta(days=1)
        return None

    def run_if_due(self, now: dt.datetime) -> int | None:
        run_date = self.due(now)
        if run_date is None:
            return None
        self.last_day = now.astimezone(self.zone).date()
        argv = [sys.executable, "-m", "luigi", "--module", "etl", "TopStatesToDatabase",
                "--date", run_date.isoformat(), *self.scheduler]  # fmt: skip
        logger.info("schedule: running the pipeline for %s", run_date)
        code = subprocess.run(argv).returncode
        logger.info("schedule: run for %s ended with exit code %s", run_date, code)
        return code


def schedule_from_env() -> DailySchedule | None:
    at = os.environ.get("UFO_SCHEDULE_TIME")
    if not at:
        return None
    zone = ZoneInfo(os.environ.get("UFO_TIMEZONE") or "UTC")
    return DailySchedule(dt.time.fromisoformat(at), zone, scheduler_args())


def scheduler_args() -> list[str]:
    """``--local-scheduler`` when UFO_LOCAL_SCHEDULER=1, else luigid from luigi.cfg.

    Under luigid the worker is kept alive, so a failed task is retried after luigid's
    ``retry_delay`` until it succeeds or luigid disables it (then the run ends, failed).
    """
    if os.environ.get("UFO_LOCAL_SCHEDULER") == "1":
        return ["--local-scheduler"]
    return ["--worker-keep-alive"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Run requests from the lake and the daily schedule."
    )
    parser.add_argument("--once", action="store_true", help="handle pending requests once and exit")
    parser.add_argument("--poll", type=float, default=15.0, help="seconds between looks")
    parser.add_argument("--timeout", type=float, default=6 * 3600, help="seconds a request may run")
    args = parser.parse_args(argv)
    logs.configure()
    lake = Lake.from_uri(load_settings().storage)
    worker_id = f"{socket.gethostname()}:{os.getpid()}"
    runner = RequestRunner(lake, scheduler_args(), worker_id, timeout=args.timeout)
    schedule = schedule_from_env()
    logger.info("worker %s watching %s", worker_id, lake.uri(REQUESTS))
    if args.once:
        runner.run_pending()
        return 0
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
