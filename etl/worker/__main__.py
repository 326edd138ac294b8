"""``python -m etl.worker``: the worker service (see ``etl/worker/__init__.py``); its first
word ``runs``, ``rerun``, ``backfill`` or ``follow`` makes it the command-line twin of the
console instead (``etl/worker/ops_cli.py``)."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import signal
import socket
import sys
import threading

from etl import logs
from etl.adapters.alerts import Outbox
from etl.adapters.lake import open_lake
from etl.errors import ConfigError, UfoError
from etl.redact import redact_source
from etl.settings import load_settings
from etl.worker import ops_cli
from etl.worker.claims import DEFAULT_LEASE
from etl.worker.requests import REQUESTS, environment_secrets
from etl.worker.runs import DEFAULT_TIMEOUT, seconds_text
from etl.worker.schedule import (
    DailySchedule,
    luigid_problem,
    schedule_from_settings,
    scheduler_args,
    scheduler_url,
)
from etl.worker.service import RequestRunner

logger = logging.getLogger("ufo.worker")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m etl.worker",
        description="Run requests from the lake and the daily schedule.",
        epilog="The run dates from a terminal or a script: python -m etl.worker "
        f"{{{','.join(ops_cli.COMMANDS)}}} --help.",
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
        f"(default UFO_CLAIM_LEASE or {seconds_text(DEFAULT_LEASE)})",
    )  # fmt: skip
    parser.add_argument(
        "--local-scheduler", action="store_true",
        help="run without luigid (as UFO_LOCAL_SCHEDULER=1 does)",
    )  # fmt: skip
    parser.add_argument("--scheduler-host", help="luigid's host (default: luigi.cfg [core])")
    parser.add_argument("--scheduler-port", type=int, help="luigid's port (default: luigi.cfg)")
    return parser


def _warn_without_luigid(host: str | None, port: int | None) -> None:
    """Say in one line at start-up when no luigid answers where runs will look for it."""
    url = scheduler_url(host, port)
    problem = luigid_problem(url)
    if problem is not None:
        logger.warning(
            "no luigid answers at %s (%s): runs will wait for it and then fail; start "
            "luigid there, or use --local-scheduler",
            redact_source(url), problem,
        )  # fmt: skip


def serve(runner: RequestRunner, schedule: DailySchedule | None, poll: float) -> None:
    """Look for requests, and run the schedule when due, every ``poll`` seconds, until told to
    stop."""
    while not runner.stopping.is_set():
        try:
            runner.run_pending()
            if schedule is not None and not runner.stopping.is_set():
                schedule.run_if_due(dt.datetime.now(dt.UTC))
        except UfoError as err:
            # A service outlives an outage of the lake or the scheduler: say so, look again later.
            logger.error("worker: %s (retrying in %s s)", err, poll)
        runner.stopping.wait(poll)


def stop_on_signals(stopping: threading.Event) -> None:
    """SIGTERM and SIGINT stop the worker: its run is stopped, then it exits (no run outlives it)."""

    def handle(signum: int, _frame) -> None:
        if not stopping.is_set():
            logger.warning(
                "worker: %s: stopping its run, if any, with all its processes, then exiting",
                signal.Signals(signum).name,
            )
        stopping.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, handle)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # A word, not an option: the service's own flags and bare invocation stay as they were.
    if argv and argv[0] in ops_cli.COMMANDS:
        return ops_cli.main(argv)
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as err:
        parser.error(str(err))
    lease = settings.claim_lease if args.lease is None else args.lease
    if lease <= 0 or args.timeout <= 0:
        parser.error("--lease and --timeout must be positive numbers of seconds")
    local = args.local_scheduler or settings.local_scheduler
    if local and (args.scheduler_host or args.scheduler_port):
        parser.error("--local-scheduler runs without luigid: drop --scheduler-host/--port")

    logs.configure()
    lake = open_lake(settings.storage)
    # The random part keeps ids unique when a restarted container reuses hostname and pid.
    worker_id = f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"
    scheduler = scheduler_args(local, args.scheduler_host, args.scheduler_port)
    # Requests are not kept alive: a failed one ends at once with its reason, instead of
    # holding the worker (and the requests behind it) through luigid's retries.
    for_requests = scheduler_args(local, args.scheduler_host, args.scheduler_port, keep_alive=False)
    url = None if local else scheduler_url(args.scheduler_host, args.scheduler_port)
    stopping = threading.Event()
    stop_on_signals(stopping)
    alerts = Outbox(environment_secrets())
    runner = RequestRunner(
        lake, for_requests, worker_id, timeout=args.timeout, lease=lease, luigid_url=url,
        stopping=stopping, alerts=alerts,
    )  # fmt: skip
    # The schedule's runs leave their results among the requests', in this worker's name.
    schedule = schedule_from_settings(
        scheduler, timeout=args.timeout, stopping=stopping, alerts=alerts, lake=lake,
        worker_id=worker_id,
    )  # fmt: skip
    try:
        return _run(args, runner, schedule, worker_id, local)
    finally:
        alerts.close()  # what is still being sent, within its bound


def _run(args, runner: RequestRunner, schedule: DailySchedule | None, worker_id: str,
         local: bool) -> int:  # fmt: skip
    logger.info("worker %s watching %s", worker_id, runner.lake.uri(REQUESTS))
    if not local:
        _warn_without_luigid(args.scheduler_host, args.scheduler_port)
    if not args.once:
        serve(runner, schedule, args.poll)
        logger.info("worker %s stopped", worker_id)
        return 0
    try:
        outcome = runner.run_pending()
    except UfoError as err:
        logger.error("worker: %s", err)
        return 1
    return 1 if outcome.failed else 0


if __name__ == "__main__":
    sys.exit(main())
