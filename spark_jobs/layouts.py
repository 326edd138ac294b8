"""The report layouts the pipeline reads, each declared in TOML and mapped onto the data contract.

A layout names its columns (in the order the README documents them) and says which column holds
the posted date, the sighting time and the state, the format of each date column, and the country
values a country column may hold. The built-in layouts are declared in ``layouts.toml`` beside
this file; a user declares more in a file of the same form (``UFO_LAYOUTS``), checked by the
same code (``read_declarations``). ``ReadUFOs`` recognises a source's layout from its header with
``match``; the Spark job turns a ``Layout`` into column expressions and receives declared layouts
with its arguments (``to_json``/``from_json``); the sample generator writes the built-ins.

Pure Python (no PySpark): the Spark job imports it on the driver beside itself, and the ``etl``
package imports it as ``spark_jobs.layouts``.
"""

from __future__ import annotations

import json
import os
import re
import stat
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

#: "Surrounding spaces" in the data contract: ASCII whitespace, the same in Python and Spark.
WHITESPACE = " \t\r\n\f\v"

#: The 50 US states and DC.
US_STATES = frozenset(
    "AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH "
    "NJ NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY".split()
)

#: The raw zone's column holding a record whose field count differs from its header's, as it
#: came (CSV text); empty for every other record (the reader's, ``records.py``). Also a column
#: of the reject files.
if __package__:  # spark_jobs.layouts, in the pipeline
    from spark_jobs.records import RECORD
else:  # layouts, beside a Spark job
    from records import RECORD
#: Column names a layout may not use: the raw zone's and the reject files' own.
RESERVED = frozenset({RECORD, "reason", "since"})


def normalise(name: str) -> str:
    """A header name as layouts compare it: trimmed, lower case."""
    return name.strip(WHITESPACE).lower()


@dataclass(frozen=True)
class DateFormat:
    """A date format of a date column: its text, and how its parts are read."""

    name: str
    date: str  # regular expression of the date
    time: str  # regular expression of the time that may follow it
    separators: str  # regular expression splitting date and time into their parts
    parts: tuple[str, ...]  # what each part is, in order
    year_digits: int


FORMATS = {
    f.name: f
    for f in (
        DateFormat("M/D/YY", r"\d{1,2}/\d{1,2}/\d{2}", r" \d{1,2}:\d{2}", "[/ :]",
                   ("month", "day", "year", "hour", "minute"), 2),
        DateFormat("M/D/YYYY", r"\d{1,2}/\d{1,2}/\d{4}", r" \d{1,2}:\d{2}", "[/ :]",
                   ("month", "day", "year", "hour", "minute"), 4),
        DateFormat("YYYY-MM-DD", r"\d{4}-\d{2}-\d{2}", r"[T ]\d{2}:\d{2}(:\d{2})?", "[-T :]",
                   ("year", "month", "day", "hour", "minute", "second"), 4),
    )
}  # fmt: skip


@dataclass(frozen=True)
class DateColumn:
    """A column holding a date in ``format``, with an optional time after it when ``time``."""

    column: str
    format: DateFormat
    time: bool

    def pattern(self) -> str:
        """The regular expression of a whole value (trimmed)."""
        time = f"({self.format.time})?" if self.time else ""
        return f"^{self.format.date}{time}$"


@dataclass(frozen=True)
class Layout:
    """One source layout and how its fields map onto the data contract."""

    name: str  # recorded in the lake and the database: ``ufo_runs.layout``
    title: str  # for people
    columns: tuple[str, ...]  # header names, in documented order
    posted: DateColumn
    sighting: DateColumn
    state: str  # the column with the state code
    country: str | None  # a country column whose value must be one of ``countries``
    countries: tuple[str, ...]  # normalised (trimmed, lower case)

    @property
    def keys(self) -> tuple[str, ...]:
        """The normalised column names."""
        return tuple(normalise(c) for c in self.columns)

    def declaration(self) -> dict:
        """The layout as its TOML table (also its JSON form for the Spark job)."""
        state: dict = {"column": self.state}
        if self.country is not None:
            state.update(country=self.country, countries=list(self.countries))
        return {
            "title": self.title,
            "columns": list(self.columns),
            "posted": _date_declaration(self.posted, default_time=False),
            "sighting": _date_declaration(self.sighting, default_time=True),
            "state": state,
        }


def _date_declaration(column: DateColumn, default_time: bool) -> dict:
    found = {"column": column.column, "format": column.format.name}
    if column.time != default_time:
        found["time"] = column.time
    return found


#: Characters of a value from a declaration or a header that a message shows: a value can be
#: megabytes long, and one error line holding it whole is unreadable.
SHOWN_CHARS = 80


def shown(value, limit: int = SHOWN_CHARS) -> str:
    """``repr(value)`` as a message shows it: cut after ``limit`` characters, saying so."""
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]!r}... ({len(value) - limit} more characters)"
    text = repr(value)
    return text if len(text) <= 2 * limit else f"{text[:limit]}... ({len(text) - limit} more)"


def _plain(value: str, limit: int = SHOWN_CHARS) -> str:
    """``value`` as a message shows it without quotes, cut like ``shown``."""
    value = str(value)
    return (
        value
        if len(value) <= limit
        else f"{value[:limit]}... ({len(value) - limit} more characters)"
    )


class LayoutError(ValueError):
    """A header that is none of the known layouts; the message names what is missing."""


class DeclarationError(ValueError):
    """A layout declaration that cannot be used; the message names the file, layout and problem."""


_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")


def read_declarations(text: str, where: str, taken: Iterable[str] = ()) -> tuple[Layout, ...]:
    """The layouts declared in TOML ``text`` (a file's content; ``where`` names it in errors).

    ``taken``: names already in use (the built-ins'), which a declaration may not reuse.
    """
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise DeclarationError(f"{where}: not valid TOML ({_plain(err, 300)})") from None
    unknown = sorted(set(document) - {"layouts"})
    if unknown:
        raise DeclarationError(
            f"{where}: unknown top-level key(s) {', '.join(map(_plain, unknown[:10]))}: declare "
            "each layout as a [layouts.NAME] table"
        )
    tables = document.get("layouts")
    if not isinstance(tables, dict) or not tables:
        raise DeclarationError(f"{where}: no layout declared: add a [layouts.NAME] table")
    return from_tables(tables, where, taken)


def from_tables(tables: Mapping, where: str, taken: Iterable[str] = ()) -> tuple[Layout, ...]:
    """Layouts from their declarations (TOML tables, or their JSON form), checked."""
    taken = set(taken)
    found = []
    for name, table in tables.items():
        problem = _Problem(where, name)
        if not _NAME.fullmatch(name):
            problem("its name must be lower-case letters, digits, '-' or '_'")
        if name in taken:
            problem("the name is taken by a built-in layout: choose another")
        taken.add(name)
        found.append(_layout(name, table, problem))
    by_columns: dict[frozenset[str], str] = {}
    for layout in found:
        twin = by_columns.setdefault(frozenset(layout.keys), layout.name)
        if twin != layout.name:
            raise DeclarationError(
                f"{where}: layouts {shown(twin)} and {shown(layout.name)} have the same columns, "
                "so every header that fits one fits the other: keep one of them"
            )
    return tuple(found)


class _Problem:
    def __init__(self, where: str, name: str):
        self.prefix = f"{where}: layout {shown(name)}"

    def __call__(self, text: str):
        raise DeclarationError(f"{self.prefix}: {text}")


def _keys(table, allowed: set[str], required: set[str], what: str, problem: _Problem) -> None:
    if not isinstance(table, dict):
        problem(f"{what} must be a table")
    unknown = sorted(set(table) - allowed)
    if unknown:
        problem(
            f"{what} has unknown key(s) {', '.join(map(_plain, unknown[:10]))} "
            f"(known: {', '.join(sorted(allowed))})"
        )
    missing = sorted(required - set(table))
    if missing:
        problem(f"{what} lacks {', '.join(missing)}")


def _layout(name: str, table, problem: _Problem) -> Layout:
    _keys(table, {"title", "columns", "posted", "sighting", "state"},
          {"columns", "posted", "sighting", "state"}, "the layout", problem)  # fmt: skip
    title = table.get("title", name)
    if not isinstance(title, str):
        problem("title must be text")
    columns = table["columns"]
    if (not isinstance(columns, list) or not columns
            or not all(isinstance(c, str) and normalise(c) for c in columns)):  # fmt: skip
        problem("columns must be a list of non-empty column names")
    keys = [normalise(c) for c in columns]
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if repeated:
        problem(
            f"columns name {', '.join(map(shown, repeated[:10]))} twice (case and spaces ignored)"
        )
    reserved = sorted(RESERVED.intersection(keys))
    if reserved:
        problem(f"column name(s) {', '.join(map(shown, reserved))} are reserved by the pipeline")

    def column(value, what: str) -> str:
        if not isinstance(value, str) or normalise(value) not in keys:
            problem(f"{what} {shown(value)} is not one of its columns")
        return columns[keys.index(normalise(value))]

    def date(what: str, default_time: bool) -> DateColumn:
        spec = table[what]
        _keys(spec, {"column", "format", "time"}, {"column", "format"}, what, problem)
        fmt = FORMATS.get(spec["format"])
        if fmt is None:
            problem(
                f"{what}.format {shown(spec['format'])} is none of {', '.join(map(repr, FORMATS))}"
            )
        time = spec.get("time", default_time)
        if not isinstance(time, bool):
            problem(f"{what}.time must be true or false")
        return DateColumn(column(spec["column"], f"{what}.column"), fmt, time)

    posted = date("posted", default_time=False)
    sighting = date("sighting", default_time=True)
    spec = table["state"]
    _keys(spec, {"column", "country", "countries"}, {"column"}, "state", problem)
    state = column(spec["column"], "state.column")
    country = countries = None
    if "country" in spec or "countries" in spec:
        if "country" not in spec or "countries" not in spec:
            problem("state needs both country (a column) and countries (the values accepted)")
        country = column(spec["country"], "state.country")
        countries = spec["countries"]
        if not isinstance(countries, list) or not all(isinstance(c, str) for c in countries):
            problem('state.countries must be a list of country values, e.g. ["usa"]')
        if not countries:
            problem("state.countries is empty: no row could be valid")
    if posted.format.year_digits == 2 and posted.time:
        problem("a posted date of format M/D/YY cannot carry a time")
    return Layout(
        name=name,
        title=title,
        columns=tuple(columns),
        posted=posted,
        sighting=sighting,
        state=state,
        country=country,
        countries=tuple(sorted({normalise(c) for c in countries or ()})),
    )


#: A layouts file holds a few tables; more than this is a mistake (or /dev/zero).
MAX_FILE_BYTES = 1024 * 1024


def read_file(path: str | os.PathLike) -> str:
    """The text of a layouts file: a regular file of at most MAX_FILE_BYTES; ValueError saying
    why not (a device or a pipe would be read forever, or wait for a writer); OSError."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # a FIFO opens at once
    with os.fdopen(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError(f"{path} is not a regular file")
        data = file.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise ValueError(f"{path} is larger than a layouts file may be (at most 1 MiB)")
    return data.decode("utf-8")


def to_json(declared: Iterable[Layout]) -> str:
    """Declared layouts as one line of JSON, for the Spark job's command line."""
    return json.dumps({layout.name: layout.declaration() for layout in declared})


def from_json(text: str) -> tuple[Layout, ...]:
    """The layouts ``to_json`` wrote."""
    return from_tables(json.loads(text), "--layouts", taken=BUILT_IN_NAMES)


BUILT_IN_FILE = Path(__file__).with_name("layouts.toml")
LAYOUTS = read_declarations(BUILT_IN_FILE.read_text(encoding="utf-8"), str(BUILT_IN_FILE))
BUILT_IN_NAMES = frozenset(layout.name for layout in LAYOUTS)


def by_name(name: str, declared: Iterable[Layout] = ()) -> Layout:
    """The layout called ``name``."""
    known = (*declared, *LAYOUTS)
    for layout in known:
        if layout.name == name:
            return layout
    raise KeyError(f"no layout {name!r}; known: {', '.join(layout.name for layout in known)}")


INDEX = by_name("index")
EXPORT = by_name("export")
KAGGLE = by_name("kaggle")


@dataclass(frozen=True)
class Match:
    """A header recognised as ``layout``: where each of the layout's columns is."""

    layout: Layout
    positions: tuple[int, ...]  # position in the header of each of layout.columns
    names: tuple[str, ...]  # those columns' names as the header spells them


def match(header: list[str] | tuple[str, ...], declared: Iterable[Layout] = ()) -> Match:
    """The layout of a header: names compared ignoring case and surrounding spaces, in any order.

    Extra columns are ignored. When a name appears twice (``state`` beside ``State``), the first
    one wins. When several layouts fit, the one with the most columns is taken (the declared
    ones before the built-ins among equals); two declared ones that fit equally raise
    LayoutError naming both. A header that is no layout raises LayoutError showing it (cut) and
    the missing columns of the closest layout.
    """
    first: dict[str, int] = {}
    for position, name in enumerate(header):
        first.setdefault(normalise(name), position)
    declared = tuple(declared)
    candidates = (*declared, *LAYOUTS)
    fitting = [la for la in candidates if all(k in first for k in la.keys)]
    if fitting:
        layout = max(fitting, key=lambda la: len(la.columns))  # the first of the largest
        tied = [la for la in fitting if la in declared and len(la.columns) == len(layout.columns)]
        if len(tied) > 1:
            raise LayoutError(
                f"the header fits the declared layouts {shown(tied[0].name)} and "
                f"{shown(tied[1].name)} equally (each has all of its {len(layout.columns)} "
                "columns): change the declarations in UFO_LAYOUTS so that one header fits one "
                "layout, for example by a column only one of them has"
            )
        positions = tuple(first[k] for k in layout.keys)
        return Match(layout, positions, tuple(header[p] for p in positions))

    def share(la: Layout) -> float:
        return sum(k in first for k in la.keys) / len(la.keys)

    closest = max(candidates, key=share)
    missing = [c for c in closest.columns if normalise(c) not in first]
    title = _plain(closest.title, 40)
    problem = (
        f"the closest layout, {title}, also needs {listed(missing)}. Rename or add them"
        if len(missing) < len(closest.columns)
        else f"no known layout; the {title} needs {listed(missing)}. Give such a file"
    )
    raise LayoutError(
        f"{f'header {listed(header)}' if header else 'the header line is empty'}: {problem}, "
        "or declare your layout in UFO_LAYOUTS (docs/how-to/declare-a-layout.md)"
    )


def listed(names, most: int = 10, chars: int = 150) -> str:
    """Column names as a message lists them: quoted, each cut to 40 characters, the first
    ``most`` of them while they fit in ``chars``, then how many more."""
    quoted = [shown(n, 40) for n in names]
    count = 1
    while count < min(most, len(quoted)) and len(", ".join(quoted[: count + 1])) <= chars:
        count += 1
    more = f", ... ({len(quoted) - count} more)" if quoted[count:] else ""
    return ", ".join(quoted[:count]) + more
