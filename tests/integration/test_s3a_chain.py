"""The lake on S3 read and written by Spark through ``s3a://``, against a moto server.

Uses the S3A TEST STAND-IN of tests/s3a.py (hadoop-aws 3.3.1 + SDK v1 bundle from PyPI, not the
product's 3.4.1 + SDK v2 pair): ``pytest -k s3a`` runs these. A failure to get the jars fails
them (skip only with UFO_S3A_OPTIONAL=1).

* a Spark session writes and reads CSV and Parquet through ``s3a://``;
* the whole chain with ``UFO_STORAGE=s3://BUCKET/lake`` (Luigi via boto3, Spark via s3a) on the
  real 2019 index, checked against tests/reference.py and the lake's manifests on the bucket;
* the commit protocol on S3: a run killed while Spark writes its attempt publishes nothing, the
  previous outputs stay readable and consistent; a forced re-run from another source replaces
  every output of the date together.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import REAL_RUN_DATE
from tests.s3a import MotoS3, require_stand_in_jars, write_spark_conf_dir

pytestmark = [pytest.mark.integration, pytest.mark.spark]

BUCKET = "ufo-s3a"
PREFIX = "lake"
DAY = REAL_RUN_DATE.isoformat()


@pytest.fixture(scope="module")
def s3a_jars() -> list[Path]:
    return require_stand_in_jars()


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    server = MotoS3.start(log_path=tmp_path_factory.mktemp("moto") / "moto.log")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def conf_dir(tmp_path_factory, s3a_jars, moto) -> Path:
    return write_spark_conf_dir(tmp_path_factory.mktemp("spark-conf"), s3a_jars, moto.endpoint)


@pytest.fixture
def bucket(moto):
    """An empty bucket, deleted with its objects afterwards."""
    client = moto.client()
    client.create_bucket(Bucket=BUCKET)
    yield client
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=BUCKET):
        for obj in page.get("Contents", []):
            client.delete_object(Bucket=BUCKET, Key=obj["Key"])
    client.delete_bucket(Bucket=BUCKET)


def keys(client, prefix: str = "") -> list[str]:
    paginator = client.get_paginator("list_objects_v2")
    return sorted(
        obj["Key"]
        for page in paginator.paginate(Bucket=BUCKET, Prefix=prefix)
        for obj in page.get("Contents", [])
    )


def body(client, key: str) -> bytes:
    return client.get_object(Bucket=BUCKET, Key=key)["Body"].read()


# --- (a) Spark itself through s3a:// --------------------------------------------------------

SMOKE = textwrap.dedent(
    """
    import json, sys
    from pyspark.sql import SparkSession
    base = sys.argv[1]
    spark = SparkSession.builder.master("local[2]").appName("s3a-smoke").getOrCreate()
    rows = [("2019-01", "CA", 3), ("2019-01", "NY", 2), ("2019-02", "TX", 1)]
    df = spark.createDataFrame(rows, "month string, state string, sightings int")
    df.write.mode("overwrite").option("header", True).csv(base + "/csv")
    back = spark.read.option("header", True).schema(df.schema).csv(base + "/csv")
    back.write.mode("overwrite").parquet(base + "/parquet")
    again = spark.read.parquet(base + "/parquet")
    fs = spark._jvm.org.apache.hadoop.fs.Path(base).getFileSystem(
        spark._jsc.hadoopConfiguration())
    print("S3A-RESULT " + json.dumps({
        "csv": sorted(map(tuple, back.collect())),
        "parquet": sorted(map(tuple, again.collect())),
        "filesystem": fs.getClass().getName(),
    }))
    spark.stop()
    """
)


def test_s3a_smoke_spark_reads_and_writes_through_s3a(bucket, moto, conf_dir, tmp_path):
    script = tmp_path / "smoke.py"
    script.write_text(SMOKE)
    env = {
        **os.environ,
        **moto.env(),
        "SPARK_CONF_DIR": str(conf_dir),
        "SPARK_LOCAL_IP": "127.0.0.1",
    }
    result = subprocess.run(
        [sys.executable, str(script), f"s3a://{BUCKET}/smoke"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    [line] = [ln for ln in result.stdout.splitlines() if ln.startswith("S3A-RESULT ")]
    got = json.loads(line.removeprefix("S3A-RESULT "))
    rows = [["2019-01", "CA", 3], ["2019-01", "NY", 2], ["2019-02", "TX", 1]]
    assert got["csv"] == rows and got["parquet"] == rows
    assert got["filesystem"] == "org.apache.hadoop.fs.s3a.S3AFileSystem"
    written = keys(bucket, "smoke/")
    assert "smoke/csv/_SUCCESS" in written and "smoke/parquet/_SUCCESS" in written
    assert any(k.startswith("smoke/parquet/part-") and k.endswith(".parquet") for k in written)
