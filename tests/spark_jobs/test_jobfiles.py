"""The Spark job's own file work, without Spark's JVM: local paths and S3 (a moto server)."""

from __future__ import annotations

import json

import pytest

from spark_jobs import jobfiles
from tests.support import BUCKET

FILES = {
    "aggregated/date=2019-03-29/part-00000.parquet": b"p" * 10,
    "aggregated/date=2019-03-29/_SUCCESS": b"",
    "aggregated/date=2019-03-29/.part-00000.parquet.crc": b"c",
    "rejects/since=2019-03-01/part-00000.csv": b"r" * 7,
    "_temporary/0/part-00001.csv": b"t",
    "rejects-old/part-00000.csv": b"o" * 100,  # shares a prefix with rejects/: not in it
}
DATA = ["aggregated/date=2019-03-29/part-00000.parquet", "rejects-old/part-00000.csv",
        "rejects/since=2019-03-01/part-00000.csv"]  # fmt: skip


def check(root: str) -> None:
    for rel, data in FILES.items():
        jobfiles.write_bytes(f"{root}/{rel}", data)
    assert jobfiles.list_files(root) == DATA  # no _SUCCESS, checksum or temporary file
    assert jobfiles.list_files(f"{root}/aggregated") == [DATA[0].removeprefix("aggregated/")]
    assert jobfiles.list_files(f"{root}/nothing-here") == []
    assert jobfiles.total_bytes([f"{root}/{DATA[0]}"]) == 10
    assert jobfiles.total_bytes([f"{root}/rejects", f"{root}/{DATA[0]}"]) == 17
    jobfiles.write_bytes(f"{root}/_job.json", json.dumps({"a": 1}).encode())


def test_local_paths_and_file_uris(tmp_path):
    check(str(tmp_path / "out"))
    assert json.loads((tmp_path / "out" / "_job.json").read_text()) == {"a": 1}
    check(f"file://{tmp_path}/uri")
    assert (tmp_path / "uri" / DATA[2]).read_bytes() == b"r" * 7


def test_s3_and_s3a_uris_through_boto3(s3, s3_endpoint, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    jobfiles._client.cache_clear()
    try:
        check(f"s3a://{BUCKET}/lake/_attempts/a")
        body = s3.get_object(Bucket=BUCKET, Key="lake/_attempts/a/_job.json")["Body"].read()
        assert json.loads(body) == {"a": 1}
        assert jobfiles.list_files(f"s3://{BUCKET}/lake/_attempts/a/rejects") == [
            DATA[2].removeprefix("rejects/")
        ]
    finally:
        jobfiles._client.cache_clear()


def test_other_schemes_are_refused_with_what_to_use():
    with pytest.raises(ValueError, match="local paths or s3:// or s3a:// URIs"):
        jobfiles.list_files("hdfs://namenode/lake")
