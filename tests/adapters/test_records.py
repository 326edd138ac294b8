"""The raw zone's CSV reader: pyarrow's, checked against Python's csv module, the reference."""

from __future__ import annotations

import csv
import logging
import subprocess
import sys
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from etl.tools import sample
from spark_jobs import records

HEADER = ["Date / Time", "City", "State", "Shape", "Duration", "Summary", "Posted"]
TRICKY = [
    ",".join(HEADER),
    '6/13/11 22:18,Ardenvoir,WA,Light,1 minute,"a light,\r\n\r\nwhite",6/20/11',
    "",  # blank lines are no records
    ",,,,,,",  # a record of seven empty fields is one
    "",
    ",,,,,,",
    " ",  # one field: the wrong width
    "a,b",
    "1,2,3,4,5,6,7,8",
    '"q""x",b,c,d,e,f,g',
    'x"y,b,c,d,e,f,g',  # a quote inside a field is a character
    '"ab"cd,e,,,,,',
    ",,,,,",
    "",
]


def expected(path: Path) -> tuple[list[tuple], records.Written]:
    """The rows and counts, worked out here with Python's csv module."""
    with open(path, encoding="utf-8-sig", newline="") as text:
        found = list(csv.reader(text))[1:]
    rows, blank, ragged = [], 0, 0
    for record in found:
        if not record:
            blank += 1
        elif len(record) == len(HEADER):
            rows.append((*record, ""))
        else:
            ragged += 1
            padded = [*record[: len(HEADER)], *[""] * (len(HEADER) - len(record))]
            rows.append((*padded, records.csv_text(record)))
    return sorted(rows), records.Written(len(rows), blank, ragged)


def parsed(path: Path, out: Path, python: bool = False) -> tuple[list[tuple], records.Written]:
    positions = range(len(HEADER))
    if python:
        with open(path, encoding="utf-8-sig", newline="") as text:
            written = records.write_parquet_python(text, HEADER, positions, len(HEADER), str(out))
    else:
        written = records.write_parquet(str(path), HEADER, HEADER, positions, str(out))
    rows = sorted(tuple(r.values()) for r in pq.read_table(out).to_pylist())
    return rows, written


@pytest.mark.parametrize("line_end", ["\r\n", "\n", "\r"])
def test_both_readers_read_blank_lines_empty_records_and_ragged_ones_as_csv_does(
    tmp_path, line_end
):
    path = tmp_path / "in.csv"
    path.write_bytes(line_end.join(TRICKY).encode())
    want_rows, want = expected(path)
    assert (want.blank_lines, want.ragged) == (2, 4)  # the file is as tricky as meant
    for python in (False, True):
        got_rows, got = parsed(path, tmp_path / f"out{python}.parquet", python)
        assert got == want
        assert got_rows == want_rows


def test_a_generated_file_of_every_layout_reads_the_same_as_with_csv(tmp_path):
    for layout in ("index", "export", "kaggle"):
        path = tmp_path / f"{layout}.csv"
        with open(path, "w", encoding="utf-8", newline="") as out:
            sample.write(out, sample.generate(20_000, sample.dt.date(2019, 3, 29), seed=5,
                                              layout=layout), layout)  # fmt: skip
        with open(path, encoding="utf-8", newline="") as text:
            header = next(csv.reader(text))
            found = list(csv.reader(text))
        positions = range(len(header))
        written = records.write_parquet(str(path), header, header, positions, str(path) + ".pq")
        table = pq.read_table(str(path) + ".pq")
        whole = sorted(tuple(r) for r in found if r and len(r) == len(header))
        assert written.records == len([r for r in found if r]) == table.num_rows
        assert written.ragged == len(found) - len(whole)
        kept = table.filter(pc.equal(table[records.RECORD], ""))
        assert sorted(zip(*(kept[n].to_pylist() for n in header))) == whole


def test_row_groups_hold_row_group_records_so_spark_splits_the_file(tmp_path):
    path = tmp_path / "in.csv"
    n = records.ROW_GROUP * 2 + 123
    path.write_text(",".join(HEADER) + "\r\n" + "1,2,3,4,5,6,7\r\n" * n, newline="")
    written = records.write_parquet(str(path), HEADER, HEADER, range(7), str(tmp_path / "o.pq"))
    meta = pq.ParquetFile(tmp_path / "o.pq").metadata
    groups = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    assert written.records == n and groups == [records.ROW_GROUP, records.ROW_GROUP, 123]


def test_a_record_longer_than_a_block_is_read_by_the_reference_reader(tmp_path, caplog,
                                                                      monkeypatch):  # fmt: skip
    monkeypatch.setattr(records, "BLOCK_SIZE", 1 << 16)
    path = tmp_path / "in.csv"
    long = "y" * (1 << 17)
    path.write_bytes(f'{",".join(HEADER)}\r\n1,2,3,4,5,"{long}",7\r\na,b\r\n\r\n'.encode())
    with caplog.at_level(logging.WARNING, logger="ufo"):
        got_rows, got = parsed(path, tmp_path / "o.pq")
    assert "straddl" in caplog.text and "Python's csv module" in caplog.text
    assert (got_rows, got) == expected(path)


def test_a_quote_never_closed_keeps_the_rest_of_the_file_as_csv_reads_it(tmp_path, caplog):
    path = tmp_path / "in.csv"
    path.write_bytes(f'{",".join(HEADER)}\r\n1,2,3,4,5,6,7\r\n"open,1,2\r\nmore\r\n'.encode())
    with caplog.at_level(logging.WARNING, logger="ufo"):
        got_rows, got = parsed(path, tmp_path / "o.pq")
    assert "never closed" in caplog.text
    assert (got_rows, got) == expected(path)
    assert got_rows[-1][-1] == '"open,1,2\r\nmore\r\n"'  # the line ends kept, as csv reads them


PEAK = """
import sys
import pyarrow as pa
from spark_jobs import records
header = sys.argv[2].split(",")
records.write_parquet(sys.argv[1], header, header, range(len(header)), sys.argv[1] + ".pq")
print(pa.default_memory_pool().max_memory())
"""


def test_memory_stays_flat_as_the_file_grows(tmp_path):
    """pyarrow's peak allocation for a file four times as large: about the same (bounded)."""
    body = tmp_path / "body.csv"
    with open(body, "w", encoding="utf-8", newline="") as out:
        sample.write(out, sample.generate(50_000, sample.dt.date(2019, 3, 29), seed=1))
    head, _, rows = body.read_bytes().partition(b"\r\n")
    peaks = {}
    for times in (8, 32):  # 400,000 and 1,600,000 records
        path = tmp_path / f"x{times}.csv"
        path.write_bytes(head + b"\r\n" + rows * times)
        done = subprocess.run([sys.executable, "-c", PEAK, str(path), ",".join(HEADER)],
                              capture_output=True, text=True, check=True, timeout=300)  # fmt: skip
        peaks[times] = int(done.stdout.split()[-1])
    assert peaks[32] < 1.25 * peaks[8], peaks
    assert peaks[32] < (tmp_path / "x32.csv").stat().st_size / 2  # not the file in memory
