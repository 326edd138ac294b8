"""The local lake's file access (the S3 lake is exercised against moto in tests/pipeline and
tests/worker)."""

from __future__ import annotations

import pytest

from etl.adapters.lake import open_lake


def test_read_text_returns_the_bytes_as_written(tmp_path):
    # A rejected row's quoted field may hold \r\n: it must reach the database as it came.
    lake = open_lake(str(tmp_path / "lake"))
    text = 'Date / Time,reason\r\n"two\r\nlines",state\n"one\rline",state\n'
    lake.write_text("rejects/part-0.csv", text)
    assert (tmp_path / "lake" / "rejects" / "part-0.csv").read_bytes() == text.encode()
    assert lake.read_text("rejects/part-0.csv") == text


def test_a_copy_is_a_hard_link_that_a_later_write_does_not_change(tmp_path):
    lake = open_lake(str(tmp_path / "lake"))
    lake.write_text("top10/date=2019-03-01/top_states.csv", "period,rank\nall,1\n")
    lake.copy("top10/date=2019-03-01/top_states.csv", "top10/date=2019-03-02/top_states.csv")
    first, second = (tmp_path / "lake" / f"top10/date=2019-03-0{d}/top_states.csv" for d in (1, 2))
    assert second.read_text() == "period,rank\nall,1\n"
    assert first.stat().st_ino == second.stat().st_ino  # one copy of the bytes on disk
    lake.write_text("top10/date=2019-03-01/top_states.csv", "period,rank\nall,2\n")  # a re-run
    assert second.read_text() == "period,rank\nall,1\n"
    assert sorted(p.name for p in second.parent.iterdir()) == ["top_states.csv"]  # no temp file


def test_writes_make_their_folders_keep_files_private_and_leave_no_temporary_file(tmp_path):
    lake = open_lake(str(tmp_path / "lake"))
    source = tmp_path / "source.csv"
    source.write_bytes(b"a,b\n1,2\n")
    lake.write_bytes("raw/date=2019-03-01/deep/er/records.bin", b"\x00\x01")
    lake.put_file(str(source), "raw/date=2019-03-02/source.csv")
    lake.write_bytes("raw/date=2019-03-02/source.csv", b"again")  # over a file: replaced
    root = tmp_path / "lake" / "raw"
    assert (root / "date=2019-03-01/deep/er/records.bin").read_bytes() == b"\x00\x01"
    assert (root / "date=2019-03-02/source.csv").read_bytes() == b"again"
    files = [p for p in root.rglob("*") if p.is_file()]
    assert sorted(p.name for p in files) == ["records.bin", "source.csv"]
    assert {oct(p.stat().st_mode & 0o777) for p in files} == {"0o600"}


def test_a_write_that_fails_leaves_nothing_and_says_what_is_missing(tmp_path):
    lake = open_lake(str(tmp_path / "lake"))
    lake.write_text("top10/date=2019-03-01/checks.json", "{}")
    folder = tmp_path / "lake" / "top10" / "date=2019-03-01"
    with pytest.raises(FileNotFoundError, match="no-such.csv"):
        lake.put_file(str(tmp_path / "no-such.csv"), "top10/date=2019-03-01/top_states.csv")
    with pytest.raises(FileNotFoundError):
        lake.copy("top10/date=2019-02-28/top_states.csv", "top10/date=2019-03-01/top_states.csv")
    with pytest.raises(FileNotFoundError):  # a missing source into a new folder: still missing
        lake.copy("top10/date=2019-02-28/top_states.csv", "top10/date=2019-03-09/top_states.csv")
    assert sorted(p.name for p in folder.iterdir()) == ["checks.json"]


def test_a_copy_where_hard_links_fail_copies_the_bytes(tmp_path, monkeypatch):
    import errno
    import os

    lake = open_lake(str(tmp_path / "lake"))
    lake.write_text("top10/date=2019-03-01/top_states.csv", "period,rank\nall,1\n")

    def no_links(src, dst):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_links)
    lake.copy("top10/date=2019-03-01/top_states.csv", "top10/date=2019-03-02/top_states.csv")
    copied = tmp_path / "lake" / "top10" / "date=2019-03-02" / "top_states.csv"
    assert copied.read_text() == "period,rank\nall,1\n"
    assert sorted(p.name for p in copied.parent.iterdir()) == ["top_states.csv"]


def test_an_s3_copy_is_made_by_the_server(s3, s3_endpoint, monkeypatch):
    from tests.support import BUCKET

    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    lake = open_lake(f"s3://{BUCKET}/lake")
    lake.write_text("top10/date=2019-03-01/top_states.csv", "period,rank\nall,1\n")
    lake.copy("top10/date=2019-03-01/top_states.csv", "top10/date=2019-03-02/top_states.csv")
    body = s3.get_object(Bucket=BUCKET, Key="lake/top10/date=2019-03-02/top_states.csv")["Body"]
    assert body.read() == b"period,rank\nall,1\n"


def _heads(lake) -> None:
    """A long log's first bytes and whole size, a short one's whole, an empty one's nothing."""
    log = "".join(f"line {n}\n" for n in range(10_000))
    lake.write_text("requests/r.log", log)
    lake.write_text("requests/empty.log", "")
    assert lake.read_head("requests/r.log", 100) == (log.encode()[:100], len(log))
    assert lake.read_head("requests/r.log", 10**9) == (log.encode(), len(log))
    assert lake.read_head("requests/empty.log", 100) == (b"", 0)


def test_the_head_of_a_file_and_its_size(tmp_path):
    import os

    import pytest

    from etl.adapters.lake.base import NotAFile

    lake = open_lake(str(tmp_path / "lake"))
    _heads(lake)
    os.symlink("/etc/passwd", tmp_path / "lake" / "requests" / "link.log")
    with pytest.raises(NotAFile):
        lake.read_head("requests/link.log", 100)


def test_the_head_of_an_s3_object_and_its_size(s3, s3_endpoint, monkeypatch):
    from tests.support import BUCKET

    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    _heads(open_lake(f"s3://{BUCKET}/lake"))


def test_a_run_on_a_local_lake_does_not_import_s3s_client(tmp_path):
    """Luigi's `--module etl` imports the whole pipeline; boto3 and Luigi's S3 module (about
    0.1 s of every run) come in only when a lake on S3 is opened."""
    import subprocess
    import sys

    probe = (
        "import sys, etl\n"
        "from etl.adapters.lake import open_lake\n"
        f"open_lake({str(tmp_path)!r}).write_text('a/b.txt', 'x')\n"
        "before = sorted(m for m in ('boto3', 'luigi.contrib.s3') if m in sys.modules)\n"
        "from etl.adapters.lake import S3Lake\n"
        "lake = open_lake('s3://bucket/prefix')\n"
        "print(before, type(lake) is S3Lake, 'boto3' in sys.modules)\n"
    )
    found = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                           timeout=60)  # fmt: skip
    assert found.returncode == 0, found.stderr
    assert found.stdout.split("\n")[0] == "[] True True"
