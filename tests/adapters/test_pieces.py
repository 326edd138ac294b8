"""A source cut into pieces at record boundaries: read piece by piece, it gives the records the
whole file gives, checked against Python's csv module (the reference reader)."""

from __future__ import annotations

import csv
import io
import random
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from etl.adapters import pieces
from spark_jobs import records
from tests.adapters.test_records import HEADER, TRICKY, expected
from tests.support import REAL_2019, shared_file


def csv_records(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


def cut(path: Path, every: int) -> list[bytes]:
    data = path.read_bytes()
    starts = pieces.record_starts(str(path), every)
    return [data[a:b] for a, b in zip(starts, [*starts[1:], len(data)])]


#: Text that makes quoting hard: commas, quotes that open fields and quotes that do not,
#: escaped quotes, every line end, a quote left open at the end.
ALPHABET = ["a", "b", ",", '"', '""', "\n", "\r\n", "\r", " ", 'x"y', '"q"', "é", '",']


@pytest.mark.parametrize("seed", range(4))
def test_random_text_cut_anywhere_reads_as_the_whole_file(tmp_path, monkeypatch, seed):
    rng = random.Random(seed)
    path = tmp_path / "in.csv"
    for _ in range(400):
        text = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 80)))
        path.write_bytes(text.encode("utf-8"))
        monkeypatch.setattr(pieces, "CHUNK", rng.choice([1, 2, 3, 7, 1 << 20]))
        parts = cut(path, rng.choice([1, 2, 5, 30]))
        assert b"".join(parts) == text.encode("utf-8")
        assert all(parts) or text == ""
        got = [r for part in parts for r in csv_records(part)]
        assert got == csv_records(text.encode("utf-8")), (text, parts)


def test_every_record_boundary_is_found_and_nothing_inside_a_quoted_field(tmp_path):
    path = tmp_path / "in.csv"
    path.write_bytes(b'h1,h2\r\n"a\nb",c\r\nd,"e\r\n""f"""\n"g\n')
    assert cut(path, 1) == [b"h1,h2\r\n", b'"a\nb",c\r\n', b'd,"e\r\n""f"""\n', b'"g\n']


def test_a_quote_that_opens_no_field_is_text(tmp_path):
    path = tmp_path / "in.csv"
    path.write_bytes(b'h\n5" tall\nx\n"ab"c"\nd\n')  # csv reads both as text, not as quoting
    assert cut(path, 1) == [b"h\n", b'5" tall\n', b"x\n", b'"ab"c"\n', b"d\n"]


def test_a_quote_never_closed_keeps_the_rest_of_the_file_in_one_piece(tmp_path):
    path = tmp_path / "in.csv"
    path.write_bytes(b'h\na\n"open\nb\nc\n')
    assert cut(path, 1) == [b"h\n", b"a\n", b'"open\nb\nc\n']


def test_pieces_are_at_least_every_bytes_long(tmp_path):
    path = tmp_path / "in.csv"
    path.write_bytes(b"".join(b"%05d\n" % i for i in range(1000)))  # 6 bytes a record
    parts = cut(path, 100)
    assert all(len(p) == 102 for p in parts[:-1]) and 0 < len(parts[-1]) <= 102


@pytest.mark.parametrize("line_end", ["\r\n", "\n"])
@pytest.mark.parametrize("python", [False, True], ids=["pyarrow", "reference"])
def test_pieces_read_by_the_reader_give_the_whole_files_records_and_counts(
    tmp_path, monkeypatch, line_end, python
):
    path = tmp_path / "in.csv"
    path.write_bytes(line_end.join(TRICKY).encode())
    want_rows, want = expected(path)
    if python:  # as when pyarrow gives up on a piece (a record longer than a block, say)
        monkeypatch.setattr(records, "_write_parquet_arrow", _unparsable)
    for every in (1, 7, 40, 1 << 20):
        rows, blank, ragged = [], 0, 0
        for i, part in enumerate(cut(path, every)):
            (tmp_path / "piece.csv").write_bytes(part)
            out = tmp_path / f"piece-{every}-{i}.parquet"
            written = records.write_piece(
                str(tmp_path / "piece.csv"), len(HEADER), HEADER, range(7), str(out), i == 0
            )
            table = pq.read_table(out)
            rows += [tuple(r.values()) for r in table.to_pylist()]
            blank, ragged = blank + written.blank_lines, ragged + written.ragged
            assert written.records == table.num_rows
        assert sorted(rows) == want_rows, every
        assert records.Written(len(rows), blank, ragged) == want, every


@pytest.mark.shared_data
def _unparsable(*args, **kwargs):
    raise records._Unparsable("as if pyarrow could not parse it")


def test_the_real_index_cut_in_pieces_reads_as_csv_reads_it():
    path = shared_file(REAL_2019.name)
    parts = cut(path, 1 << 20)
    assert len(parts) == 16
    whole = csv_records(path.read_bytes())
    assert [r for part in parts for r in csv_records(part)] == whole
    assert len(whole) - 1 == 119_727  # SOURCE.md's data records (its bare LFs inside quotes)
