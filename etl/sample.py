"""A realistic generator of NUFORC report index files, for offline demos and scale tests.

    python -m etl.sample --rows 20000 --out sample.csv [--until 2019-03-29] [--seed 7]
                         [--encoding utf-8|cp1252]   # .gz output when FILE ends in .gz

The rows follow the real index's layout (``Date / Time,City,State,Shape,Duration,Summary,
Posted``, CRLF records, RFC-4180 quoting) and carry its quirks in about the real proportions:
header rows repeated inside the data, exact duplicates, sighting dates without a time, bare
times, day ``00``, 4-digit years and free text, foreign reports with an empty state, Canadian
provinces, lower-case states, quoted commas, quotes and newlines, HTML entities, and, with
``--encoding cp1252``, Windows-1252 smart quotes. ``--rows`` counts the data records written
(header repeats and duplicates included).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import gzip
import io
import random
import sys
from collections.abc import Iterator

HEADER = ["Date / Time", "City", "State", "Shape", "Duration", "Summary", "Posted"]

# (state, relative weight, a few cities): weights roughly follow the real index.
STATES = [
    ("CA", 130, ["Los Angeles", "San Diego", "Sacramento", "San Jose", "Fresno"]),
    ("FL", 65, ["Miami", "Orlando", "Tampa", "Jacksonville"]),
    ("WA", 58, ["Seattle", "Spokane", "Tacoma", "Ardenvoir"]),
    ("TX", 50, ["Houston", "Austin", "Dallas", "San Antonio"]),
    ("NY", 47, ["New York", "Buffalo", "Rochester", "Albany"]),
    ("AZ", 40, ["Phoenix", "Tucson", "Sedona", "Mesa"]),
    ("PA", 39, ["Philadelphia", "Pittsburgh", "Erie"]),
    ("IL", 36, ["Chicago", "Springfield", "Peoria"]),
    ("OH", 35, ["Columbus", "Cleveland", "Cincinnati"]),
    ("MI", 30, ["Detroit", "Grand Rapids", "Lansing"]),
    ("NC", 29, ["Charlotte", "Raleigh", "Asheville"]),
    ("OR", 28, ["Portland", "Eugene", "Salem"]),
    ("CO", 22, ["Denver", "Boulder", "Colorado Springs"]),
    ("NJ", 19, ["Newark", "Trenton"]),
    ("MA", 17, ["Boston", "Turners Falls", "Worcester"]),
]
OTHER_STATES = (
    "AL AK AR CT DE DC GA HI ID IN IA KS KY LA ME MD MN MS MO MT NE NV NH NM ND OK RI SC SD TN "
    "UT VT VA WV WI WY".split()
)
PROVINCES = ["ON", "BC", "AB", "QC", "NS", "MB", "SK"]
FOREIGN = ["London (UK/England)", "Sydney (Australia)", "Mumbai (India)", "Cancun (Mexico)"]
SHAPES = ["Light", "Circle", "Triangle", "Fireball", "Unknown", "Sphere", "Disk", "Other",
          "Oval", "Formation", "Cigar", "Changing", "Flash", "Rectangle", "light", ""]  # fmt: skip
DURATIONS = ["5 minutes", "2.5 hrs", "~30 seconds", "1 minute", "10 min", "Mere Seconds", "3",
             "", "15-20 minutes", "didnt stop"]  # fmt: skip
SUMMARIES = [
    "Very bright light, then a loud noise, like a cannon, several times.",
    "Seven blueish discs flying in V formation, no sound.",
    "at approx. 22:18 PST I and 4 others witnessed a bright white light",
    'Orange orbs moving slowly, "hovering" then gone.',
    "Triangle with three white lights &quot;silent&quot; over the highway",
    "((NUFORC Note:  Witness elects to remain totally anonymous.  PD))",
    "MADAR Node 102",
    "Red light pulsing, stopped, and then shot straight up\nat great speed.",
    "Strange craft \u2013 \u201cit made no sound\u201d \u2026 then vanished",
]


def _yy(year: int) -> str:
    return f"{year % 100:02d}"


def _mdy(day: dt.date, year_digits: int = 2) -> str:
    year = _yy(day.year) if year_digits == 2 else str(day.year)
    return f"{day.month}/{day.day}/{year}"


def _report(rng: random.Random, until: dt.date, start: dt.date) -> list[str]:
    span = (until - start).days
    posted = start + dt.timedelta(days=rng.randrange(span + 1))
    sighted = posted - dt.timedelta(
        days=int(rng.expovariate(1 / 60)) if rng.random() < 0.95 else rng.randrange(30 * 365)
    )
    roll = rng.random()
    if roll < 0.86:
        state, _, cities = rng.choices(STATES, weights=[w for _, w, _ in STATES])[0]
        city = rng.choice(cities)
    elif roll < 0.93:
        state, city = rng.choice(OTHER_STATES), f"Town {rng.randrange(1, 400)}"
    elif roll < 0.97:
        state, city = rng.choice(PROVINCES), f"Town {rng.randrange(1, 80)} (Canada)"
    else:
        state, city = "", rng.choice(FOREIGN)
    if rng.random() < 0.001:
        state = state.lower()
    when = f"{_mdy(sighted)} {rng.randrange(24)}:{rng.randrange(60):02d}"
    quirk = rng.random()
    if quirk < 0.012:
        when = _mdy(sighted)  # a date without a time: still valid
    elif quirk < 0.013:
        when = f"{rng.randrange(24)}:{rng.randrange(60):02d}"  # a bare time
    elif quirk < 0.0135:
        when = ""
    elif quirk < 0.0137:
        when = f"{sighted.month:02d}/00/{_yy(sighted.year)} 23:00"  # day 00
    elif quirk < 0.0139:
        when = f"{_mdy(sighted, 4)} 21:00"  # a 4-digit year
    elif quirk < 0.0141:
        when = rng.choice(["unknown", "september 1993 22:15", "09/0?/96 22:30"])
    posted_text = _mdy(posted) if rng.random() > 0.0005 else ""
    summary = rng.choice(SUMMARIES)
    return [when, city, state, rng.choice(SHAPES), rng.choice(DURATIONS), summary, posted_text]


def generate(
    rows: int, until: dt.date, seed: int = 7, start: dt.date | None = None
) -> Iterator[list[str]]:
    """``rows`` data records (after the header) with the real index's quirks."""
    rng = random.Random(seed)
    start = start or until - dt.timedelta(days=20 * 365)
    recent: list[list[str]] = []
    for i in range(rows):
        if i and rng.random() < 0.0078:  # ~ the real share of repeated headers
            yield list(HEADER)
        elif recent and rng.random() < 0.0003:
            yield list(rng.choice(recent))  # an exact duplicate
        else:
            row = _report(rng, until, start)
            recent = (recent + [row])[-50:]
            yield row


def write(out: io.TextIOBase, rows: Iterator[list[str]]) -> None:
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(HEADER)
    writer.writerows(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate a NUFORC-layout report index.")
    parser.add_argument("--rows", type=int, required=True, help="data records to write")
    parser.add_argument("--out", required=True, help="output file ('-' for stdout; .gz compresses)")
    parser.add_argument("--until", type=dt.date.fromisoformat, default=dt.date.today() - dt.timedelta(days=1),
                        help="latest Posted date (default: yesterday)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--encoding", choices=["utf-8", "cp1252"], default="utf-8")
    args = parser.parse_args(argv)
    if args.rows < 1:
        parser.error("--rows must be at least 1")
    rows = generate(args.rows, args.until, args.seed)
    errors = "replace" if args.encoding == "cp1252" else "strict"
    if args.out == "-":
        write(
            io.TextIOWrapper(sys.stdout.buffer, encoding=args.encoding, errors=errors, newline=""),
            rows,
        )
        return 0
    opener = gzip.open if args.out.endswith(".gz") else open
    with opener(args.out, "wt", encoding=args.encoding, errors=errors, newline="") as out:
        write(out, rows)
    print(f"wrote {args.rows} records to {args.out} ({args.encoding})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
