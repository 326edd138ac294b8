"""The run dates at a glance: each date of a range with its state, newest first, a page at a time.

A date's state, the first that holds:

* ``running``: a run request that names it is claimed by a live worker now (with the task that
  runs now, when the request's live log says it: read for the page's running dates alone);
* ``requested``: a run request that names it waits in ``requests/`` (or for a dead worker's
  request to be taken over);
* ``failed``: the last finished request that named it ended in its ``.error.yaml``, after the
  date was last loaded (if ever); its reason is that result's ``ufo: error:`` line. The daily
  schedule's runs leave such results too (``schedule-DATE-*``), so a failed night is here;
* ``loaded``: ``ufo_runs`` has its row (source, layout, rows valid and rejected, when);
* ``missing``: the daily schedule (``UFO_SCHEDULE_TIME``) should have loaded it by now (its
  run was due the day after it, at that time in ``UFO_TIMEZONE``), and no run of it has ended:
  the schedule did not run it (no worker was up), or its run is still going or was stopped;
* ``none``: nothing loaded it, asks for it or expects it.

The dates are a range (default: the 90 days up to yesterday in ``UFO_TIMEZONE``) and, when
asked, every date ever loaded. Only one page's figures are read from the database.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from etl.adapters.database.loaded import LoadedRun, loaded_runs, loaded_times
from etl.adapters.lake import Lake
from etl.worker.claims import DEFAULT_LEASE
from etl.worker.request_states import RequestState, RequestStates

STATES = ("loaded", "failed", "running", "requested", "missing", "none")
DEFAULT_DAYS = 90
MAX_LIMIT = 1000
MAX_RANGE_DAYS = 36600  # a hundred years: every date of a range is judged, page or not


@dataclass(frozen=True)
class RunDateState:
    """One run date's state, with what explains it."""

    date: dt.date
    state: str  # one of STATES
    loaded: LoadedRun | None = None  # its ufo_runs record, whatever its state
    request: RequestState | None = None  # running, requested or failed: the request that says so
    reason: str | None = None  # failed: why, in one line

    def as_dict(self) -> dict:
        found: dict = {"date": self.date.isoformat(), "state": self.state}
        if self.loaded is not None:
            run = self.loaded
            found["loaded"] = {
                "source": run.source, "layout": run.layout, "valid": run.valid,
                "rejected": run.rejected,
                "finished_at": run.finished_at.isoformat(timespec="seconds"),
            }  # fmt: skip
        if self.request is not None:
            found["request"] = self.request.as_dict()
        if self.reason is not None:
            found["reason"] = self.reason
        return found


@dataclass(frozen=True)
class Page:
    """One page of a range's run dates, newest first, and how many of each state it holds."""

    start: dt.date
    end: dt.date
    dates: list[RunDateState]
    total: int  # dates of the range (of the chosen states)
    offset: int
    limit: int
    counts: dict[str, int] = field(default_factory=dict)  # every date of the range, by state

    def as_dict(self) -> dict:
        return {
            "from": self.start.isoformat(), "to": self.end.isoformat(), "total": self.total,
            "offset": self.offset, "limit": self.limit, "counts": self.counts,
            "dates": [d.as_dict() for d in self.dates],
        }  # fmt: skip


def default_range(zone: ZoneInfo, now: dt.datetime | None = None) -> tuple[dt.date, dt.date]:
    """The last DEFAULT_DAYS days up to yesterday in ``zone``."""
    today = (now or dt.datetime.now(dt.UTC)).astimezone(zone).date()
    end = today - dt.timedelta(days=1)
    return end - dt.timedelta(days=DEFAULT_DAYS - 1), end


class RunDatesView:
    """The states of run dates from the database's ``ufo_runs`` and the lake's run requests."""

    def __init__(
        self,
        lake: Lake,
        database_url: str,
        zone: ZoneInfo,
        schedule_time: dt.time | None = None,
        lease: float = DEFAULT_LEASE,
    ):
        self.database_url = database_url
        self.zone = zone
        self.schedule_time = schedule_time
        self.requests = RequestStates(lake, zone, lease)

    def page(
        self,
        start: dt.date | None = None,
        end: dt.date | None = None,
        *,
        all_loaded: bool = False,
        states: tuple[str, ...] = (),
        offset: int = 0,
        limit: int = 100,
        now: dt.datetime | None = None,
    ) -> Page:
        """The run dates from ``start`` to ``end`` (and every loaded one with ``all_loaded``)
        whose state is one of ``states`` (all when empty), newest first: ``limit`` of them from
        ``offset`` on."""
        now = now or dt.datetime.now(dt.UTC)
        first, last = default_range(self.zone, now)
        end = end or last
        start = start or end - (last - first)  # --to alone: the default span ending there
        if end < start:
            raise ValueError(f"the range ends ({end}) before it starts ({start})")
        if (end - start).days >= MAX_RANGE_DAYS:
            raise ValueError(f"a range holds at most {MAX_RANGE_DAYS} days")
        if not 0 < limit <= MAX_LIMIT or offset < 0:
            raise ValueError(f"a page holds 1 to {MAX_LIMIT} dates from an offset of 0 or more")
        unknown = set(states) - set(STATES)
        if unknown:
            raise ValueError(f"unknown state(s) {sorted(unknown)}: use {', '.join(STATES)}")
        # One row per loaded date: when it was loaded, all that a date's state needs.
        loaded = loaded_times(self.database_url, *((None, None) if all_loaded else (start, end)))
        days = (end - start).days + 1
        dates = {start + dt.timedelta(days=n) for n in range(days)} | set(loaded)
        by_date = self._requests_by_date(now)
        judged = [(day, *self._state(day, loaded.get(day), by_date.get(day), now))
                  for day in sorted(dates, reverse=True)]  # fmt: skip
        counts = {state: 0 for state in STATES}
        for _day, state, _request, _reason in judged:
            counts[state] += 1
        chosen = [j for j in judged if not states or j[1] in states]
        shown = chosen[offset : offset + limit]
        runs = loaded_runs(self.database_url, [day for day, *_ in shown if day in loaded])
        # The task running now, from each running request's log: a read per running request
        # shown (a few), never one per date.
        now_running: dict[int, RequestState] = {}  # by the request's identity: one per batch
        for _day, state, request, _reason in shown:
            if state == "running" and request is not None and id(request) not in now_running:
                now_running[id(request)] = self.requests.with_task_now(request)
        return Page(
            start=min(dates), end=max(dates), total=len(chosen), offset=offset, limit=limit,
            counts=counts,
            dates=[RunDateState(day, state, runs.get(day), now_running.get(id(request), request),
                                reason)
                   for day, state, request, reason in shown],
        )  # fmt: skip

    def _requests_by_date(self, now: dt.datetime) -> dict[dt.date, list[RequestState]]:
        found: dict[dt.date, list[RequestState]] = {}
        for request in self.requests.all(now.timestamp()):
            for day in request.dates:
                found.setdefault(day, []).append(request)
        return found

    def _state(
        self,
        day: dt.date,
        loaded_at: dt.datetime | None,
        requests: list[RequestState] | None,
        now: dt.datetime,
    ) -> tuple[str, RequestState | None, str | None]:
        """(state, the request that makes it, the reason of a failure) of one date."""
        requests = requests or []
        for status, state in (("running", "running"), ("waiting", "requested")):
            found = [r for r in requests if r.status == status]
            if found:
                return state, found[0], None
        finished = [r for r in requests if r.status in ("done", "error")]
        last = finished[-1] if finished else None  # results come in the order they ended
        if last is not None and last.status == "error" and _after(last.finished, loaded_at):
            return "failed", last, last.error or "see the request's .error.yaml and .log"
        if loaded_at is not None:
            return "loaded", None, None
        if self._due(day, now):
            return "missing", None, None
        return "none", None, None

    def _due(self, day: dt.date, now: dt.datetime) -> bool:
        """Whether the daily schedule should have loaded ``day`` by ``now``: its run was due
        the next day at UFO_SCHEDULE_TIME in UFO_TIMEZONE."""
        if self.schedule_time is None:
            return False
        due = dt.datetime.combine(day + dt.timedelta(days=1), self.schedule_time, self.zone)
        return due <= now


def _after(finished: str | None, loaded_at: dt.datetime | None) -> bool:
    """Whether a result that finished at ``finished`` (ISO) came after the date's load."""
    if loaded_at is None:
        return True
    try:
        ended = dt.datetime.fromisoformat(finished or "")
    except ValueError:
        return False  # a result without a time: the load is what is known for sure
    if ended.tzinfo is None:
        ended = ended.replace(tzinfo=dt.UTC)
    return ended > loaded_at
