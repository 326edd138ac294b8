"""Layouts declared in TOML: the built-ins' file, a user's file, and what a bad one is told."""

from __future__ import annotations

import dataclasses

import pytest

from etl.errors import ConfigError
from etl.settings import load_settings
from spark_jobs import layouts
from tests.support import DECLARED_LAYOUT, REPO

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
    assert "UFO_LAYOUTS (docs/how-to/declare-a-layout.md)" in str(err.value)
    assert (REPO / "docs/how-to/declare-a-layout.md").read_text().count("UFO_LAYOUTS") > 0


INDEX_NEEDS = "'Date / Time', 'City', 'State', 'Shape', 'Duration', 'Summary', 'Posted'"


def _refused(header: list[str]) -> str:
    with pytest.raises(layouts.LayoutError) as err:
        layouts.match(header)
    message = str(err.value)
    assert "\n" not in message and message.endswith(
        "or declare your layout in UFO_LAYOUTS (docs/how-to/declare-a-layout.md)"
    )
    return message


def test_the_header_of_another_kind_of_file_is_shown_with_what_the_report_index_needs():
    message = _refused(["order_id", "customer", "email", "amount", "created_at"])
    assert message.startswith(
        "header 'order_id', 'customer', 'email', 'amount', 'created_at': no known layout; the "
        f"NUFORC report index needs {INDEX_NEEDS}. Give such a file,"
    )
    assert len(message) <= 280, len(message)


def test_a_header_with_one_column_renamed_names_that_column_of_the_closest_layout():
    header = ["Date / Time", "Town", "State", "Shape", "Duration", "Summary", "Posted"]
    message = _refused(header)
    assert message.startswith(
        "header 'Date / Time', 'Town', 'State', 'Shape', 'Duration', 'Summary', 'Posted': the "
        "closest layout, NUFORC report index, also needs 'City'. Rename or add them,"
    )
    assert len(message) <= 250, len(message)
    # The site export with "city" renamed: its own missing column, not the index's seven.
    export = ["details", "date", "town", "state", "country", "shape", "summary", "report_date",
              "posted_date", "image"]  # fmt: skip
    assert "the closest layout, NUFORC site export, also needs 'city'." in _refused(export)


@pytest.mark.parametrize(
    "header, shown", [([], "the header line is empty"), (["hello"], "header 'hello'")]
)
def test_an_empty_or_one_column_header_is_said_as_it_is(header, shown):
    message = _refused(header)
    assert message.startswith(
        f"{shown}: no known layout; the NUFORC report index needs {INDEX_NEEDS}."
    )
    assert len(message) <= 250, len(message)


def test_a_long_header_is_cut_to_its_first_names_and_how_many_more():
    header = [f"column_{i}" for i in range(60)]
    message = _refused(header)
    first_ten = ", ".join(f"'column_{i}'" for i in range(10))
    assert message.startswith(f"header {first_ten}, ... (50 more): no known layout;")
    assert "column_10" not in message and INDEX_NEEDS in message
    assert len(message) <= 400, len(message)
    # Long names: fewer of them, each cut, and the message stays a line.
    wide = ["x" * 300 + str(i) for i in range(60)] + ["City"]
    message = _refused(wide)
    cut = "'" + "x" * 40 + "'... (261 more characters)"  # 69 characters: two fit in 150
    assert message.startswith(f"header {cut}, {cut}, ... (59 more): the closest layout, NUFORC "
                              "report index, also needs 'Date / Time', 'State',")  # fmt: skip
    assert len(message) <= 500, len(message)


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


@pytest.mark.parametrize("kind", ["device", "fifo", "directory", "too large"])
def test_the_setting_reads_only_a_regular_file_of_bounded_size(tmp_path, monkeypatch, kind):
    import os
    import time

    if kind == "device":
        path = "/dev/zero"  # endless: reading it whole never ends
    elif kind == "fifo":
        path = str(tmp_path / "layouts.fifo")
        os.mkfifo(path)  # opening it waits for a writer that never comes
    elif kind == "directory":
        path = str(tmp_path)
    else:
        path = str(tmp_path / "huge.toml")
        with open(path, "w") as out:
            out.write("# " + "x" * (2 * 1024 * 1024) + "\n" + ISO)
    monkeypatch.setenv("UFO_LAYOUTS", path)
    start = time.monotonic()
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert time.monotonic() - start < 2
    message = str(err.value)
    assert message.startswith("UFO_LAYOUTS=") and len(message) < 600
    expected = "at most 1 MiB" if kind == "too large" else "is not a regular file"
    assert expected in message


def test_two_declared_layouts_of_the_same_columns_are_refused_naming_both():
    twin = ISO.replace("[layouts.reports-db]", "[layouts.reports-copy]")
    with pytest.raises(layouts.DeclarationError) as err:
        layouts.read_declarations(ISO + twin, "my.toml", taken=layouts.BUILT_IN_NAMES)
    assert "'reports-db'" in str(err.value) and "'reports-copy'" in str(err.value)


def test_two_declared_layouts_that_fit_one_header_equally_are_refused_naming_both():
    one = layouts.from_tables({"one": {**layouts.INDEX.declaration(),
                                       "columns": [*layouts.INDEX.columns, "Link"]}}, "t")  # fmt: skip
    two = layouts.from_tables({"two": {**layouts.INDEX.declaration(),
                                       "columns": [*layouts.INDEX.columns, "Notes"]}}, "t")  # fmt: skip
    header = [*layouts.INDEX.columns, "Link", "Notes"]
    with pytest.raises(layouts.LayoutError) as err:
        layouts.match(header, one + two)
    assert "'one'" in str(err.value) and "'two'" in str(err.value)
    assert layouts.match(header[:-1], one + two).layout.name == "one"  # one fits: no doubt


@pytest.mark.parametrize("where", ["format", "name", "column", "state"])
def test_a_huge_value_in_a_declaration_is_cut_in_the_message(where):
    huge = "Q" * 1_200_000
    text = _declare(GOOD_DATES + 'state = { column = "c" }\n')
    if where == "format":
        text = text.replace('format = "M/D/YYYY"', f'format = "{huge}"', 1)
    elif where == "name":
        text = text.replace("[layouts.mine]", f'[layouts."{huge}"]')
    elif where == "column":
        text = text.replace('column = "a"', f'column = "{huge}"', 1)
    else:
        text = text.replace('column = "c"', f'column = "c", colour{huge} = 1')
    with pytest.raises(layouts.DeclarationError) as err:
        layouts.read_declarations(text, "my.toml", taken=layouts.BUILT_IN_NAMES)
    assert len(str(err.value)) < 1000, len(str(err.value))
    assert "more characters" in str(err.value)


def test_a_header_of_no_layout_with_huge_names_is_cut_in_the_message():
    huge = layouts.from_tables({"huge": {**layouts.INDEX.declaration(),
                                         "columns": [*layouts.INDEX.columns, "L" * 2_000_000]}}, "t")  # fmt: skip
    with pytest.raises(layouts.LayoutError) as err:
        layouts.match(["when", "where", "L" * 2_000_000], huge)
    assert len(str(err.value)) < 500 and "UFO_LAYOUTS" in str(err.value)
