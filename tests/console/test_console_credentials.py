"""The console's S3 user may use the lake's run requests and nothing else.

The stack gives the console an S3 user of its own with the policy of
docker-images/minio/console-policy.json.template (create-console-user, with MinIO). Here that
policy is tried on moto's S3 server with its IAM checks on (``INITIAL_NO_AUTH_ACTION_COUNT``):
an administrator made first, then the console's user with the policy as the stack renders it.
Through the product's own lake code, with the console's keys: run requests are written and
read (what the console does); anything else in the lake cannot be written or read.

Not tried here: the listing's limit to the requests prefix (the policy's ``s3:prefix``
condition). moto ignores IAM conditions and refuses the signature of any listing whose prefix
holds a ``/``; MinIO and AWS apply it.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request

import boto3
import pytest

from etl.adapters.lake import open_lake
from etl.errors import UfoError
from etl.worker.ops import draft, submit
from tests.support import REPO, free_port

BUCKET = "ufo-lake"
POLICY = REPO / "docker-images" / "minio" / "console-policy.json.template"
ADMIN = {"Version": "2012-10-17",
         "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}  # fmt: skip


@pytest.fixture(scope="module")
def checked_s3(tmp_path_factory):
    """A moto server that checks every request's keys against IAM after its first three (the
    administrator's user, policy and keys); its URL and the administrator's keys."""
    port = free_port()
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "3"}
    log = (tmp_path_factory.mktemp("moto") / "moto.log").open("wb")
    server = subprocess.Popen(
        [str(REPO / ".venv" / "bin" / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"{url}/moto-api/", timeout=2)
            break
        except OSError:
            assert time.monotonic() < deadline and server.poll() is None, "moto did not start"
            time.sleep(0.2)
    iam = boto3.client("iam", endpoint_url=url, region_name="us-east-1",
                       aws_access_key_id="x", aws_secret_access_key="x")  # fmt: skip
    iam.create_user(UserName="admin")
    iam.put_user_policy(UserName="admin", PolicyName="all", PolicyDocument=json.dumps(ADMIN))
    key = iam.create_access_key(UserName="admin")["AccessKey"]
    yield url, (key["AccessKeyId"], key["SecretAccessKey"])
    server.terminate()
    server.wait(10)


def client(service: str, url: str, keys: tuple[str, str]):
    return boto3.client(service, endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id=keys[0], aws_secret_access_key=keys[1])  # fmt: skip


@pytest.fixture(scope="module")
def console_lake(checked_s3):
    """The lake as the console opens it, with the console's keys; the administrator's S3."""
    url, admin = checked_s3
    s3 = client("s3", url, admin)
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="lake/raw/2019-03-29/_manifest.json", Body=b"{}")
    iam = client("iam", url, admin)
    iam.create_user(UserName="ufo-console")
    # The policy as create-console-user renders it.
    rendered = POLICY.read_text().replace("@BUCKET@", BUCKET)
    iam.put_user_policy(UserName="ufo-console", PolicyName="ufo-console", PolicyDocument=rendered)
    key = iam.create_access_key(UserName="ufo-console")["AccessKey"]
    with pytest.MonkeyPatch.context() as patch:
        # boto3's default session keeps the credentials it first found (another test's): a
        # new one reads these.
        patch.setattr(boto3, "DEFAULT_SESSION", None)
        for name, value in (("AWS_ACCESS_KEY_ID", key["AccessKeyId"]),
                            ("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"]),
                            ("AWS_ENDPOINT_URL", url), ("AWS_DEFAULT_REGION", "us-east-1")):  # fmt: skip
            patch.setenv(name, value)
        yield open_lake(f"s3://{BUCKET}/lake"), s3


def test_the_consoles_user_writes_and_reads_run_requests(console_lake):
    lake, s3 = console_lake
    name = submit(lake, draft("rerun", "2019-03-29", by="alice"))
    written = s3.get_object(Bucket=BUCKET, Key=f"lake/requests/{name}")["Body"].read().decode()
    assert "requested_by: alice" in written
    s3.put_object(Bucket=BUCKET, Key="lake/requests/old.log", Body=b"done: ReadUFOs\n")
    assert lake.read_text(f"requests/{name}") == written
    assert lake.read_text("requests/old.log") == "done: ReadUFOs\n"
    assert lake.exists("requests/old.log") and lake.size("requests/old.log") == 15


@pytest.mark.parametrize("key", ["lake/raw/2019-03-29/part-0.parquet", "lake/top10/x.json",
                                 "lake/requestsX/evil.yaml", "other/requests/evil.yaml"])  # fmt: skip
def test_the_consoles_user_cannot_write_elsewhere(console_lake, key):
    lake, s3 = console_lake
    rel = key.removeprefix("lake/")
    with pytest.raises((UfoError, Exception)) as refused:
        if key.startswith("lake/"):
            lake.write_text(rel, "x")
        else:
            boto3.client("s3").put_object(Bucket=BUCKET, Key=key, Body=b"x")
    assert "AccessDenied" in str(refused.value) or "denied" in str(refused.value).lower()
    listed = s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])
    assert key not in {o["Key"] for o in listed}


def test_the_consoles_user_cannot_read_the_rest_of_the_lake(console_lake):
    lake, _s3 = console_lake
    with pytest.raises(Exception) as refused:
        lake.read_text("raw/2019-03-29/_manifest.json")
    assert "denied" in str(refused.value).lower() or "403" in str(refused.value)
