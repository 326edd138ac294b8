"""What the console's pages show, read from the database, the lake and luigid's history.

Nothing here writes: ``etl.console.app`` writes run requests through ``etl.worker.ops``.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from etl.adapters.lake import Lake
from etl.console import tasks
from etl.console.settings import ConsoleSettings
from etl.errors import UfoError
from etl.worker.ops import look
from etl.worker.request_states import RequestState, RequestStates
from etl.worker.requests import REQUESTS
from etl.worker.rundates_view import RunDateState, RunDatesView

#: A run's log shown on its page, at most (the link gives it whole).
LOG_SHOWN = 512 * 1024
#: Requests listed on the audit page, newest first, a page at a time.
AUDIT_PAGE = 50
_APPLICATION = re.compile(r"/history/(app-[0-9A-Za-z-]+)")
_SESSION = re.compile(r"^session: (\S+) (https?://\S+)", re.MULTILINE)
#: A warm run's ``done:`` line links its session's page on the Connect server's live UI.
_SESSION_PAGE = re.compile(r"Spark application: (https?://\S+/connect/session/\?id=([\w-]+))")


@dataclass(frozen=True)
class SparkLink:
    label: str
    url: str


@dataclass(frozen=True)
class RequestLog:
    text: str
    size: int
    cut: bool


@dataclass(frozen=True)
class RunDate:
    """One run date, whole: its state, tasks, requests and where to look further."""

    state: RunDateState
    tasks: list[tasks.TaskRun] | None  # None: luigid's history is not configured
    tasks_error: str | None
    requests: list[RequestState]  # newest first
    spark: list[SparkLink]


class Views:
    def __init__(self, lake: Lake, settings: ConsoleSettings, dates: RunDatesView):
        self.lake = lake
        self.settings = settings
        self.dates = dates
        # The view's own reader: each finished request is read once, for both.
        self.requests: RequestStates = dates.requests

    def run_date(self, day: dt.date) -> RunDate:
        state = self.dates.page(day, day, limit=1).dates[0]
        found_tasks, error = None, None
        if self.settings.luigid_db:
            try:
                found_tasks = tasks.task_runs(self.settings.luigid_db, day)
            except UfoError as err:
                found_tasks, error = [], f"luigid's task history could not be read: {err}"
        concerned = [r for r in self.requests.all() if day in r.dates]
        concerned.reverse()  # the newest first: open ones, then results as they ended
        spark: list[SparkLink] = []
        for request in concerned:
            log = self.log(request.name)
            if log is not None:
                spark += [link for link in self.spark_links(log.text) if link not in spark]
        return RunDate(state, found_tasks, error, concerned, spark)

    def log(self, name: str, limit: int = LOG_SHOWN, kind: str = "log") -> RequestLog | None:
        """A request's run log (``kind`` "spark": its tasks' Spark output), its first ``limit``
        bytes when it is longer; None when it has none (yet: a running request's log comes
        within seconds of its start)."""
        rel = self.log_path(name, kind)
        if not self.lake.exists(rel):
            return None
        data, size = self.lake.read_head(rel, limit)
        return RequestLog(data.decode("utf-8", "replace"), size, size > limit)

    @staticmethod
    def log_path(name: str, kind: str = "log") -> str:
        """Where the worker leaves the run log of request ``name`` (``NAME.log``), or the Spark
        output its tasks kept (``kind`` "spark": ``NAME.spark.log``)."""
        stem = name.rsplit(".", 1)[0]
        return f"{REQUESTS}/{stem}.spark.log" if kind == "spark" else f"{REQUESTS}/{stem}.log"

    def has_spark_log(self, name: str) -> bool:
        return self.lake.exists(self.log_path(name, "spark"))

    def spark_links(self, log: str) -> list[SparkLink]:
        """The Spark applications a run's log names: each cold run's page in the history
        server (as the console's users reach it), each warm run's session on the live UI."""
        found: list[SparkLink] = []
        history = self.settings.history_url
        for app in dict.fromkeys(_APPLICATION.findall(log)):
            if history is not None:
                found.append(
                    SparkLink(f"Spark application {app}", f"{history}/history/{app}/jobs/")
                )
        pages = {session: page for page, session in _SESSION_PAGE.findall(log)}
        for session, ui in _SESSION.findall(log):
            pages.setdefault(session, f"{ui.rstrip('/')}/connect/session/?id={session}")
        for session, page in pages.items():
            found.append(SparkLink(f"Spark Connect session {session[:8]}", page))
        return found

    def request(self, name: str) -> tuple[str, dict | None, RequestState | None]:
        """(status: queued, running, done, error or unknown; its result; what the lake's list
        says of it, with its dates)."""
        status, result = look(self.lake, name)
        listed = next((r for r in self.requests.all() if r.name == name), None)
        if listed is not None and listed.status == "running":
            listed = self.requests.with_task_now(listed)  # what its live log says runs now
        return status, result, listed

    def audit(self, offset: int = 0) -> tuple[list[RequestState], int]:
        """Every request, the newest asked first (those without a time last): a page of them
        and how many there are."""
        every = self.requests.all()
        every.sort(key=lambda r: (r.requested_at or "", r.finished or ""), reverse=True)
        return every[offset : offset + AUDIT_PAGE], len(every)
