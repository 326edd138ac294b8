"""The lake on S3, against a real S3 endpoint: a moto server on 127.0.0.1."""

from __future__ import annotations

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from tests.support import BUCKET, free_port, run_luigi, s3_env

pytestmark = pytest.mark.integration

HEADER = "Date / Time,City,State,Shape,Duration,Summary,Posted\r\n"


def _keys(client) -> list[str]:
    return sorted(o["Key"] for o in client.list_objects_v2(Bucket=BUCKET).get("Contents", []))


def test_read_ufos_writes_the_raw_copy_to_s3(s3, s3_endpoint, tmp_path):
    src = tmp_path / "in.csv"
    src.write_bytes(
        HEADER.encode()
        + "1/1/19 1:00,Town,CA,Light,1 min,\u201chi\u201d,1/2/19\r\n".encode("cp1252")
    )
    result = run_luigi("ReadUFOs", "--date", "2019-03-29", "--local-scheduler",
                       env=s3_env(s3_endpoint, None, str(src)))  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    manifest = json.loads(
        s3.get_object(Bucket=BUCKET, Key="lake/raw/date=2019-03-29/_MANIFEST.json")["Body"].read()
    )
    [copy] = manifest["files"]["source"]
    body = s3.get_object(Bucket=BUCKET, Key=f"lake/{copy}")["Body"].read()
    assert manifest["encoding"] == "cp1252"
    assert (
        body.decode("utf-8") == HEADER + "1/1/19 1:00,Town,CA,Light,1 min,\u201chi\u201d,1/2/19\r\n"
    )


def test_a_source_on_s3(s3, s3_endpoint):
    s3.put_object(
        Bucket=BUCKET,
        Key="incoming/index.csv",
        Body=(HEADER + "1/1/19,T,CA,,,,1/2/19\r\n").encode(),
    )
    result = run_luigi("ReadUFOs", "--date", "2019-03-29", "--local-scheduler",
                       env=s3_env(s3_endpoint, None, f"s3://{BUCKET}/incoming/index.csv"))  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    keys = _keys(s3)
    manifest = json.loads(
        s3.get_object(Bucket=BUCKET, Key="lake/raw/date=2019-03-29/_MANIFEST.json")["Body"].read()
    )
    assert manifest["layout"] == "index" and manifest["records"] == 1
    for rel in manifest["files"]["records"] + manifest["files"]["source"]:
        assert f"lake/{rel}" in keys


def test_top_ten_and_load_from_an_s3_lake(s3, s3_endpoint, database_url):
    """TopTenStates and TopStatesToDatabase over S3, from an aggregate placed as Spark writes it."""
    day = "date=2019-03-29"
    aggregate = io.BytesIO()
    pq.write_table(pa.table({"month": ["2019-01", "2019-01", "2019-02", "2019-02"],
                             "state": ["CA", "NY", "CA", "TX"], "sightings": [5, 7, 4, 1]}), aggregate)  # fmt: skip
    quality = {"input": 17, "header_repeat": 0, "duplicate": 0, "after_run_date": 0, "valid": 17,
               "rejected": 0, "rejected_by_reason": {"columns": 0, "posted": 0, "sighting_date": 0,
                                                           "state": 0}}  # fmt: skip
    manifest = {"format": 1, "dataset": "aggregated", "run_date": "2019-03-29", "attempt": "a1",
                "files": {"aggregated": ["_attempts/a1/aggregated/part-00000-x.parquet"], "rejects": [],
                          "report": []},
                "quality": quality, "layout": "index", "source": "s3://incoming/index.csv"}  # fmt: skip
    for key, body in {
        f"lake/raw/{day}/_MANIFEST.json": json.dumps({"files": {}, "attempt": "a0"}).encode(),
        "lake/_attempts/a1/aggregated/part-00000-x.parquet": aggregate.getvalue(),
        f"lake/aggregated/{day}/_MANIFEST.json": json.dumps(manifest).encode(),
    }.items():
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    result = run_luigi("TopStatesToDatabase", "--date", "2019-03-29", "--local-scheduler",
                       env=s3_env(s3_endpoint, database_url, "unused"))  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    top = (
        s3.get_object(Bucket=BUCKET, Key=f"lake/top10/{day}/top_states.csv")["Body"].read().decode()
    )
    assert top.splitlines() == [
        "period,rank,state,sightings",
        "all,1,CA,9", "all,2,NY,7", "all,3,TX,1",
        "2019-01,1,NY,7", "2019-01,2,CA,5",
        "2019-02,1,CA,4", "2019-02,2,TX,1",
    ]  # fmt: skip
    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT period, rank, state, sightings FROM top_states ORDER BY 1, 2")
        ).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [
        ("2019-01", 1, "NY", 7), ("2019-01", 2, "CA", 5),
        ("2019-02", 1, "CA", 4), ("2019-02", 2, "TX", 1),
        ("all", 1, "CA", 9), ("all", 2, "NY", 7), ("all", 3, "TX", 1),
    ]  # fmt: skip


def test_a_missing_bucket_says_to_create_it(s3_endpoint, monkeypatch, tmp_path):
    result = run_luigi("ReadUFOs", "--date", "2019-03-29", "--local-scheduler",
                       env=s3_env(s3_endpoint, None, str(tmp_path / "x.csv"), storage="s3://no-such-bucket/lake"))  # fmt: skip
    assert result.returncode == 35, result.stderr[-3000:]
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("ufo: error: ")]
    assert lines and "bucket 'no-such-bucket' does not exist: create it" in lines[0]


def test_an_unreachable_endpoint_says_so(tmp_path):
    closed = f"http://127.0.0.1:{free_port()}"
    env = s3_env(closed, None, str(tmp_path / "x.csv"), storage="s3://ufo-lake/lake")
    env["AWS_MAX_ATTEMPTS"] = "1"
    result = run_luigi("ReadUFOs", "--date", "2019-03-29", "--local-scheduler", env=env)
    assert result.returncode == 35, result.stderr[-3000:]
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("ufo: error: ")]
    assert lines and f"Cannot reach the S3 endpoint ({closed})" in lines[0]


@pytest.mark.spark
def test_a_source_read_on_the_cluster_into_an_s3_lake(s3, s3_endpoint, tmp_path):
    """UFO_INGEST=cluster on an S3 lake: the executors fetch their pieces and put their Parquet
    files with boto3; the records are those the reader here finds."""
    src = tmp_path / "in.csv"
    rows = [f'{m}/{d}/18 21:00,Town {d},TX,Light,5 min,"a, \n""b""",{m}/{d}/18\r\n'
            for m in range(1, 13) for d in range(1, 29)]  # fmt: skip
    src.write_bytes((HEADER + "".join(rows) + "\r\n1/1/19,short\r\n").encode())
    env = s3_env(s3_endpoint, None, str(src))
    result = run_luigi("ReadUFOs", "--date", "2019-03-29", "--local-scheduler",
                       env={**env, "UFO_INGEST": "cluster", "UFO_INGEST_PIECE_SIZE": "4KB",
                            "SPARK_MASTER": "local[2]", "SPARK_LOCAL_IP": "127.0.0.1"})  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    manifest = json.loads(
        s3.get_object(Bucket=BUCKET, Key="lake/raw/date=2019-03-29/_MANIFEST.json")["Body"].read()
    )
    assert manifest["pieces"] > 4 and len(manifest["files"]["records"]) == manifest["pieces"]
    assert (manifest["records"], manifest["blank_lines"], manifest["ragged"]) == (12 * 28 + 1, 1, 1)
    got = []
    for rel in manifest["files"]["records"]:
        body = s3.get_object(Bucket=BUCKET, Key=f"lake/{rel}")["Body"].read()
        got += pq.read_table(io.BytesIO(body)).to_pylist()
    assert sorted(r["City"] for r in got if not r["_record"]) == sorted(
        f"Town {d}" for _ in range(12) for d in range(1, 29)
    )
    assert [r["_record"] for r in got if r["_record"]] == ["1/1/19,short"]
    assert all(r["Summary"] == 'a, \n"b"' for r in got if not r["_record"])
