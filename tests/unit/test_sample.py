"""The sample generator: the NUFORC layout with its quirks, checked by an independent reader."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import subprocess
import sys

from tests import reference

UNTIL = dt.date(2019, 3, 29)


def generate(tmp_path, *args: str) -> bytes:
    out = tmp_path / "sample.csv"
    cmd = [
        sys.executable,
        "-m",
        "etl.sample",
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
    subprocess.run([sys.executable, "-m", "etl.sample", "--rows", "2000", "--out", str(out), "--encoding", "cp1252"],
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
