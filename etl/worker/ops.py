"""Run requests written and followed for a person or a script: re-runs, backfills, their outcome.

A request is checked as the worker checks it (``parse_request``: the task, the dates, at most
4,000 of them in a batch, none in the future), so one the worker would refuse is refused before
it is written, with the worker's own message. It is written whole in one step (the lake writes
a hidden file and renames it; on S3 a single PUT), under a name no other request has, and
records who asked and when (``requested_by``, ``requested_at``), which the worker copies into
its result. Following a request reads the lake until its result is there.
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import yaml

from etl.adapters.lake import Lake
from etl.worker.claims import CLAIMS
from etl.worker.request_states import request_dates
from etl.worker.requests import REQUESTS, Request, check_audit, parse_request

DEFAULT_TASK = "TopStatesToDatabase"


def requester(by: str | None = None) -> str:
    """Who asks: ``by``, else the user this process runs as (checked as a request checks it)."""
    if by is None:
        try:
            by = getpass.getuser()
        except Exception:  # no name for this uid (a container's user): say which uid
            by = f"uid {os.getuid()}"
    return check_audit("requested_by", by)


@dataclass(frozen=True)
class Draft:
    """A request checked and ready to write: its file name, text and what it asks."""

    name: str
    text: str
    request: Request
    dates: tuple[dt.date, ...]

    @property
    def forced(self) -> bool:
        return self.request.forced


def draft(
    verb: str,
    dates: str,
    *,
    task: str = DEFAULT_TASK,
    force: bool = False,
    force_upstream: bool = False,
    force_from: str | None = None,
    by: str | None = None,
    now: dt.datetime | None = None,
) -> Draft:
    """The request that runs ``task`` for ``dates`` (a date or FIRST..LAST); BadRequest, with
    the worker's message, for one the worker would refuse."""
    now = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    params: dict[str, object] = {"date": dates}
    if force:
        params["force"] = True
    if force_upstream:
        params["force_upstream"] = True
    if force_from:
        params["force_from"] = force_from
    doc = {
        "task": task,
        "params": params,
        "requested_by": requester(by),
        "requested_at": now.isoformat(timespec="seconds"),
    }
    text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
    request = parse_request(text)
    days = tuple(sorted(request_dates(request.params["date"], None)))
    span = days[0].isoformat() if len(days) == 1 else f"{days[0]}-to-{days[-1]}"
    name = f"{verb}-{span}-{now:%Y%m%dT%H%M%SZ}-{os.urandom(3).hex()}.yaml"
    return Draft(name, text, request, days)


def forcing_text(params: dict[str, str]) -> str:
    """How a request's parameters force it, as a person reads it (empty: not forced)."""
    if params.get("force_from"):
        return f" forced from {params['force_from']} on"
    forced = {"force": " forced", "force_upstream": " forced with all it needs"}
    return "".join(v for k, v in forced.items() if params.get(k) == "__flag__")


def submit(lake: Lake, request: Draft) -> str:
    """Write the request into ``requests/`` in one step; its file name."""
    lake.write_text(f"{REQUESTS}/{request.name}", request.text)
    return request.name


# -- following ---------------------------------------------------------------------------------


def request_name(name: str) -> str:
    """The request's file name from what a person types: NAME, NAME.yaml or a result's name."""
    name = name.rsplit("/", 1)[-1]
    for suffix in (".done.yaml", ".error.yaml", ".log"):
        if name.endswith(suffix):
            return name[: -len(suffix)] + ".yaml"
    return name if name.endswith((".yaml", ".yml")) else name + ".yaml"


def look(lake: Lake, name: str) -> tuple[str, dict | None]:
    """Where a request is now: ``queued``, ``running``, ``done`` or ``error`` (with its
    result), or ``unknown`` (no such request, or none yet)."""
    stem = name.rsplit(".", 1)[0]
    if lake.exists(f"{REQUESTS}/{name}"):
        # A result beside the request is an earlier one's of the same name: not this one's.
        return ("running" if lake.exists(f"{CLAIMS}/{name}") else "queued"), None
    found = []
    for status in ("done", "error"):
        text = lake.read_optional(f"{REQUESTS}/{stem}.{status}.yaml")
        if text is not None:
            found.append((lake.modified_at(f"{REQUESTS}/{stem}.{status}.yaml"), status, text))
    if not found:
        return "unknown", None
    _when, status, text = max(found)
    try:
        result = yaml.safe_load(text)
    except yaml.YAMLError:
        result = None
    return status, result if isinstance(result, dict) else {}


def follow(
    lake: Lake,
    name: str,
    timeout: float,
    poll: float = 1.0,
    said: Callable[[str], None] = lambda _status: None,
) -> tuple[str, dict | None]:
    """Look at a request until it has ended or ``timeout`` seconds have passed: (``done`` or
    ``error``, its result), (``timeout``, None) or (``unknown``, None) for a request that is
    nowhere. ``said`` is told each new status (queued, running)."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        status, result = look(lake, name)
        if status in ("done", "error"):
            return status, result
        if status == "unknown" and last is None:
            return status, None
        if status != last and status != "unknown":
            said(status)
            last = status
        if time.monotonic() >= deadline:
            return "timeout", None
        time.sleep(min(poll, max(deadline - time.monotonic(), 0.05)))
