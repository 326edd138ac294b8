"""Layouts declared in TOML: the built-ins' file, a user's file, and what a bad one is told."""

from __future__ import annotations

import dataclasses

import pytest

from etl.errors import ConfigError
from etl.settings import load_settings
from spark_jobs import layouts
from tests.support import DECLARED_LAYOUT

KAGGLE_HEADER = ("datetime,city,state,country,shape,duration (seconds),duration (hours/min),"
                 "comments,date posted,latitude,longitude ").split(",")  # fmt: skip

ISO = DECLARED_LAYOUT


def test_the_built_in_layouts_are_declared_in_the_same_form_as_a_users():
    assert [la.name for la in layouts.LAYOUTS] == ["index", "export", "kaggle"]
    # Each built-in, written back as its declaration and read as a user's, is the same layout.
    for layout in layouts.LAYOUTS:
        [again] = layouts.from_tables({"copy": layout.declaration()}, "test")
        assert again == dataclasses.replace(layout, name="copy")


def test_the_kaggle_header_is_recognised_with_its_trailing_space():
    found = layouts.match(KAGGLE_HEADER)
    assert found.layout is layouts.KAGGLE
    assert found.names[-1] == "longitude "
    assert layouts.KAGGLE.countries == ("", "us")
    assert layouts.KAGGLE.posted.format.name == "M/D/YYYY"


def test_a_declared_layout_is_read_checked_and_sent_to_the_job_as_json():
    [layout] = layouts.read_declarations(ISO, "my.toml", taken=layouts.BUILT_IN_NAMES)
    assert layout.name == "reports-db" and layout.title == "Our reports database"
    assert layout.countries == ("united states", "usa")  # compared trimmed, in lower case
    assert layout.posted.time and layout.sighting.time
    assert layouts.from_json(layouts.to_json([layout])) == (layout,)
    found = layouts.match(
        ["Report_ID", "Observed_At", "region", "nation", "entered_on", "x"], [layout]
    )
    assert found.layout == layout and found.positions == (0, 1, 2, 3, 4)


def test_the_layout_with_the_most_columns_wins_and_a_declared_one_among_equals():
    wider = layouts.from_tables({"wider": {**layouts.INDEX.declaration(),
                                           "columns": [*layouts.INDEX.columns, "Link"]}}, "t")  # fmt: skip
    same = layouts.from_tables({"same": layouts.INDEX.declaration()}, "t")
    header = [*layouts.INDEX.columns, "Link"]
    assert layouts.match(header, wider).layout.name == "wider"
    assert layouts.match(header[:-1], wider).layout.name == "index"  # "wider" does not fit
    assert layouts.match(header, same).layout.name == "same"


def test_a_header_of_no_layout_says_how_to_declare_one():
    with pytest.raises(layouts.LayoutError) as err:
        layouts.match(["when", "where", "posted"])
    assert "UFO_LAYOUTS" in str(err.value)


def _declare(body: str) -> str:
    return f'[layouts.mine]\ncolumns = ["a", "b", "c", "d"]\n{body}'


GOOD_DATES = ('posted = { column = "a", format = "M/D/YYYY" }\n'
              'sighting = { column = "b", format = "M/D/YYYY" }\n')  # fmt: skip


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[layouts.mine\n", "not valid TOML"),
        ("[other]\nx = 1\n", "unknown top-level key(s) other"),
        ("title = 'x'\n", "unknown top-level key(s) title"),
        ("# nothing yet\n", "no layout declared"),
        (_declare(GOOD_DATES), "the layout lacks state"),
        (_declare(GOOD_DATES + 'state = { column = "e" }\n'), "state.column 'e' is not one of"),
        (_declare(GOOD_DATES.replace("M/D/YYYY", "DD.MM.YYYY", 1) + 'state = { column = "c" }\n'),
         "posted.format 'DD.MM.YYYY' is none of"),
        (_declare(GOOD_DATES + 'state = { column = "c", country = "d" }\n'),
         "needs both country (a column) and countries"),
        (_declare(GOOD_DATES + 'state = { column = "c", country = "d", countries = [] }\n'),
         "state.countries is empty"),
        (_declare(GOOD_DATES + 'state = { column = "c", colour = "d" }\n'),
         "state has unknown key(s) colour"),
        (_declare(GOOD_DATES.replace('format = "M/D/YYYY" }', 'format = "M/D/YYYY", time = "yes" }', 1)
                  + 'state = { column = "c" }\n'), "posted.time must be true or false"),
        (_declare(GOOD_DATES + 'state = { column = "c" }\n').replace('"d"', '" A "'),
         "columns name 'a' twice"),
        (_declare(GOOD_DATES + 'state = { column = "c" }\n').replace('"d"', '"Reason"'),
         "column name(s) 'reason' are reserved"),
        ('[layouts.index]\ncolumns = ["a"]\n', "the name is taken by a built-in layout"),
        ('[layouts.Mine]\ncolumns = ["a"]\n', "its name must be lower-case"),
    ],
)  # fmt: skip
def test_a_bad_declaration_names_the_file_the_layout_and_the_problem(text, problem):
    with pytest.raises(layouts.DeclarationError) as err:
        layouts.read_declarations(text, "/etc/ufo/layouts.toml", taken=layouts.BUILT_IN_NAMES)
    message = str(err.value)
    assert message.startswith("/etc/ufo/layouts.toml: ")
    assert problem in message
    if text.startswith("[layouts.") and problem != "not valid TOML":
        assert any(f"layout {n!r}: " in message for n in ("mine", "index", "Mine"))


def test_the_setting_reads_the_file_and_a_bad_one_stops_the_run_at_its_start(tmp_path, monkeypatch):
    path = tmp_path / "layouts.toml"
    path.write_text(ISO)
    monkeypatch.setenv("UFO_LAYOUTS", str(path))
    assert [la.name for la in load_settings().layouts] == ["reports-db"]
    path.write_text(ISO.replace('"YYYY-MM-DD", time', '"YYYY/M/D", time'))  # edited: read again
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert f"UFO_LAYOUTS={str(path)!r}" in str(err.value)
    assert f"{path}: layout 'reports-db': posted.format 'YYYY/M/D'" in str(err.value)
    monkeypatch.setenv("UFO_LAYOUTS", str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigError, match="there is no file"):
        load_settings()
