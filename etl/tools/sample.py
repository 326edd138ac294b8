"""A realistic generator of NUFORC report files, for offline demos and scale tests.

    python -m etl.tools.sample --rows 20000 [--out FILE] [--layout index|export] [--until 2019-03-29]
                         [--seed 7] [--encoding utf-8|cp1252]   # .gz output when FILE ends in .gz

The rows follow the real index's layout (``Date / Time,City,State,Shape,Duration,Summary,
Posted``, CRLF records, RFC-4180 quoting) and carry its quirks in about the real proportions:
header rows repeated inside the data, exact duplicates, sighting dates without a time, bare
times, day ``00``, 4-digit years and free text, foreign reports with an empty state, Canadian
provinces, lower-case states, quoted commas, quotes and newlines, HTML entities, and, with
``--encoding cp1252``, Windows-1252 smart quotes. ``--rows`` counts the data records written
(header repeats and duplicates included).

``--layout export`` writes today's NUFORC site export instead (``details,date,city,state,country,
shape,summary,report_date,posted_date,image``; see ``spark_jobs/layouts.py``) with its quirks:
four-digit years with and without zero padding, missing times, foreign regions and ``-`` as
states beside a country column, empty shapes, summaries cut near 135 characters and quoted when
they hold commas or quotes, report dates before the sighting, and proper UTF-8 text.

``--layout kaggle`` writes the Kaggle "UFO Sightings" file (``datetime,city,state,country,shape,
duration (seconds),duration (hours/min),comments,date posted,latitude,longitude``) with its
quirks: lower-case states and cities, an empty country beside many US states, other countries,
``24:00`` times, spreadsheet serial dates, two-digit years, HTML entities such as ``&#44`` in
the comments, and a few records with one field too many (a comma left unquoted).
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
from pathlib import Path

from spark_jobs import layouts

HEADER = list(layouts.INDEX.columns)

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


def _posted(rng: random.Random, until: dt.date, start: dt.date) -> dt.date:
    """A posted date from ``start`` to ``until``, evenly."""
    return start + dt.timedelta(days=rng.randrange((until - start).days + 1))


def _posted_and_sighted(
    rng: random.Random, until: dt.date, start: dt.date, *, days: float, recent: float, years: int
) -> tuple[dt.date, dt.date]:
    """A posted date and a sighting before it: a share ``recent`` of sightings about ``days``
    days earlier (exponentially), the rest anywhere in the ``years`` before."""
    posted = _posted(rng, until, start)
    back = int(rng.expovariate(1 / days)) if rng.random() < recent else rng.randrange(years * 365)
    return posted, posted - dt.timedelta(days=back)


def _report(rng: random.Random, until: dt.date, start: dt.date) -> list[str]:
    posted, sighted = _posted_and_sighted(rng, until, start, days=60, recent=0.95, years=30)
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


FOREIGN_REGIONS = [("Tasmania", "Australia"), ("Tamil Nadu", "India"), ("WA", "Australia"),
                   ("England", "United Kingdom"), ("Jalisco", "Mexico"), ("-", "Germany"),
                   ("", "Japan"), ("Bavaria", "Germany")]  # fmt: skip
EXPORT_SUMMARIES = [
    "Bright orange orb moved silently north, then faded – no sound at all.",
    "Saw a “triangle” of lights, hovered 5 min at about 30° above the horizon.",
    'My wife said "look up", and we both saw it, a silver disk, over the lake.',
    "Café owner and two customers watched a string of lights pass overhead, very fast, very high.",
    "Flash of green light near the mountains; a fireball, or something else?",
    "MADAR Node 137",
]


def _export_report(rng: random.Random, until: dt.date, start: dt.date, number: int) -> list[str]:
    posted = _posted(rng, until, start)
    sighted = posted - dt.timedelta(days=int(rng.expovariate(1 / 30)))
    reported = sighted + dt.timedelta(days=rng.randrange(0, 8))
    if reported > posted:
        reported = posted
    if rng.random() < 0.01:
        reported = sighted - dt.timedelta(days=rng.randrange(1, 30))  # a report before the sighting
    roll = rng.random()
    if roll < 0.85:
        state, _, cities = rng.choices(STATES, weights=[w for _, w, _ in STATES])[0]
        city, country = rng.choice(cities), "USA"
        if rng.random() < 0.3:
            state, city = rng.choice(OTHER_STATES), f"Town {rng.randrange(1, 400)}"
    elif roll < 0.92:
        state, city, country = rng.choice(PROVINCES), f"Town {rng.randrange(1, 80)}", "Canada"
    else:
        (state, country), city = rng.choice(FOREIGN_REGIONS), f"Place {rng.randrange(1, 50)}"
    padded = rng.random() < 0.3
    fmt = (
        (lambda d: f"{d.month:02d}/{d.day:02d}/{d.year}")
        if padded
        else (lambda d: f"{d.month}/{d.day}/{d.year}")
    )
    when = fmt(sighted)
    quirk = rng.random()
    if quirk < 0.9:
        when += (
            f" {rng.randrange(24):02d}:{rng.randrange(60):02d}"
            if padded
            else f" {rng.randrange(24)}:{rng.randrange(60):02d}"
        )
    elif quirk < 0.995:
        pass  # no time: still valid
    else:
        when = rng.choice(
            ["", "unknown", f"{sighted.month}/{sighted.day}/{sighted.year % 100:02d}"]
        )
    summary = rng.choice(EXPORT_SUMMARIES)
    shape = "" if summary.startswith("MADAR") or rng.random() < 0.05 else rng.choice(SHAPES[:-2])
    posted_text = fmt(posted) if rng.random() > 0.0005 else ""
    return [f"https://nuforc.org/sighting/?id={number}", when, city, state, country, shape,
            summary[:135], fmt(reported), posted_text, "Y" if rng.random() < 0.05 else ""]  # fmt: skip


KAGGLE_COMMENTS = [
    "Bright light moved across the sky&#44 stopped&#44 then shot straight up.",
    "My wife and I saw a triangle of lights over the lake&#44 no sound at all",
    "Orange orb hovering above the trees&#39 tops for about 5 minutes",
    "Three white lights in a row&#44 very high&#44 very fast",
    "Silver cigar shaped object&#44 reflected the sun&#33",
    "((NUFORC Note:  Witness elects to remain totally anonymous.  PD))",
]
KAGGLE_FOREIGN = [("", "gb", "london (uk/england)"), ("", "au", "sydney (australia)"),
                  ("wa", "au", "perth (western australia)"), ("", "", "mexico city (mexico)"),
                  ("", "de", "berlin (germany)")]  # fmt: skip
KAGGLE_DURATIONS = [("2700", "45 minutes"), ("20", "20 seconds"), ("300", "5 min"),
                    ("0.5", "1/2 second"), ("7200", "2 hours"), ("60", "1 minute")]  # fmt: skip


def _serial(day: dt.date) -> str:
    """``day`` as a spreadsheet's serial number (days since 1899-12-30)."""
    return str((day - dt.date(1899, 12, 30)).days)


def _kaggle_report(rng: random.Random, until: dt.date, start: dt.date) -> list[str]:
    posted, sighted = _posted_and_sighted(rng, until, start, days=90, recent=0.9, years=40)
    roll = rng.random()
    if roll < 0.86:
        state, _, cities = rng.choices(STATES, weights=[w for _, w, _ in STATES])[0]
        if rng.random() < 0.3:
            state, cities = rng.choice(OTHER_STATES), [f"town {rng.randrange(1, 400)}"]
        state, city = state.lower(), rng.choice(cities).lower()
        country = "" if rng.random() < 0.12 else "us"  # many US reports leave the country empty
    elif roll < 0.93:
        state, city, country = rng.choice(PROVINCES).lower(), f"town {rng.randrange(80)}", "ca"
    else:
        state, country, city = rng.choice(KAGGLE_FOREIGN)
    when = (
        f"{sighted.month}/{sighted.day}/{sighted.year} {rng.randrange(24)}:{rng.randrange(60):02d}"
    )
    quirk = rng.random()
    if quirk < 0.004:
        when = f"{sighted.month}/{sighted.day}/{sighted.year} 24:00"  # midnight, as 24:00: valid
    elif quirk < 0.006:
        when = _serial(sighted)  # a spreadsheet's serial date
    elif quirk < 0.007:
        when = f"{sighted.month}/{sighted.day}/{sighted.year % 100:02d} 21:00"  # a 2-digit year
    elif quirk < 0.0075:
        when = f"2/30/{sighted.year} 20:00"  # a day the month does not have
    elif quirk < 0.015:
        when = f"{sighted.month}/{sighted.day}/{sighted.year}"  # no time: valid
    seconds, text = rng.choice(KAGGLE_DURATIONS)
    posted_text = f"{posted.month}/{posted.day}/{posted.year}"
    if rng.random() < 0.0005:
        posted_text = rng.choice(["", _serial(posted)])
    latitude = (
        f"{rng.uniform(25, 49):.7f}" if country in ("us", "") else f"{rng.uniform(-40, 60):.6f}"
    )
    longitude = f"{rng.uniform(-124, -67):.7f}"
    return [when, city, state, country, rng.choice(SHAPES[:-1]).lower(), seconds, text,
            rng.choice(KAGGLE_COMMENTS), posted_text, latitude, longitude]  # fmt: skip


#: The Kaggle file's header as it is spelled there (a space after ``longitude``).
KAGGLE_HEADER = [*layouts.KAGGLE.columns[:-1], "longitude "]


def header_of(layout: str) -> list[str]:
    """The header a generated file of ``layout`` starts with."""
    return list(KAGGLE_HEADER if layout == "kaggle" else layouts.by_name(layout).columns)


def generate(
    rows: int, until: dt.date, seed: int = 7, start: dt.date | None = None, layout: str = "index"
) -> Iterator[list[str]]:
    """``rows`` data records (after the header) in ``layout``, with its real quirks."""
    rng = random.Random(seed)
    start = start or until - dt.timedelta(days=20 * 365)
    header = header_of(layout)
    recent: list[list[str]] = []
    for i in range(rows):
        if i and rng.random() < 0.0078:  # ~ the real share of repeated headers
            yield list(header)
        elif recent and rng.random() < 0.0003:
            yield list(rng.choice(recent))  # an exact duplicate
        else:
            if layout == "export":
                row = _export_report(rng, until, start, 100_000 + i)
            elif layout == "kaggle":
                row = _kaggle_report(rng, until, start)
            else:
                row = _report(rng, until, start)
            recent = (recent + [row])[-50:]
            if layout == "kaggle" and rng.random() < 0.001:
                # A comma the export left unquoted: the comments split into two fields.
                text = row[7]
                row = [*row[:7], text[: len(text) // 2], text[len(text) // 2 :], *row[8:]]
            yield row


def write(out: io.TextIOBase, rows: Iterator[list[str]], layout: str = "index") -> None:
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header_of(layout))
    writer.writerows(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate a realistic NUFORC report file.")
    parser.add_argument("--rows", type=int, required=True, help="data records to write")
    parser.add_argument("--out", help="output file ('-' for stdout; .gz compresses; default: "
                        ".run/sample/nuforc_sample_LAYOUT_UNTIL.csv)")  # fmt: skip
    parser.add_argument("--layout", choices=[la.name for la in layouts.LAYOUTS], default="index",
                        help="index: the NUFORC report index (default); export: today's site "
                        "export; kaggle: the Kaggle 'UFO Sightings' file")  # fmt: skip
    parser.add_argument("--until", type=dt.date.fromisoformat, default=None,
                        help="latest Posted date (default: yesterday)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=7,
                        help="random seed: the same seed writes the same file (default 7)")  # fmt: skip
    parser.add_argument("--encoding", choices=["utf-8", "cp1252"], default="utf-8",
                        help="cp1252 writes Windows-1252 like the 2021 index update (default utf-8)")  # fmt: skip
    args = parser.parse_args(argv)
    if args.rows < 1:
        parser.error("--rows must be at least 1")
    until = args.until or dt.date.today() - dt.timedelta(days=1)
    if args.out is None:
        args.out = f".run/sample/nuforc_sample_{args.layout}_{until}.csv"
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    rows = generate(args.rows, until, args.seed, layout=args.layout)
    errors = "replace" if args.encoding == "cp1252" else "strict"
    if args.out == "-":
        write(
            io.TextIOWrapper(sys.stdout.buffer, encoding=args.encoding, errors=errors, newline=""),
            rows,
            args.layout,
        )
        return 0
    opener = gzip.open if args.out.endswith(".gz") else open
    with opener(args.out, "wt", encoding=args.encoding, errors=errors, newline="") as out:
        write(out, rows, args.layout)
    print(f"wrote {args.rows} records to {args.out} ({args.layout} layout, {args.encoding})",
          file=sys.stderr)  # fmt: skip
    print(f"next: UFO_SOURCE={args.out} make demo", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
