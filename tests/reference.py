"""An independent, plain-Python reading of the data contract, for checking the pipeline.

Written from the README's data rules, not from the pipeline's code: the csv module instead of
Spark, ``datetime.date`` instead of Spark's date functions.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections import Counter
from dataclasses import dataclass, field

HEADER = ["date / time", "city", "state", "shape", "duration", "summary", "posted"]
EXPORT = ["details", "date", "city", "state", "country", "shape", "summary", "report_date",
          "posted_date", "image"]  # fmt: skip
WS = " \t\r\n\f\v"  # "surrounding spaces" in the contract: ASCII whitespace
STATES = set(
    "AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH "
    "NJ NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY".split()
)
POSTED = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{2})")
SIGHTED = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{2})(?: (\d{1,2}):(\d{2}))?")
POSTED4 = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")
SIGHTED4 = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})(?: (\d{1,2}):(\d{2}))?")


@dataclass
class Expected:
    counts: Counter = field(default_factory=Counter)  # outcome -> rows
    by_month_state: Counter = field(default_factory=Counter)  # (YYYY-MM, state) -> sightings
    rejects: list = field(default_factory=list)  # (row, reason)

    def quality(self) -> dict:
        reasons = {r: self.counts[r] for r in ("posted", "sighting_date", "state")}
        return {
            "input": sum(self.counts.values()),
            "header_repeat": self.counts["header_repeat"],
            "duplicate": self.counts["duplicate"],
            "after_run_date": self.counts["after_run_date"],
            "valid": self.counts["valid"],
            "rejected": sum(reasons.values()),
            "rejected_by_reason": reasons,
        }

    def totals(self, month: str | None = None) -> Counter:
        out = Counter()
        for (m, state), n in self.by_month_state.items():
            if month is None or m == month:
                out[state] += n
        return out

    def top_ten(self, month: str | None = None) -> list[tuple[str, int]]:
        return sorted(self.totals(month).items(), key=lambda kv: (-kv[1], kv[0]))[:10]

    def months(self) -> list[str]:
        return sorted({m for m, _ in self.by_month_state})


def _date(y: int, m: int, d: int) -> dt.date | None:
    try:
        return dt.date(y, m, d)
    except ValueError:
        return None


def decode(data: bytes) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = "".join(
            bytes([b]).decode("cp1252") if b not in (0x81, 0x8D, 0x8F, 0x90, 0x9D) else chr(b)
            for b in data
        )
    return text.removeprefix("\ufeff")


def classify(data: bytes, run_date: dt.date) -> Expected:
    rows = list(csv.reader(io.StringIO(decode(data), newline="")))
    header = [h.strip(WS).lower() for h in rows[0]]
    layout = HEADER if all(h in header for h in HEADER) else EXPORT
    index = [header.index(h) for h in layout]  # the first column of each name
    check = _check if layout is HEADER else _check_export
    expected = Expected()
    seen: set[tuple] = set()
    for raw in rows[1:]:
        if not raw:
            continue  # a blank line is no record
        row = tuple(raw[i] if i < len(raw) else "" for i in index)
        if [v.strip(WS).lower() for v in row] == layout:
            expected.counts["header_repeat"] += 1
            continue
        if row in seen:
            expected.counts["duplicate"] += 1
            continue
        seen.add(row)
        outcome, month, state = check(row, run_date)
        expected.counts[outcome] += 1
        if outcome == "valid":
            expected.by_month_state[(month, state)] += 1
        elif outcome != "after_run_date":
            expected.rejects.append((row, outcome))
    return expected


def _check(row: tuple, run_date: dt.date) -> tuple[str, str | None, str | None]:
    when, _city, state, _shape, _duration, _summary, posted = row
    p = POSTED.fullmatch(posted.strip(WS))
    posted_on = None
    if p:
        yy = int(p.group(3))
        posted_on = _date(1900 + yy if yy >= 70 else 2000 + yy, int(p.group(1)), int(p.group(2)))
    if posted_on is None:
        return "posted", None, None
    if posted_on > run_date:
        return "after_run_date", None, None
    s = SIGHTED.fullmatch(when.strip(WS))
    if not s:
        return "sighting_date", None, None
    yy = int(s.group(3))
    year = next(y for y in range(posted_on.year, posted_on.year - 101, -1) if y % 100 == yy)
    sighted_on = _date(year, int(s.group(1)), int(s.group(2)))
    if sighted_on is None:
        return "sighting_date", None, None
    if s.group(4) is not None and not (0 <= int(s.group(4)) <= 24 and 0 <= int(s.group(5)) <= 59):
        return "sighting_date", None, None
    code = state.strip(WS).upper()
    if code not in STATES:
        return "state", None, None
    return "valid", f"{sighted_on.year:04d}-{sighted_on.month:02d}", code


def _check_export(row: tuple, run_date: dt.date) -> tuple[str, str | None, str | None]:
    _details, when, _city, state, country, _shape, _summary, _report, posted, _image = row
    p = POSTED4.fullmatch(posted.strip(WS))
    posted_on = _date(int(p.group(3)), int(p.group(1)), int(p.group(2))) if p else None
    if posted_on is None:
        return "posted", None, None
    if posted_on > run_date:
        return "after_run_date", None, None
    s = SIGHTED4.fullmatch(when.strip(WS))
    sighted_on = _date(int(s.group(3)), int(s.group(1)), int(s.group(2))) if s else None
    if sighted_on is None:
        return "sighting_date", None, None
    if s.group(4) is not None and not (0 <= int(s.group(4)) <= 24 and 0 <= int(s.group(5)) <= 59):
        return "sighting_date", None, None
    code = state.strip(WS).upper()
    if country.strip(WS).lower() != "usa" or code not in STATES:
        return "state", None, None
    return "valid", f"{sighted_on.year:04d}-{sighted_on.month:02d}", code
