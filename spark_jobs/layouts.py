"""The report layouts the pipeline reads, each mapped onto the data contract in one place.

A layout names its columns (in the order the README documents them) and says which column holds
the Posted date, the sighting time and the state, how many digits their years have, and whether
a country column must say ``USA``. ``ReadUFOs`` recognises a source's layout from its header with
``match``; the Spark job turns a ``Layout`` into column expressions; the sample generator writes
files in any layout. A third layout is one more ``Layout(...)`` in ``LAYOUTS``.

Pure Python (no PySpark): the Spark job imports it on the driver beside itself, and the ``etl``
package imports it as ``spark_jobs.layouts``.
"""

from __future__ import annotations

from dataclasses import dataclass

#: "Surrounding spaces" in the data contract: ASCII whitespace, the same in Python and Spark.
WHITESPACE = " \t\r\n\f\v"

#: The 50 US states and DC.
US_STATES = frozenset(
    "AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH "
    "NJ NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY".split()
)


def normalise(name: str) -> str:
    """A header name as layouts compare it: trimmed, lower case."""
    return name.strip(WHITESPACE).lower()


@dataclass(frozen=True)
class Layout:
    """One source layout and how its fields map onto the data contract."""

    name: str  # recorded in the lake and the database: ``ufo_runs.layout``
    title: str  # for people
    columns: tuple[str, ...]  # header names, in documented order
    posted: str  # the column with the Posted date, ``M/D/YY`` or ``M/D/YYYY``
    posted_year_digits: int
    sighting: str  # the column with the sighting time, ``M/D/Y[ H:MM]``
    sighting_year_digits: int
    state: str  # the column with the state code
    country: str | None = None  # a country column that must equal ``country_value``
    country_value: str = "usa"

    @property
    def keys(self) -> tuple[str, ...]:
        """The normalised column names."""
        return tuple(normalise(c) for c in self.columns)

    def posted_pattern(self) -> str:
        """The regular expression of a Posted date: groups month, day, year."""
        return rf"^(\d{{1,2}})/(\d{{1,2}})/(\d{{{self.posted_year_digits}}})$"

    def sighting_pattern(self) -> str:
        """The regular expression of a sighting time: month, day, year, then optional hour, minute."""
        return rf"^(\d{{1,2}})/(\d{{1,2}})/(\d{{{self.sighting_year_digits}}})( (\d{{1,2}}):(\d{{2}}))?$"


INDEX = Layout(
    name="index",
    title="NUFORC report index",
    columns=("Date / Time", "City", "State", "Shape", "Duration", "Summary", "Posted"),
    posted="Posted",
    posted_year_digits=2,
    sighting="Date / Time",
    sighting_year_digits=2,
    state="State",
)

EXPORT = Layout(
    name="export",
    title="NUFORC site export",
    columns=(
        "details",
        "date",
        "city",
        "state",
        "country",
        "shape",
        "summary",
        "report_date",
        "posted_date",
        "image",
    ),  # fmt: skip
    posted="posted_date",
    posted_year_digits=4,
    sighting="date",
    sighting_year_digits=4,
    state="state",
    country="country",
)

LAYOUTS = (INDEX, EXPORT)


def by_name(name: str) -> Layout:
    """The layout called ``name``."""
    for layout in LAYOUTS:
        if layout.name == name:
            return layout
    raise KeyError(f"no layout {name!r}; known: {', '.join(layout.name for layout in LAYOUTS)}")


class LayoutError(ValueError):
    """A header that is none of the known layouts; the message names what is missing."""


@dataclass(frozen=True)
class Match:
    """A header recognised as ``layout``: where each of the layout's columns is."""

    layout: Layout
    positions: tuple[int, ...]  # position in the header of each of layout.columns
    names: tuple[str, ...]  # those columns' names as the header spells them


def match(header: list[str] | tuple[str, ...]) -> Match:
    """The layout of a header: names compared ignoring case and surrounding spaces, in any order.

    Extra columns are ignored. When a name appears twice (``state`` beside ``State``), the first
    one wins. A header that is no layout raises LayoutError naming the missing columns of the
    closest layout.
    """
    first: dict[str, int] = {}
    for position, name in enumerate(header):
        first.setdefault(normalise(name), position)
    best: tuple[int, Layout] | None = None
    for layout in LAYOUTS:
        missing = [c for c in layout.columns if normalise(c) not in first]
        if not missing:
            positions = tuple(first[normalise(c)] for c in layout.columns)
            return Match(layout, positions, tuple(header[p] for p in positions))
        found = len(layout.columns) - len(missing)
        if best is None or found / len(layout.columns) > best[0] / len(best[1].columns):
            best = (found, layout)
    assert best is not None
    layout = best[1]
    missing = [c for c in layout.columns if normalise(c) not in first]
    raise LayoutError(
        f"missing column(s) {', '.join(repr(m) for m in missing)} of the {layout.title} layout; "
        f"its header is {','.join(layout.columns)!r}"
        + "".join(
            f" (or, for the {other.title}: {','.join(other.columns)!r})"
            for other in LAYOUTS
            if other is not layout
        )
    )
