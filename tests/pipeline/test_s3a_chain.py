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

import csv
import datetime as dt
import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

from etl.tools import sample
from tests import reference
from tests.lakefiles import aggregate_counts
from tests.s3a import MotoS3, require_stand_in_jars, write_spark_conf_dir
from tests.support import REAL_2019, REAL_RUN_DATE, REPO, pipeline_env, run_luigi, shared_file

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


# --- the lake on the bucket ---------------------------------------------------------------


def manifest(client, dataset: str, day: str) -> dict | None:
    key = f"{PREFIX}/{dataset}/date={day}/_MANIFEST.json"
    if key not in keys(client, key):
        return None
    return json.loads(body(client, key))


def manifests(client, day: str) -> dict[str, bytes | None]:
    """The raw bytes of the date's manifests and top ten: what a reader would follow."""
    found = {}
    for rel in (f"raw/date={day}/_MANIFEST.json", f"aggregated/date={day}/_MANIFEST.json",
                f"top10/date={day}/top_states.csv"):  # fmt: skip
        key = f"{PREFIX}/{rel}"
        found[rel] = body(client, key) if key in keys(client, key) else None
    return found


def read_aggregate(client, document: dict) -> Counter:
    """(month, state) -> sightings from the Parquet parts an aggregated manifest lists."""
    return aggregate_counts(
        body(client, f"{PREFIX}/{rel}") for rel in document["files"]["aggregated"]
    )


def check_published(client, day: str, expected: reference.Expected) -> dict:
    """The date's outputs on the bucket are complete, consistent and equal to ``expected``."""
    all_keys = set(keys(client, f"{PREFIX}/"))
    raw = manifest(client, "raw", day)
    agg = manifest(client, "aggregated", day)
    assert raw and agg, sorted(all_keys)[:50]
    for document, dataset in ((raw, "raw"), (agg, "aggregated")):
        assert document["format"] == 1 and document["dataset"] == dataset
        assert document["run_date"] == day
        for kind, paths in document["files"].items():
            for rel in paths:
                # Every listed file is an immutable attempt file, present on the bucket.
                assert rel.startswith(f"_attempts/{document['attempt']}/"), (kind, rel)
                assert f"{PREFIX}/{rel}" in all_keys, f"{dataset} lists a missing {rel}"
    assert set(agg["files"]) >= {"aggregated", "rejects", "report"}
    assert agg["files"]["aggregated"] and len(agg["files"]["report"]) == 1
    # The figures of the data contract (the manifest may say more, e.g. the run date).
    assert {k: agg["quality"].get(k) for k in expected.quality()} == expected.quality()
    report = json.loads(body(client, f"{PREFIX}/{agg['files']['report'][0]}"))
    assert {k: report[k] for k in expected.quality()} == expected.quality()
    assert read_aggregate(client, agg) == +expected.by_month_state
    top = body(client, f"{PREFIX}/top10/date={day}/top_states.csv").decode("utf-8")
    assert top_from_csv(top) == expected_top(expected)
    return agg


def top_from_csv(text: str) -> dict[str, list[tuple[str, int]]]:
    got: dict[str, list[tuple[str, int]]] = {}
    for row in csv.DictReader(io.StringIO(text)):
        got.setdefault(row["period"], []).append((row["state"], int(row["sightings"])))
        assert int(row["rank"]) == len(got[row["period"]])
    return got


def expected_top(expected: reference.Expected) -> dict[str, list[tuple[str, int]]]:
    top = {"all": expected.top_ten()}
    top.update({month: expected.top_ten(month) for month in expected.months()})
    return top


QUALITY_COLUMNS = ("input", "header_repeat", "duplicate", "after_run_date", "valid", "rejected")


def database_rows(url: str, day: str) -> tuple[dict, tuple | None]:
    """(period -> [(state, sightings)], quality columns) of ``day`` in the database."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT period, rank, state, sightings FROM top_states "
                    "WHERE run_date = :d ORDER BY period, rank"
                ),
                {"d": day},
            ).all()
            quality = conn.execute(
                sa.text(f"SELECT {', '.join(QUALITY_COLUMNS)} FROM ufo_runs WHERE run_date = :d"),
                {"d": day},
            ).one_or_none()
    except sa.exc.ProgrammingError:  # no tables yet
        return {}, None
    finally:
        engine.dispose()
    got: dict[str, list[tuple[str, int]]] = {}
    for period, _, state, sightings in rows:
        got.setdefault(period, []).append((state, sightings))
    return got, (tuple(quality) if quality else None)


def check_database(url: str, day: str, expected: reference.Expected) -> None:
    top, quality = database_rows(url, day)
    assert top == expected_top(expected)
    assert quality == tuple(expected.quality()[k] for k in QUALITY_COLUMNS)


def s3a_env(moto: MotoS3, conf_dir: Path, database_url: str, source: str, **extra) -> dict:
    return pipeline_env(
        f"s3://{BUCKET}/{PREFIX}", database_url, source,
        SPARK_CONF_DIR=str(conf_dir), **moto.env(), **extra,
    )  # fmt: skip


# --- (b) the whole chain through s3a:// -------------------------------------------------------


def test_s3a_whole_chain_on_the_real_index_matches_the_reference(
    bucket, moto, conf_dir, database_url
):
    source = shared_file(REAL_2019.name)
    expected = reference.classify(source.read_bytes(), REAL_RUN_DATE)
    env = s3a_env(moto, conf_dir, database_url, str(source))
    start = time.monotonic()
    result = run_luigi("TopStatesToDatabase", "--date", DAY, "--local-scheduler", env=env)
    elapsed = time.monotonic() - start
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    print(f"\nwhole chain through s3a:// on the 2019 index: {elapsed:.0f} s")
    check_published(bucket, DAY, expected)
    check_database(database_url, DAY, expected)


# --- (c) the commit protocol on S3 ------------------------------------------------------------

FIRST, SECOND = dt.date(2019, 3, 29), dt.date(2019, 3, 30)


def write_sample(path: Path, seed: int, rows: int = 3000) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as out:
        sample.write(out, sample.generate(rows, until=SECOND, seed=seed))
    return path


def attempts_of(
    client, dataset: str, datasets: dict[str, str] | None = None
) -> dict[str, list[str]]:
    """attempt id -> its object names, for the attempts of ``dataset``.

    ``datasets`` caches each attempt's dataset (its _ATTEMPT.json never changes) across calls.
    """
    datasets = {} if datasets is None else datasets
    found: dict[str, list[str]] = {}
    for key in keys(client, f"{PREFIX}/_attempts/"):
        attempt, _, name = key.removeprefix(f"{PREFIX}/_attempts/").partition("/")
        found.setdefault(attempt, []).append(name)
    for attempt, names in found.items():
        if attempt not in datasets and "_ATTEMPT.json" in names:
            info = json.loads(body(client, f"{PREFIX}/_attempts/{attempt}/_ATTEMPT.json"))
            datasets[attempt] = info.get("dataset", "")
    return {a: names for a, names in found.items() if datasets.get(a) == dataset}


def kill_while_spark_writes(client, command: list[str], env: dict, timeout: float = 300) -> str:
    """Run ``command``; SIGKILL its process group once Spark's first file is in a new attempt.

    Returns the interrupted attempt. Fails if the aggregate was published first (too late).
    """
    datasets: dict[str, str] = {}
    before = set(attempts_of(client, "aggregated", datasets))
    process = subprocess.Popen(
        command, env=env, cwd=REPO, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            now = attempts_of(client, "aggregated", datasets)
            new = {a: n for a, n in now.items() if a not in before}
            writing = [a for a, names in new.items() if set(names) - {"_ATTEMPT.json"}]
            if writing:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)
                assert manifest(client, "aggregated", SECOND.isoformat()) is None, (
                    "the run published its aggregate before it could be interrupted"
                )
                return writing[0]
            if process.poll() is not None:
                pytest.fail(
                    f"the run ended (exit {process.returncode}) before Spark wrote anything:\n"
                    + process.stderr.read().decode()[-3000:]
                )
            time.sleep(0.1)
        pytest.fail(f"Spark wrote nothing under {PREFIX}/_attempts/ within {timeout:.0f} s")
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
    raise AssertionError("unreachable")


def test_s3a_interrupted_run_publishes_nothing_and_forced_rerun_replaces_the_date(
    bucket, moto, conf_dir, database_url, tmp_path
):
    source_a = write_sample(tmp_path / "a.csv", seed=11)
    source_b = write_sample(tmp_path / "b.csv", seed=12, rows=2500)
    expected_a = reference.classify(source_a.read_bytes(), FIRST)
    expected_b = reference.classify(source_b.read_bytes(), FIRST)
    assert expected_a.top_ten() != expected_b.top_ten()  # the replacement is visible
    first = FIRST.isoformat()

    env_a = s3a_env(moto, conf_dir, database_url, str(source_a))
    result = run_luigi("TopStatesToDatabase", "--date", first, "--local-scheduler", env=env_a)
    assert result.returncode == 0, result.stderr[-4000:]
    agg_a = check_published(bucket, first, expected_a)
    check_database(database_url, first, expected_a)
    published_a = manifests(bucket, first)

    # The next date's run, killed (luigi, spark-submit, its JVM and Python workers at once)
    # while Spark writes its attempt: nothing of that date is published or loaded, and the
    # first date's outputs are untouched, readable and still agree with each other.
    command = [sys.executable, "-m", "luigi", "--module", "etl", "TopStatesToDatabase",
               "--date", SECOND.isoformat(), "--local-scheduler", "--no-lock"]  # fmt: skip
    killed = kill_while_spark_writes(bucket, command, env_a)
    assert manifest(bucket, "aggregated", SECOND.isoformat()) is None
    assert f"{PREFIX}/top10/date={SECOND}/top_states.csv" not in keys(bucket, f"{PREFIX}/top10/")
    assert database_rows(database_url, SECOND.isoformat()) == ({}, None)
    assert manifests(bucket, first) == published_a
    check_published(bucket, first, expected_a)
    check_database(database_url, first, expected_a)
    assert killed != agg_a["attempt"]

    # A forced re-run of the first date from another source replaces all of its outputs:
    # raw, aggregate, top ten and the database rows, each now from source B.
    env_b = s3a_env(moto, conf_dir, database_url, str(source_b))
    result = run_luigi(
        "TopStatesToDatabase", "--date", first, "--local-scheduler", "--force-upstream", env=env_b
    )
    assert result.returncode == 0, result.stderr[-4000:]
    published_b = manifests(bucket, first)
    assert all(published_b[rel] != published_a[rel] for rel in published_a), "not all replaced"
    agg_b = check_published(bucket, first, expected_b)
    check_database(database_url, first, expected_b)
    assert agg_b["attempt"] != agg_a["attempt"]
    raw_b = manifest(bucket, "raw", first)
    assert (
        raw_b["attempt"] != json.loads(published_a[f"raw/date={first}/_MANIFEST.json"])["attempt"]
    )
