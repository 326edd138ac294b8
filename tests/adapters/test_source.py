"""Fetching and decoding the raw report index: paths, URLs, gzip, encodings, bad files."""

from __future__ import annotations

import gzip
import http.server
import os
import threading
from pathlib import Path

import pytest

from etl.adapters import source
from etl.errors import SourceError

HEADER = "Date / Time,City,State,Shape,Duration,Summary,Posted\r\n"
ROW = '6/13/11 22:18,Ardenvoir,WA,Light,1 minute,"a light, \u201cbright\u201d\nwhite",6/20/11\r\n'


def transcode(path: Path, name: str | None = None) -> tuple[str, source.Ingested]:
    """The UTF-8 copy and what ``ingest`` found; the Parquet lands beside the source."""
    copy = Path(str(path) + ".copy")
    with source.fetched(str(path)) as local:
        info = source.ingest(local, str(copy), str(path) + ".parquet", name or str(path))
    with open(copy, encoding="utf-8", newline="") as text:
        return text.read(), info


def records(path: Path) -> list[dict]:
    import pyarrow.parquet as pq

    return pq.read_table(str(path) + ".parquet").to_pylist()


def test_the_raw_zone_keeps_every_field_exactly(tmp_path):
    path = tmp_path / "in.csv"
    path.write_bytes(
        (HEADER + ROW + " 1/1/19 , x ,,,,,\r\n" + "\r\n" + "1/1/19,short\r\n").encode()
    )
    _, info = transcode(path)
    assert (info.records, info.blank_lines, info.layout) == (3, 1, "index")
    got = records(path)
    assert got[0] == {"Date / Time": "6/13/11 22:18", "City": "Ardenvoir", "State": "WA",
                      "Shape": "Light", "Duration": "1 minute",
                      "Summary": "a light, \u201cbright\u201d\nwhite", "Posted": "6/20/11",
                      "_record": ""}  # fmt: skip
    assert got[1]["Date / Time"] == " 1/1/19 " and got[1]["City"] == " x "
    assert got[1]["_record"] == ""  # seven fields, empty ones included: the header's width
    # A short record: its fields as far as they go, and the whole record as it came.
    assert got[2] == {"Date / Time": "1/1/19", "City": "short", "State": "", "Shape": "",
                      "Duration": "", "Summary": "", "Posted": "", "_record": "1/1/19,short"}  # fmt: skip
    assert info.ragged == 1


def test_columns_in_any_order_extra_ones_left_out_and_the_first_of_a_name_wins(tmp_path):
    path = tmp_path / "in.csv"
    header = "Extra,posted,STATE,Summary,Duration,Shape,City,Date / Time,state\r\n"
    path.write_bytes((header + "e,6/20/11,WA,s,d,Light,Town,6/13/11 1:00,ON\r\n").encode())
    _, info = transcode(path)
    assert info.columns == (
        "Date / Time",
        "City",
        "STATE",
        "Shape",
        "Duration",
        "Summary",
        "posted",
    )
    [got] = records(path)
    assert got["STATE"] == "WA" and "Extra" not in got


def test_the_export_layout_is_recognised(tmp_path):
    path = tmp_path / "in.csv"
    header = "details,date,city,state,country,shape,summary,report_date,posted_date,image\r\n"
    path.write_bytes(
        (header + "u,6/13/2011 22:18,Town,WA,USA,,s,6/14/2011,6/20/2011,Y\r\n").encode()
    )
    _, info = transcode(path)
    assert info.layout == "export" and records(path)[0]["country"] == "USA"


def test_fields_longer_than_the_csv_modules_default_limit_are_read(tmp_path):
    path = tmp_path / "in.csv"
    long = "x" * 200_000
    path.write_bytes((HEADER + f'1/1/19,T,CA,,,"{long}",1/2/19\r\n').encode())
    transcode(path)
    assert records(path)[0]["Summary"] == long


def test_utf8_is_copied_unchanged(tmp_path):
    path = tmp_path / "in.csv"
    path.write_bytes((HEADER + ROW + ROW).encode("utf-8"))
    text, info = transcode(path)
    assert text == HEADER + ROW + ROW
    assert (info.encoding, info.records) == ("utf-8", 2)


def test_a_bom_is_dropped(tmp_path):
    path = tmp_path / "in.csv"
    path.write_bytes(b"\xef\xbb\xbf" + (HEADER + ROW).encode("utf-8"))
    assert transcode(path)[0] == HEADER + ROW


@pytest.mark.parametrize(
    ("codec", "bom", "name"),
    [
        ("utf-16-le", b"\xff\xfe", "utf-16"),
        ("utf-16-be", b"\xfe\xff", "utf-16"),
        ("utf-32-le", b"\xff\xfe\x00\x00", "utf-32"),
        ("utf-32-be", b"\x00\x00\xfe\xff", "utf-32"),
    ],
)
def test_utf16_and_utf32_with_a_bom_are_decoded(tmp_path, codec, bom, name):
    # Excel's "Unicode text" and PowerShell's default output: UTF-16 with a byte-order mark.
    path = tmp_path / "in.csv"
    path.write_bytes(bom + (HEADER + ROW).encode(codec))
    text, info = transcode(path)
    assert text == HEADER + ROW  # the lake's copy is UTF-8
    assert (info.encoding, info.layout, info.records) == (name, "index", 1)
    assert records(path)[0]["Summary"] == "a light, \u201cbright\u201d\nwhite"


def test_a_bom_of_an_encoding_the_file_is_not_in_is_named(tmp_path):
    path = tmp_path / "in.csv"
    path.write_bytes(
        b"\xff\xfe" + (HEADER + ROW).encode("utf-16-le") + b"\x00\xd8"
    )  # a lone surrogate
    with pytest.raises(SourceError) as err:
        transcode(path, "in.csv")
    assert "in.csv starts with a UTF-16 byte-order mark but is not valid UTF-16" in str(err.value)
    assert "Save it again as UTF-8" in str(err.value)


def test_utf16_without_a_bom_is_refused_by_name_not_as_missing_columns(tmp_path):
    path = tmp_path / "in.csv"
    path.write_bytes((HEADER + ROW).encode("utf-16-le"))
    with pytest.raises(SourceError) as err:
        transcode(path, "in.csv")
    assert "looks like UTF-16 or UTF-32 without a byte-order mark" in str(err.value)
    assert "no known layout" not in str(err.value) and "also needs" not in str(err.value)


def test_a_record_wider_or_narrower_than_the_header_is_kept_whole(tmp_path):
    # The header's width counts its extra columns: a record as wide as the header is no ragged
    # one, though the layout takes fewer of its fields.
    path = tmp_path / "in.csv"
    header = "Date / Time,City,State,Shape,Duration,Summary,Posted,Link\r\n"
    rows = ('1/1/19,T,CA,,,s,1/2/19,http://x\r\n'
            '1/1/19,T,CA,,,"s, quoted",1/2/19,http://x,one,"two\nlines"\r\n'
            '1/1/19,T,CA,,,s,1/2/19\r\n')  # fmt: skip
    path.write_bytes((header + rows).encode())
    _, info = transcode(path)
    got = records(path)
    assert [r["_record"] for r in got] == [
        "",
        '1/1/19,T,CA,,,"s, quoted",1/2/19,http://x,one,"two\nlines"',
        "1/1/19,T,CA,,,s,1/2/19",
    ]
    assert got[1]["Summary"] == "s, quoted" and got[2]["Posted"] == "1/2/19"
    assert (info.records, info.ragged) == (3, 2)


def test_non_utf8_is_decoded_as_windows_1252(tmp_path):
    row = "1/1/19 1:00,Town,CA,Light,1 min,\x93quoted\x94 \x85 caf\xe9 \x81,1/2/19\r\n"
    path = tmp_path / "in.csv"
    path.write_bytes(HEADER.encode() + row.encode("latin-1"))
    text, info = transcode(path)
    assert info.encoding == "cp1252"
    # 0x93/0x94/0x85 are Windows-1252 punctuation; 0x81 is undefined there and kept as U+0081.
    assert "\u201cquoted\u201d \u2026 caf\u00e9 \u0081" in text


def test_gzip_is_recognised_by_content_not_name(tmp_path):
    path = tmp_path / "in.csv"  # no .gz suffix
    path.write_bytes(gzip.compress((HEADER + ROW).encode("utf-8")))
    assert transcode(path)[0] == HEADER + ROW


def test_file_urls(tmp_path):
    path = tmp_path / "in.csv"
    path.write_bytes((HEADER + ROW).encode())
    with source.fetched(path.as_uri()) as local:
        assert Path(local).read_bytes() == (HEADER + ROW).encode()


def test_http_download(tmp_path):
    (tmp_path / "index.csv.gz").write_bytes(gzip.compress((HEADER + ROW).encode()))
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(tmp_path), **k)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/index.csv.gz"
        with source.fetched(url) as local:
            assert Path(local).read_bytes() == (HEADER + ROW).encode()
        with pytest.raises(SourceError, match="HTTP 404"):
            with source.fetched(url + ".missing"):
                pass
    finally:
        server.shutdown()


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "is empty"),
        (HEADER.encode(), "has a header but no reports"),
        (b"Date / Time,City,State\r\n1/1/19,x,CA\r\n", "header 'Date / Time', 'City', 'State': the closest layout, NUFORC report index, also needs 'Shape', 'Duration', 'Summary', 'Posted'."),
        (b"date,city,state,country\r\n1/1/2019,x,CA,USA\r\n", "header 'date', 'city', 'state', 'country': the closest layout, NUFORC site export, also needs 'details', 'shape', 'summary', 'report_date', 'posted_date', 'image'."),
    ],
)  # fmt: skip
def test_bad_files_say_what_is_wrong(tmp_path, content, message):
    path = tmp_path / "in.csv"
    path.write_bytes(content)
    with pytest.raises(SourceError) as err:
        transcode(path)
    assert message in str(err.value)


def test_header_is_matched_ignoring_case_and_spaces(tmp_path):
    path = tmp_path / "in.csv"
    path.write_bytes((" date / time , CITY,state,Shape,Duration,Summary,POSTED\r\n" + ROW).encode())
    assert transcode(path)[1].records == 1


def test_missing_file_and_unknown_scheme(tmp_path):
    with pytest.raises(SourceError, match="does not exist: set UFO_SOURCE"):
        with source.fetched(str(tmp_path / "nope.csv")):
            pass
    with pytest.raises(SourceError, match="unsupported scheme 'ftp'"):
        with source.fetched("ftp://example.invalid/x.csv"):
            pass


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 1 << 20])
def test_the_utf8_check_judges_as_pythons_codec_at_every_chunk_boundary(
    tmp_path, monkeypatch, chunk
):
    import random

    monkeypatch.setattr(source, "_UTF8_CHUNK", chunk)
    rng = random.Random(chunk)
    pieces = ["a", "\n", "é", "€", "𝄞", "\u00a0"]  # 1, 2, 3 and 4 bytes in UTF-8
    raw = [b"\xe9", b"\xc3", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc0\x80", b"\xf0\x9d"]
    path = tmp_path / "in.csv"
    for _ in range(300):
        data = b"".join(
            rng.choice(raw) if rng.random() < 0.05 else rng.choice(pieces).encode()
            for _ in range(rng.randint(0, 12))
        )
        path.write_bytes(data)
        try:
            data.decode("utf-8")
            want = True
        except UnicodeDecodeError:
            want = False
        assert source.valid_utf8(str(path)) is want, data


def test_a_local_csv_is_read_where_it_is_and_must_not_change_meanwhile(tmp_path):
    # ingest copies it into the lake: no second copy of its bytes is written on the way.
    path = tmp_path / "in.csv"
    path.write_bytes((HEADER + ROW).encode())
    with source.fetched(str(path)) as local:
        assert os.path.samefile(local, path)
    with pytest.raises(SourceError, match="changed while it was read: run again"):
        with source.fetched(str(path)) as local:
            with open(path, "ab") as more:  # a download still being written, say
                more.write(ROW.encode())
    # Replaced by another file of the same size and time: its inode tells.
    with pytest.raises(SourceError, match="changed while it was read"):
        with source.fetched(str(path)) as local:
            stat = os.stat(path)
            (tmp_path / "new.csv").write_bytes(path.read_bytes())
            os.utime(tmp_path / "new.csv", ns=(stat.st_atime_ns, stat.st_mtime_ns))
            os.replace(tmp_path / "new.csv", path)
    # A compressed one is decompressed into a file of its own, removed afterwards.
    packed = tmp_path / "in.csv.gz"
    packed.write_bytes(gzip.compress((HEADER + ROW).encode()))
    with source.fetched(str(packed)) as local:
        assert not os.path.samefile(local, packed)
        assert Path(local).read_bytes() == (HEADER + ROW).encode()
    assert not os.path.exists(local)
