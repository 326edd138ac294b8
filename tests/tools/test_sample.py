"""The sample generator: the NUFORC layout with its quirks, checked by an independent reader."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import subprocess
import sys

from etl.tools import sample
from tests import reference

UNTIL = dt.date(2019, 3, 29)


def generate(tmp_path, *args: str) -> bytes:
    out = tmp_path / "sample.csv"
    cmd = [
        sys.executable,
        "-m",
        "etl.tools.sample",
        "--rows",
        "5000",
        "--until",
        UNTIL.isoformat(),
        "--out",
        str(out),
        *args,
    ]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    return out.read_bytes()


def test_layout_and_quirks(tmp_path):
    data = generate(tmp_path)
    records = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    assert records[0] == ["Date / Time", "City", "State", "Shape", "Duration", "Summary", "Posted"]
    assert len(records) == 5001 and all(len(r) == 7 for r in records)
    assert data.count(b"\r\n") == 5001  # CRLF records ...
    assert data.count(b"\n") > 5001  # ... and bare LFs inside quoted fields
    assert any("\n" in field for r in records for field in r)
    q = reference.classify(data, UNTIL).quality()
    assert q["input"] == 5000
    assert q["header_repeat"] > 0 and q["duplicate"] > 0
    assert q["rejected_by_reason"]["sighting_date"] > 0 and q["rejected_by_reason"]["state"] > 0
    assert 0.8 < q["valid"] / q["input"] < 0.98  # about the real file's share


def test_posted_dates_end_at_until(tmp_path):
    q_until = reference.classify(generate(tmp_path), UNTIL).quality()
    q_before = reference.classify(generate(tmp_path), UNTIL - dt.timedelta(days=400)).quality()
    assert q_until["after_run_date"] == 0
    assert q_before["after_run_date"] > 0


def test_windows_1252_and_gzip(tmp_path):
    out = tmp_path / "sample.csv.gz"
    subprocess.run([sys.executable, "-m", "etl.tools.sample", "--rows", "2000", "--out", str(out), "--encoding", "cp1252"],
                   check=True, capture_output=True, timeout=120)  # fmt: skip
    data = gzip.decompress(out.read_bytes())
    try:
        data.decode("utf-8")
        raise AssertionError("a cp1252 sample should not be valid UTF-8")
    except UnicodeDecodeError:
        pass
    assert "\u201c" in data.decode("cp1252")


def test_the_same_seed_gives_the_same_file(tmp_path):
    assert generate(tmp_path, "--seed", "3") == generate(tmp_path, "--seed", "3")
    assert generate(tmp_path, "--seed", "3") != generate(tmp_path, "--seed", "4")


def test_export_layout_and_its_quirks(tmp_path):
    data = generate(tmp_path, "--layout", "export")
    text = data.decode("utf-8")  # proper UTF-8
    records = list(csv.reader(io.StringIO(text, newline="")))
    header = ["details", "date", "city", "state", "country", "shape", "summary", "report_date",
              "posted_date", "image"]  # fmt: skip
    assert records[0] == header and all(len(r) == 10 for r in records)
    rows = [r for r in records[1:] if r != header]
    ids = [r[0] for r in rows]
    assert all(i.startswith("https://nuforc.org/sighting/?id=") for i in ids)
    assert len(set(ids)) > 0.99 * len(ids)  # unique, but for the exact duplicates
    dates = [r[1] for r in rows]
    assert any(d.startswith("0") for d in dates) and any(d[:2].endswith("/") for d in dates)
    assert any(" " not in d and d.count("/") == 2 for d in dates)  # no time
    assert {"USA", "Canada", "Australia"} <= {r[4] for r in rows}
    assert ("WA", "Australia") in {(r[3], r[4]) for r in rows}
    assert "-" in {r[3] for r in rows} and "" in {r[5] for r in rows}
    assert max(len(r[6]) for r in rows) <= 135
    assert any("\u00b0" in r[6] or "\u201c" in r[6] for r in rows)
    mdy = lambda s: dt.datetime.strptime(s, "%m/%d/%Y").date()  # noqa: E731
    assert any(mdy(r[7]) < mdy(r[1].split(" ")[0]) for r in rows if r[1][:1].isdigit() and r[1].count("/") == 2 and len(r[1].split(" ")[0].split("/")[2]) == 4)  # fmt: skip
    expected = reference.classify(data, UNTIL)
    q = expected.quality()
    assert q["valid"] > 0.7 * q["input"] and q["rejected_by_reason"]["state"] > 0
    assert q["header_repeat"] > 0 and q["rejected_by_reason"]["sighting_date"] > 0


def test_the_kaggle_layout_has_its_quirks_and_the_reference_reads_it():
    until = dt.date(2014, 5, 8)
    out = io.StringIO(newline="")
    sample.write(out, sample.generate(20000, until=until, seed=3, layout="kaggle"), "kaggle")
    data = out.getvalue().encode("utf-8")
    records = list(csv.reader(io.StringIO(out.getvalue(), newline="")))
    header = records[0]
    assert header[-1] == "longitude " and [h.strip() for h in header] == list(
        sample.layouts.KAGGLE.columns
    )
    rows = [r for r in records[1:] if r != header]
    assert any(len(r) != len(header) for r in rows)  # a comma left unquoted
    rows = [r for r in rows if len(r) == len(header)]
    states = {r[2] for r in rows}
    assert "tx" in states and not any(s.isupper() for s in states)  # lower case, as the file
    assert ("", "gb") in {(r[2], r[3]) for r in rows}
    assert any(r[3] == "" and r[2] in ("ca", "tx", "ny") for r in rows)  # US, country left empty
    assert {"us", "ca", "au"} <= {r[3] for r in rows}
    assert any(r[0].endswith(" 24:00") for r in rows)
    assert any(r[0].isdigit() for r in rows)  # a spreadsheet's serial date
    assert any("&#44" in r[7] for r in rows)
    q = reference.classify(data, until).quality()
    assert q["valid"] > 0.7 * q["input"]
    assert all(q["rejected_by_reason"][r] > 0 for r in ("columns", "sighting_date", "state"))
