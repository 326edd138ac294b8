"""``python -m etl.worker runs|rerun|backfill|follow``: see and drive the run dates from scripts.

    python -m etl.worker runs [--from DATE] [--to DATE] [--all-loaded] [--state STATE ...]
                              [--offset N] [--limit N] [--json]
    python -m etl.worker rerun DATE [--task TASK] [--force | --force-upstream | --from TASK]
                               [--yes] [--by NAME]
    python -m etl.worker backfill FIRST..LAST [--task TASK] [--force | --force-upstream |
                                  --from TASK] [--yes] [--by NAME]
    python -m etl.worker follow REQUEST [--timeout S] [--poll S]

``rerun`` and ``backfill`` write a run request for the worker and print its name; a forced one,
or one of more than one date, needs ``--yes`` (asked for at a terminal). Exit codes: 0 done; 1
the request ended in error (``follow``), or the lake or database could not be used; 2 a bad
command line, a request the worker would refuse (nothing is written) or an unknown request;
3 ``follow`` gave up after ``--timeout`` (the request still waits or runs).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys

from etl.adapters.lake import open_lake
from etl.errors import UfoError
from etl.settings import load_settings
from etl.worker.ops import (
    DEFAULT_TASK,
    Draft,
    draft,
    follow,
    forcing_text,
    request_name,
    submit,
)
from etl.worker.requests import ALLOWED_TASKS, BadRequest
from etl.worker.rundates_view import MAX_LIMIT, STATES, Page, RunDatesView

COMMANDS = ("runs", "rerun", "backfill", "follow")
DONE, FAILED, USAGE, TIMED_OUT = 0, 1, 2, 3


def _day(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date: give YYYY-MM-DD") from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m etl.worker",
        description="See and drive the run dates (the worker runs them).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    runs = sub.add_parser("runs", help="list run dates with their state, newest first")
    runs.add_argument(
        "--from", dest="start", type=_day, metavar="DATE", help="first date (default: 90 days back)"
    )
    runs.add_argument(
        "--to", dest="end", type=_day, metavar="DATE", help="last date (default: yesterday)"
    )
    runs.add_argument("--all-loaded", action="store_true", help="and every date ever loaded")
    runs.add_argument("--state", action="append", choices=STATES, default=[],
                      help="only dates in this state (may be repeated)")  # fmt: skip
    runs.add_argument("--offset", type=int, default=0, help="dates to skip (paging)")
    runs.add_argument("--limit", type=int, default=100, help=f"dates to show (1 to {MAX_LIMIT})")
    runs.add_argument("--json", action="store_true", help="one JSON object instead of a table")
    for verb, what, helptext in (
        ("rerun", "date", "a run date: YYYY-MM-DD"),
        ("backfill", "dates", "FIRST..LAST (at most 4,000 dates)"),
    ):
        cmd = sub.add_parser(verb, help=f"request a {verb} (written for the worker to run)")
        cmd.add_argument(what, help=helptext)
        cmd.add_argument("--task", choices=ALLOWED_TASKS, default=DEFAULT_TASK,
                         help=f"the task to run, with what it needs (default {DEFAULT_TASK})")  # fmt: skip
        forcing = cmd.add_mutually_exclusive_group()
        forcing.add_argument("--force", action="store_true", help="run the task even if done")
        forcing.add_argument("--force-upstream", action="store_true",
                             help="run the task and every task it needs anew")  # fmt: skip
        forcing.add_argument("--from", dest="force_from", choices=ALLOWED_TASKS,
                             help="run anew from this task of the chain on, up to --task "
                             "(e.g. AggregateUFOsByState: the Spark step, ranking and load)")  # fmt: skip
        cmd.add_argument("--yes", action="store_true", help="confirm a forced run or a range")
        cmd.add_argument("--by", help="who asks (default: this user)")
    follow_ = sub.add_parser("follow", help="wait for a request's outcome")
    follow_.add_argument("request", help="the request's name, as rerun/backfill printed it")
    follow_.add_argument("--timeout", type=float, default=3600.0, help="seconds (default 3600)")
    follow_.add_argument("--poll", type=float, default=1.0, help="seconds between looks")
    return parser


def main(argv: list[str]) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        lake = open_lake(settings.storage)
        if args.command == "runs":
            view = RunDatesView(
                lake, settings.require_database_url(), settings.timezone, settings.schedule_time,
                settings.claim_lease,
            )  # fmt: skip
            try:
                page = view.page(
                    args.start, args.end, all_loaded=args.all_loaded, states=tuple(args.state),
                    offset=args.offset, limit=args.limit,
                )  # fmt: skip
            except ValueError as err:
                parser.error(str(err))
            print(json.dumps(page.as_dict(), indent=1) if args.json else table(page))
            return DONE
        if args.command == "follow":
            return _follow(lake, args)
        return _request(parser, lake, args)
    except UfoError as err:
        print(f"ufo: error: {err}", file=sys.stderr)
        return FAILED


def _request(parser: argparse.ArgumentParser, lake, args) -> int:
    dates = args.date if args.command == "rerun" else args.dates
    if args.command == "rerun" and (".." in dates or "," in dates):
        parser.error("rerun takes one date: use backfill FIRST..LAST for a range")
    try:
        request = draft(
            args.command, dates, task=args.task, force=args.force,
            force_upstream=args.force_upstream, force_from=args.force_from, by=args.by,
        )  # fmt: skip
    except BadRequest as err:
        parser.error(f"the worker would refuse this request, so it was not written: {err}")
    if (request.forced or len(request.dates) > 1) and not _confirmed(args.yes, request):
        parser.error(f"{_summary(request)}: add --yes to confirm")
    print(submit(lake, request))
    return DONE


def _summary(request: Draft) -> str:
    days = request.dates
    span = str(days[0]) if len(days) == 1 else f"{len(days)} dates, {days[0]}..{days[-1]}"
    return f"{request.request.task}{forcing_text(request.request.params)} for {span}"


def _confirmed(yes: bool, request: Draft) -> bool:
    """``--yes``, or a yes typed at a terminal."""
    if yes:
        return True
    if not sys.stdin.isatty():
        return False
    # On stderr: `name=$(python -m etl.worker backfill ...)` keeps only the request's name.
    print(f"Request {_summary(request)}? [y/N] ", end="", file=sys.stderr, flush=True)
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def _follow(lake, args) -> int:
    name = request_name(args.request)
    status, result = follow(
        lake, name, args.timeout, args.poll, said=lambda s: print(f"{name}: {s}", flush=True)
    )
    if status == "unknown":
        print(f"ufo: error: no request {name} in {lake.uri('requests')}", file=sys.stderr)
        return USAGE
    if status == "timeout":
        print(f"{name}: not finished after {args.timeout:g} s (still waiting or running)")
        return TIMED_OUT
    result = result or {}
    line = f"{name}: {status}"
    if status == "error":
        line += f": {result.get('error', 'see its .error.yaml')}"
    print(line)
    return DONE if status == "done" else FAILED


def table(page: Page) -> str:
    """The page as a table for a terminal: date, state and what explains it."""
    lines = [f"{'date':<10}  {'state':<9}  detail"]
    for item in page.dates:
        lines.append(f"{item.date}  {item.state:<9}  {_detail(item)}".rstrip())
    shown = f"{page.offset + 1}-{page.offset + len(page.dates)}" if page.dates else "none"
    more = page.offset + len(page.dates) < page.total
    counts = ", ".join(f"{n} {s}" for s, n in page.counts.items() if n)
    lines.append(
        f"{page.start}..{page.end}: {shown} of {page.total} shown"
        + (f" (--offset {page.offset + len(page.dates)} for more)" if more else "")
        + (f"; {counts}" if counts else "")
    )
    return "\n".join(lines)


def _detail(item) -> str:
    """What a date's state rests on, in one line; text read from the lake (claims, results,
    names: anyone who can write the requests folder wrote it) without control characters."""
    return _printable(_described(item))


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() else "?" for c in text)


def _described(item) -> str:
    request = item.request
    if item.state == "failed":
        return f"{item.reason} ({request.name})"
    if item.state == "running":
        beat = request.heartbeat.isoformat(timespec="seconds") if request.heartbeat else "?"
        since = f", since {request.started}" if request.started else ""
        return f"{request.task} by {request.worker}{since}, alive at {beat} ({request.name})"
    if item.state == "requested":
        by = f" by {request.requested_by}" if request.requested_by else ""
        return f"{request.task} waits, asked{by} ({request.name})"
    if item.state == "missing":
        return "the daily schedule has not loaded it"
    if item.loaded is not None:
        run = item.loaded
        return (
            f"{run.valid} valid, {run.rejected} rejected, {run.layout or '?'} layout, from "
            f"{run.source}, at {run.finished_at.isoformat(timespec='seconds')}"
        )
    return ""
