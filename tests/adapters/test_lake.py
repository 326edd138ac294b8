"""The local lake's file access (the S3 lake is exercised against moto in tests/pipeline and
tests/worker)."""

from __future__ import annotations

from etl.adapters.lake import open_lake


def test_read_text_returns_the_bytes_as_written(tmp_path):
    # A rejected row's quoted field may hold \r\n: it must reach the database as it came.
    lake = open_lake(str(tmp_path / "lake"))
    text = 'Date / Time,reason\r\n"two\r\nlines",state\n"one\rline",state\n'
    lake.write_text("rejects/part-0.csv", text)
    assert (tmp_path / "lake" / "rejects" / "part-0.csv").read_bytes() == text.encode()
    assert lake.read_text("rejects/part-0.csv") == text
