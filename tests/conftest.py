"""Fixtures shared by the test folders: real PostgreSQL, a moto S3 server, the real data's
independent reading. Helpers (paths, ports, pipeline runs) are in tests/support.py."""

from __future__ import annotations

import os

import pytest

from tests.support import (
    BUCKET,
    CREDENTIALS,
    REAL_2019,
    REAL_RUN_DATE,
    free_port,
    new_database,
    shared_file,
)

# Every server a test starts binds to loopback; Spark too.
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")


@pytest.fixture(scope="session")
def postgres(tmp_path_factory):
    """A real PostgreSQL server for the session (private, on 127.0.0.1)."""
    from etl.errors import DatabaseError
    from etl.tools.localpg import LocalPostgres, _bin

    try:
        _bin("initdb")
    except DatabaseError as err:
        pytest.skip(str(err))
    server = LocalPostgres(tmp_path_factory.mktemp("postgres")).start()
    yield server
    server.discard()


@pytest.fixture
def database_url(postgres) -> str:
    """A new, empty database on the session's server."""
    return new_database(postgres)


@pytest.fixture(scope="session")
def real_expected():
    """The independent computation of the 2019 file's results for the real run's date."""
    from tests import reference

    return reference.classify(shared_file(REAL_2019.name).read_bytes(), REAL_RUN_DATE)


@pytest.fixture(scope="module")
def s3_endpoint():
    """A moto S3 server on 127.0.0.1 for the module; its URL."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3(s3_endpoint, monkeypatch):
    """A boto3 client of the moto server with an empty ``BUCKET``, emptied and deleted after."""
    import boto3

    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    client.create_bucket(Bucket=BUCKET)
    yield client
    for obj in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        client.delete_object(Bucket=BUCKET, Key=obj["Key"])
    client.delete_bucket(Bucket=BUCKET)
