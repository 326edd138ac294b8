"""The Spark job's reject files: parsed, and sampled for the database.

A run date's rejects are CSVs that its aggregate's manifest lists (``rejects``), each with the
source's own column names, ``_record`` (a ``columns`` reject's whole record as it came; absent
from files written before that rule) and then ``reason``. The database keeps the first rows of each reason
(``reject_sample``); the lake keeps them all.
"""

from __future__ import annotations

import csv
import io
import json
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from etl.adapters.lake import Lake
from etl.errors import DataError
from spark_jobs.layouts import RECORD


@dataclass(frozen=True)
class RejectFile:
    """One reject CSV of the Spark job: the source's column names, and each row's reason and fields."""

    names: tuple[str, ...]
    rows: tuple[tuple[str, tuple[str, ...]], ...]
    # Row index -> its fields as a JSON object. A backfill's dates share their first reject
    # files, and with them most of their sample rows: each row is encoded once.
    _json: dict[int, str] = field(default_factory=dict, compare=False, repr=False)

    def fields_json(self, index: int) -> str:
        """Row ``index``'s fields as a JSON object under the file's names, in their order."""
        found = self._json.get(index)
        if found is None:
            fields = dict(zip(self.names, self.rows[index][1]))
            if not fields.get(RECORD, True):
                del fields[RECORD]  # only a ``columns`` reject has its whole record
            found = self._json[index] = json.dumps(fields, ensure_ascii=False)
        return found


def read_rejects(text: str, where: str = "a reject file") -> RejectFile:
    """Parse one reject CSV (its header: the source's names, then ``reason``)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if not header:
        return RejectFile((), ())  # a file without even a header holds no rows
    names = tuple(header[:-1])
    rows = []
    for number, row in enumerate(reader, start=1):
        *values, reason = row
        if len(values) != len(names):
            raise DataError(
                f"{where}: rejected row {number} has {len(values)} fields under a header of "
                f"{len(names)}: the aggregate's reject files are damaged; run "
                "AggregateUFOsByState again with --force."
            )
        rows.append((reason, tuple(values)))
    return RejectFile(names, tuple(rows))


def reject_sample(
    files: Iterable[RejectFile], limit: int, rejected_by_reason: dict[str, int]
) -> list[tuple[str, int, str]]:
    """The first ``limit`` rejected rows of each reason in ``files`` (a date's reject CSVs, in
    the manifest's order): ``(reason, row_number, fields)``.

    ``row_number`` is the row's 1-based position among all the date's rejects as the files list
    them; ``fields`` is a JSON object of the row under its file's header names, in their order.
    Reading stops once every reason has its rows; the rows found must agree with the quality
    report's ``rejected_by_reason``.
    """
    wanted = {reason: min(limit, n) for reason, n in rejected_by_reason.items() if n}
    kept: list[tuple[str, int, str]] = []
    per_reason: Counter[str] = Counter()
    position = 0
    for file in files if limit else ():
        for index, (reason, _) in enumerate(file.rows):
            position += 1
            if per_reason[reason] < limit:
                per_reason[reason] += 1
                kept.append((reason, position, file.fields_json(index)))
                if per_reason == wanted:
                    return kept
    if limit and per_reason != wanted:
        raise DataError(
            f"the reject files hold {dict(per_reason)} rows to store per reason, the quality "
            f"report's counts call for {wanted}: run AggregateUFOsByState again with --force."
        )
    return kept


class RejectReader:
    """Reads a lake's reject files, each parsed once: a backfill's dates share most of them
    (``rejects/since=S/``), and its dates are loaded on several threads."""

    def __init__(self, lake: Lake):
        self.lake = lake
        self._parsed: dict[str, RejectFile] = {}
        self._lock = threading.Lock()

    def read(self, rel: str) -> RejectFile:
        with self._lock:
            found = self._parsed.get(rel)
        if found is None:
            found = read_rejects(self.lake.read_text(rel), rel)
            with self._lock:
                found = self._parsed.setdefault(rel, found)
        return found

    def sample(
        self, rels: Iterable[str], limit: int, rejected_by_reason: dict[str, int]
    ) -> list[tuple[str, int, str]]:
        """``reject_sample`` of the reject files ``rels``, read only as far as needed."""
        return reject_sample((self.read(rel) for rel in rels), limit, rejected_by_reason)
