"""An independent, plain-Python reading of the data contract, for checking the pipeline.

Written from the documented data rules (docs/reference/data-contract.md), not from the
pipeline's code: the csv module instead of Spark, ``datetime.date`` instead of Spark's date
functions, and the layouts written out here instead of read from ``spark_jobs/layouts.toml``.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import re
from collections import Counter
from dataclasses import dataclass, field

WS = " \t\r\n\f\v"  # "surrounding spaces" in the contract: ASCII whitespace
STATES = set(
    "AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH "
    "NJ NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY".split()
)
REASONS = ("columns", "posted", "sighting_date", "state")


@dataclass(frozen=True)
class Spec:
    """A layout as the data contract states it: column names (lower case), date columns and formats."""

    columns: tuple[str, ...]
    posted: str
    posted_format: str  # "M/D/YY", "M/D/YYYY" or "YYYY-MM-DD"
    sighting: str
    sighting_format: str
    state: str
    country: str | None = None
    countries: tuple[str, ...] = ()
    posted_time: bool = False


INDEX = Spec(("date / time", "city", "state", "shape", "duration", "summary", "posted"),
             "posted", "M/D/YY", "date / time", "M/D/YY", "state")  # fmt: skip
EXPORT = Spec(("details", "date", "city", "state", "country", "shape", "summary", "report_date",
               "posted_date", "image"),
              "posted_date", "M/D/YYYY", "date", "M/D/YYYY", "state", "country", ("usa",))  # fmt: skip
KAGGLE = Spec(("datetime", "city", "state", "country", "shape", "duration (seconds)",
               "duration (hours/min)", "comments", "date posted", "latitude", "longitude"),
              "date posted", "M/D/YYYY", "datetime", "M/D/YYYY", "state", "country",
              ("us", ""))  # fmt: skip
BUILT_IN = (INDEX, EXPORT, KAGGLE)

_DATE = {
    "M/D/YY": r"(?P<m>\d{1,2})/(?P<d>\d{1,2})/(?P<y>\d{2})",
    "M/D/YYYY": r"(?P<m>\d{1,2})/(?P<d>\d{1,2})/(?P<y>\d{4})",
    "YYYY-MM-DD": r"(?P<y>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})",
}
_TIME = {
    "M/D/YY": r" (?P<H>\d{1,2}):(?P<M>\d{2})",
    "M/D/YYYY": r" (?P<H>\d{1,2}):(?P<M>\d{2})",
    "YYYY-MM-DD": r"[T ](?P<H>\d{2}):(?P<M>\d{2})(?::(?P<S>\d{2}))?",
}


@dataclass
class Expected:
    counts: Counter = field(default_factory=Counter)  # outcome -> rows
    by_month_state: Counter = field(default_factory=Counter)  # (YYYY-MM, state) -> sightings
    rejects: list = field(default_factory=list)  # (row, reason); a ragged row: the whole record
    layout: Spec | None = None

    def quality(self) -> dict:
        reasons = {r: self.counts[r] for r in REASONS}
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
    for bom, codec in ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
                       (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):  # fmt: skip
        if data.startswith(bom):
            return data.decode(codec)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = "".join(
            bytes([b]).decode("cp1252") if b not in (0x81, 0x8D, 0x8F, 0x90, 0x9D) else chr(b)
            for b in data
        )
    return text.removeprefix("\ufeff")


def _layout_of(header: list[str], declared: tuple[Spec, ...]) -> Spec:
    fitting = [s for s in (*declared, *BUILT_IN) if all(c in header for c in s.columns)]
    best = max(len(s.columns) for s in fitting)
    return next(s for s in fitting if len(s.columns) == best)


def classify(data: bytes, run_date: dt.date, declared: tuple[Spec, ...] = ()) -> Expected:
    rows = list(csv.reader(io.StringIO(decode(data), newline="")))
    header = [h.strip(WS).lower() for h in rows[0]]
    layout = _layout_of(header, declared)
    index = [header.index(h) for h in layout.columns]  # the first column of each name
    expected = Expected(layout=layout)
    seen: set[tuple] = set()
    for raw in rows[1:]:
        if not raw:
            continue  # a blank line is no record
        row = tuple(raw[i] if i < len(raw) else "" for i in index)
        if [v.strip(WS).lower() for v in row] == list(layout.columns):
            expected.counts["header_repeat"] += 1
            continue
        ragged = len(raw) != len(header)
        key = (row, tuple(raw) if ragged else None)
        if key in seen:
            expected.counts["duplicate"] += 1
            continue
        seen.add(key)
        if ragged:
            expected.counts["columns"] += 1
            expected.rejects.append((tuple(raw), "columns"))
            continue
        outcome, month, state = check(layout, dict(zip(layout.columns, row)), run_date)
        expected.counts[outcome] += 1
        if outcome == "valid":
            expected.by_month_state[(month, state)] += 1
        elif outcome != "after_run_date":
            expected.rejects.append((row, outcome))
    return expected


def _read(text: str, fmt: str, with_time: bool) -> re.Match | None:
    pattern = _DATE[fmt] + (f"(?:{_TIME[fmt]})?" if with_time else "")
    return re.fullmatch(pattern, text.strip(WS))


def _time_ok(found: re.Match) -> bool:
    parts = found.groupdict()
    if parts.get("H") is None:
        return True
    second = parts.get("S")
    return int(parts["H"]) <= 24 and int(parts["M"]) <= 59 and (second is None or int(second) <= 59)


def check(spec: Spec, row: dict, run_date: dt.date) -> tuple[str, str | None, str | None]:
    p = _read(row[spec.posted], spec.posted_format, spec.posted_time)
    posted_on = None
    if p and _time_ok(p):
        year = int(p.group("y"))
        if spec.posted_format == "M/D/YY":
            year = 1900 + year if year >= 70 else 2000 + year
        posted_on = _date(year, int(p.group("m")), int(p.group("d")))
    if posted_on is None:
        return "posted", None, None
    if posted_on > run_date:
        return "after_run_date", None, None
    s = _read(row[spec.sighting], spec.sighting_format, True)
    if not s or not _time_ok(s):
        return "sighting_date", None, None
    year = int(s.group("y"))
    if spec.sighting_format == "M/D/YY":
        year = next(y for y in range(posted_on.year, posted_on.year - 101, -1) if y % 100 == year)
    sighted_on = _date(year, int(s.group("m")), int(s.group("d")))
    if sighted_on is None:
        return "sighting_date", None, None
    code = row[spec.state].strip(WS).upper()
    if code not in STATES:
        return "state", None, None
    if spec.country is not None and row[spec.country].strip(WS).lower() not in spec.countries:
        return "state", None, None
    return "valid", f"{sighted_on.year:04d}-{sighted_on.month:02d}", code
