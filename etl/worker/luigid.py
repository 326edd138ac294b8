"""What the worker asks luigid: the disabled tasks of a request's run dates, and re-enabling them.

luigid disables a task that failed ``retry_count`` times within ``disable_window`` and refuses
to run it for ``disable_persist`` seconds (luigi.cfg ``[scheduler]``); a run of that task then
ends "not granted run permission by the scheduler". A forced request re-enables the disabled
tasks of its dates first (its sender asked for them to run); any other request that meets one
is told which task is disabled and how to run it.

luigid's JSON API (``/api/task_list``, ``/api/re_enable_task``) is what its own UI calls. Every
call is bounded in time; a luigid that does not answer is logged, never a reason to fail.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import urllib.error
import urllib.parse
import urllib.request

from etl.pipeline.rundates import RunDateParameter, RunDates, yesterday
from etl.worker.requests import ALLOWED_TASKS

logger = logging.getLogger("ufo.worker")

TIMEOUT = 10.0


def _call(url: str, method: str, data: dict) -> dict:
    query = urllib.parse.urlencode({"data": json.dumps(data)})
    with urllib.request.urlopen(f"{url.rstrip('/')}/api/{method}?{query}", timeout=TIMEOUT) as r:
        return json.load(r).get("response") or {}


def _dates(value: str | None) -> set[dt.date]:
    if not value:
        return set()
    parsed = RunDateParameter().parse(value)
    return set(parsed) if isinstance(parsed, RunDates) else {parsed}


def disabled_tasks(url: str, dates: set[dt.date]) -> list[str]:
    """The ids of the pipeline's tasks luigid holds disabled for any of ``dates``."""
    try:
        tasks = _call(url, "task_list", {"status": "DISABLED", "upstream_status": "",
                                         "limit": False})  # fmt: skip
    except (OSError, ValueError) as err:
        logger.warning("luigid at %s did not list its disabled tasks: %s", url, err)
        return []
    found = []
    for task_id, info in tasks.items():
        if info.get("name") not in ALLOWED_TASKS:
            continue
        try:
            if _dates((info.get("params") or {}).get("date")) & dates:
                found.append(task_id)
        except ValueError:
            continue  # not a date this pipeline wrote
    return sorted(found)


def re_enable(url: str, task_ids: list[str]) -> list[str]:
    """Re-enable ``task_ids`` in luigid; the ones it re-enabled."""
    done = []
    for task_id in task_ids:
        try:
            _call(url, "re_enable_task", {"task_id": task_id})
            done.append(task_id)
        except (OSError, ValueError) as err:
            logger.warning("luigid at %s did not re-enable %s: %s", url, task_id, err)
    return done


def request_dates(params: dict[str, str]) -> set[dt.date]:
    """The run dates a request's parameters name (yesterday when it names none)."""
    value = params.get("date")
    return _dates(value) if value else {yesterday()}
