"""Claims on run requests, with a lease: one worker runs a request, a dead worker's is taken over.

A request is claimed by an exclusive create of ``requests/.claims/NAME`` (a local O_EXCL
create, or an S3 PUT with ``If-None-Match: *``). A claim records its worker's id, a heartbeat
time and the lease; the worker rewrites it every lease/3 while it handles the request. A worker
that finds a claim whose heartbeat is older than its lease (a claim without a heartbeat is aged
by its file time) presumes that worker dead and takes the request over: of several racing
workers the one that creates ``.claims/NAME.takeover-*`` exclusively replaces the claim. A
worker that finds its claim taken stops its run and leaves the request to the new owner.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import threading
import time
from dataclasses import dataclass

import yaml

from etl.adapters.lake import Lake
from etl.worker.requests import REQUESTS, RESULT_SUFFIXES
from etl.worker.runs import seconds_text

logger = logging.getLogger("ufo.worker")

CLAIMS = f"{REQUESTS}/.claims"
DEFAULT_LEASE = 120.0


@dataclass(frozen=True)
class Claim:
    """What a claim file says: the worker holding the request, its last heartbeat and lease."""

    worker: str
    heartbeat: float | None  # seconds since the epoch; None when the claim gives none
    lease: float | None
    since: float | None = None  # when the worker claimed it (the run's start); None: not said

    @staticmethod
    def render(worker: str, lease: float, since: float | None = None) -> str:
        now = time.time()
        since = now if since is None else since
        return yaml.safe_dump(
            {
                "worker": worker,
                "heartbeat": round(now, 3),
                "heartbeat_utc": dt.datetime.fromtimestamp(now, dt.UTC).isoformat("T", "seconds"),
                "lease": lease,
                "since": round(since, 3),
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
            # Not a claim of this format: its text is taken as the worker's id, and it has no
            # heartbeat, so it is aged by its file's time.
            return Claim(worker=text.strip()[:200], heartbeat=None, lease=None)

        def number(value) -> float | None:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            return float(value) if ok else None

        return Claim(
            str(doc["worker"]), number(doc.get("heartbeat")), number(doc.get("lease")),
            number(doc.get("since")),
        )  # fmt: skip


class Heartbeat:
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

    def __enter__(self) -> Heartbeat:
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
                text = self.lake.read_optional(self.rel)
                claim = Claim.parse(text) if text is not None else None
                holder = claim.worker if claim is not None else "nobody"
                if holder != self.worker_id:
                    self.holder = holder
                    self.lost.set()
                    return
                since = claim.since if claim is not None else None  # kept: when it started
                self.lake.write_text(self.rel, Claim.render(self.worker_id, self.lease, since))
            except Exception as err:
                # A lake hiccup: the lease outlasts a missed beat or two, and the next beat
                # retries. If beats keep failing, another worker takes over and the next
                # successful look sees it.
                logger.warning("heartbeat of %s failed: %s", self.rel, err)


class Claims:
    """The claims of one worker on the requests of one lake."""

    def __init__(self, lake: Lake, worker_id: str, lease: float = DEFAULT_LEASE):
        self.lake = lake
        self.worker_id = worker_id
        self.lease = lease

    def heartbeat(self, name: str) -> Heartbeat:
        """Keeps this worker's claim on ``name`` fresh while the block runs."""
        return Heartbeat(self.lake, f"{CLAIMS}/{name}", self.worker_id, self.lease)

    def _modified_at(self, rel: str) -> float | None:
        try:
            return self.lake.modified_at(rel)
        except FileNotFoundError:
            return None

    def _text(self) -> str:
        return Claim.render(self.worker_id, self.lease)

    def claim(self, name: str) -> tuple[bool, str | None]:
        """Try to claim a request: (whether this worker holds it now, the dead worker it was
        taken from, if it was)."""
        rel = f"{CLAIMS}/{name}"
        if self.lake.create_exclusive(rel, self._text()):
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
            name, claim.worker, age, seconds_text(claim.lease or self.lease),
        )  # fmt: skip
        return True, claim.worker

    def _stale(self, rel: str) -> tuple[str, Claim, float] | None:
        """(text, claim, age in s) of a claim whose heartbeat is older than its lease, else None."""
        text = self.lake.read_optional(rel)
        if text is None:
            return None
        claim = Claim.parse(text)
        beat = claim.heartbeat if claim.heartbeat is not None else self._modified_at(rel)
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
        if not self.lake.create_exclusive(marker, self._text()):
            # Another worker is taking it over, or died doing so: then its marker goes stale.
            if self._stale(marker) is not None:
                self.lake.remove(marker)
            return False
        try:
            if self.lake.read_optional(rel) != stale_text:
                return False  # already taken over (or finished) by another worker
            self.lake.remove(rel)
            return self.lake.create_exclusive(rel, self._text())
        finally:
            self.lake.remove(marker)

    def release(self, name: str) -> None:
        self.lake.remove(f"{CLAIMS}/{name}")

    def finished_by(self, name: str, worker: str) -> bool:
        """Whether ``worker`` wrote this request's result (then died before removing it).

        A request file newer than the result is a new request of the same name (its worker
        died after removing the old request, before removing its claim).
        """
        stem = name.rsplit(".", 1)[0]
        for suffix in RESULT_SUFFIXES:
            result = f"{REQUESTS}/{stem}{suffix}"
            text = self.lake.read_optional(result)
            try:
                doc = yaml.safe_load(text) if text is not None else None
            except yaml.YAMLError:
                continue  # not a result this worker wrote
            if not isinstance(doc, dict) or doc.get("worker") != worker:
                continue
            written = self._modified_at(result)
            requested = self._modified_at(f"{REQUESTS}/{name}")
            return written is None or requested is None or requested <= written
        return False
