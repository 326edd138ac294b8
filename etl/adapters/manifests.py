"""Atomic per-date commits of multi-file outputs on any lake: attempts and manifests.

An attempt writes its files under ``_attempts/<attempt>/`` where no reader looks; then one small
JSON file, ``<dataset>/date=D/_MANIFEST.json``, is written in one step (a rename locally, one
PUT on S3) and names every file of the date's outputs. A reader follows the manifest, so it
sees the previous attempt's files or the new ones, never a mix; an interrupted attempt
publishes nothing. Attempts no manifest names any more are removed afterwards: at once when a
new manifest replaces theirs (``retire``), or once they are older than any run still writing
(``sweep``).
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from collections.abc import Iterable

import luigi

from etl.adapters.lake import Lake
from etl.errors import StorageError

MANIFEST = "_MANIFEST.json"
ATTEMPTS = "_attempts"
ATTEMPT_INFO = "_ATTEMPT.json"
MANIFEST_FORMAT = 1


def partition(dataset: str, date: dt.date) -> str:
    """The relative path of one run date's partition of a dataset."""
    return f"{dataset}/date={date.isoformat()}"


def manifest_rel(dataset: str, date: dt.date) -> str:
    """Where the manifest of one run date's outputs of ``dataset`` is."""
    return f"{partition(dataset, date)}/{MANIFEST}"


def _attempt_started(attempt: str) -> dt.datetime | None:
    try:
        return dt.datetime.strptime(attempt.split("-", 1)[0], "%Y%m%dT%H%M%SZ").replace(
            tzinfo=dt.UTC
        )
    except ValueError:
        return None


#: Sizes of attempt files already looked up (a backfill's dates share their files): an attempt's
#: files are immutable, so a size once seen stays true.
_SIZES: dict[tuple[str, str], int | None] = {}


class Manifests:
    """The commit protocol over one lake."""

    def __init__(self, lake: Lake):
        self.lake = lake

    def new_attempt(self, dataset: str, dates: Iterable[dt.date]) -> str:
        """A fresh attempt directory (relative path) for writing ``dataset`` of ``dates``."""
        now = dt.datetime.now(dt.UTC)
        attempt = f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"
        rel = f"{ATTEMPTS}/{attempt}"
        info = {
            "dataset": dataset,
            "dates": sorted(d.isoformat() for d in dates),
            "started_at": now.isoformat(timespec="seconds"),
        }
        self.lake.write_text(f"{rel}/{ATTEMPT_INFO}", json.dumps(info, indent=2))
        return rel

    def read(self, dataset: str, date: dt.date) -> dict | None:
        """The published manifest of ``dataset`` for ``date``, or None."""
        text = self.lake.read_optional(manifest_rel(dataset, date))
        return None if text is None else json.loads(text)

    def publish(
        self, dataset: str, date: dt.date, attempt_rel: str, files: dict[str, list[str]], **extra
    ) -> str | None:
        """Make ``files`` (lake-relative, under ``attempt_rel``) the outputs of ``date`` at once.

        Returns the attempt the previous manifest named, if another one: it may now be unused.
        """
        previous = self.read(dataset, date)
        named = [path for paths in files.values() for path in paths]
        document = {
            "format": MANIFEST_FORMAT,
            "dataset": dataset,
            "run_date": date.isoformat(),
            "attempt": attempt_rel.rsplit("/", 1)[-1],
            "committed_at": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
            "files": {kind: list(paths) for kind, paths in files.items()},
            # Each file's size, for ``check``: attempt files never change once written.
            "sizes": {path: self._size(path) for path in named},
            **extra,
        }
        self.lake.write_text(manifest_rel(dataset, date), json.dumps(document, indent=2))
        if previous and previous.get("attempt") != document["attempt"]:
            return previous.get("attempt")
        return None

    def _size(self, rel: str) -> int | None:
        key = (self.lake.root, rel)
        if key not in _SIZES:
            if len(_SIZES) >= 10_000:
                _SIZES.clear()
            _SIZES[key] = self.lake.size(rel)
        return _SIZES[key]

    def retire(self, attempts: Iterable[str | None]) -> list[str]:
        """Remove the given attempts that no published manifest names any more; those removed."""
        removed = []
        for attempt in sorted({a for a in attempts if a}):
            if not self._referenced(attempt):
                self.lake.remove(f"{ATTEMPTS}/{attempt}")
                removed.append(attempt)
        return removed

    def sweep(self, older_than: dt.timedelta) -> list[str]:
        """Remove attempts started longer than ``older_than`` ago that no manifest names."""
        cutoff = dt.datetime.now(dt.UTC) - older_than
        stale = []
        for attempt in self.lake.subdirs(ATTEMPTS):
            started = _attempt_started(attempt)
            if started is not None and started < cutoff:
                stale.append(attempt)
        return self.retire(stale)

    def all_published(self, dataset: str) -> list[tuple[dt.date, dict]]:
        """Every published manifest of ``dataset``, by run date."""
        found = []
        for name in self.lake.subdirs(dataset):
            try:
                day = dt.date.fromisoformat(name.removeprefix("date="))
            except ValueError:
                continue
            manifest = self.read(dataset, day)
            if manifest is not None:
                found.append((day, manifest))
        return sorted(found, key=lambda pair: pair[0])

    def first_missing(self, manifest: dict) -> tuple[str, str] | None:
        """The first file ``manifest`` names that is missing or not of its recorded size: its
        path and what is wrong; None when all are there."""
        sizes = manifest.get("sizes", {})  # none in manifests published before sizes were kept
        for paths in manifest["files"].values():
            for path in paths:
                size = self.lake.size(path)
                if size is None:
                    return path, "missing"
                if sizes.get(path) is not None and size != sizes[path]:
                    return path, f"{size} bytes, the manifest recorded {sizes[path]}"
        return None

    def _referenced(self, attempt: str) -> bool:
        text = self.lake.read_optional(f"{ATTEMPTS}/{attempt}/{ATTEMPT_INFO}")
        if text is None:
            return False
        info = json.loads(text)
        for day in info.get("dates", []):
            found = self.read(info["dataset"], dt.date.fromisoformat(day))
            if found and found.get("attempt") == attempt:
                return True
        return False


class ManifestTarget(luigi.Target):
    """One run date's published outputs of a dataset: exists once its manifest is written."""

    def __init__(self, lake: Lake, dataset: str, date: dt.date):
        self.lake = lake
        self.dataset = dataset
        self.date = date
        self.rel = manifest_rel(dataset, date)

    @property
    def path(self) -> str:
        return self.lake.uri(self.rel)

    def exists(self) -> bool:
        return self.lake.exists(self.rel)

    def modified_at(self) -> float:
        return self.lake.modified_at(self.rel)

    def manifest(self) -> dict:
        """The manifest's document; StorageError saying what to run when it is missing."""
        found = Manifests(self.lake).read(self.dataset, self.date)
        if found is None:
            raise StorageError(
                f"{self.path} is missing: run the task that publishes {self.dataset} for "
                f"{self.date} first."
            )
        return found

    def files(self, kind: str, manifest: dict | None = None) -> list[str]:
        """Lake-relative paths of the ``kind`` files of this date's outputs (from ``manifest``,
        its document when the caller has read it already)."""
        found = self.manifest() if manifest is None else manifest
        return list(found["files"].get(kind, []))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path})"
