"""The compose stack, shared by the modules of tests/compose: built and brought up once.

test_compose_e2e.py checks the stack after its run on ``up``; test_compose_faults.py then
injects faults into the same stack. ``docker compose down -v`` runs in any case at the end.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import time

import pytest

from etl.tools import proxyuser
from tests import s3a
from tests.compose.support import (
    BUCKET,
    E2E_REPORT,
    LOCAL_JARS,
    PROXY_ENTRY,
    SCALE,
    Stack,
    aggregate_tracking_urls,
    wait_for_pipeline,
    why_no_docker,
)
from tests.support import REAL_2019, REAL_RUN_DATE, shared_file

# A second user, whose password nobody knows: the proxy takes a list.
BOB = proxyuser.entry("bob", secrets.token_urlsafe(18))


# Package scope: torn down after the last test of tests/compose, before the rest of the suite.
@pytest.fixture(scope="package")
def stack(tmp_path_factory):
    reason = why_no_docker()
    if reason:
        if os.environ.get("UFO_REQUIRE_DOCKER") == "1":
            pytest.fail(f"UFO_REQUIRE_DOCKER=1 but {reason}")
        pytest.skip(reason)
    source = shared_file(REAL_2019.name)
    env = {
        "POSTGRES_USER": "ufo",
        "POSTGRES_PASSWORD": secrets.token_hex(12),
        "POSTGRES_DB": "ufo",
        "UFO_READONLY_USER": "ufo_reader",
        "UFO_READONLY_PASSWORD": secrets.token_hex(12),
        "S3_ACCESS_KEY_ID": "ufo-ci",
        "S3_SECRET_ACCESS_KEY": secrets.token_hex(12),
        "S3_BUCKET": BUCKET,
        # The console's own S3 user (its keys and the stack's one-shot create-console-user).
        "CONSOLE_S3_ACCESS_KEY_ID": "ufo-console",
        "CONSOLE_S3_SECRET_ACCESS_KEY": secrets.token_hex(12),
        # What the proxy proves its requests to the console with.
        "CONSOLE_PROXY_KEY": secrets.token_hex(24),
        # Spark's RPC authenticated and encrypted, as on several hosts (.ci/docker-compose.ci.yml).
        "SPARK_AUTH_SECRET": secrets.token_hex(24),
        "COMPOSE_PROFILES": "minio,connect,proxy",
        # Single quotes: compose leaves the hashes' $ signs alone (as the README says).
        "PROXY_USERS": f"'{PROXY_ENTRY} {BOB}'",
        # The tests log in wrongly on purpose, route after route, from 127.0.0.1; the limit on
        # failures per address is tested outside Docker (tests/proxy).
        "PROXY_LOGIN_FAILURES": "1000",
        "UFO_DATA_DIR": str(source.parent),
        "UFO_SOURCE": f"/data/{source.name}",
        "RUN_DATE": REAL_RUN_DATE.isoformat(),
        "CI_HOSTNAME": socket.gethostname(),
    }
    # The S3A test stand-in jars, where the S3A_JARS=local build of the CI override takes them.
    s3a.copy_jars(s3a.require_stand_in_jars(), LOCAL_JARS)
    env_file = tmp_path_factory.mktemp("compose") / "ci.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    env_file.chmod(0o600)
    s = Stack(project=f"ufo-e2e-{os.getpid()}", env_file=env_file, env=env)
    started = time.monotonic()
    try:
        s.timed("build", "build", timeout=1800)
        # Two of each scalable service: the Spark workers both join, the Luigi workers share
        # the run through luigid and nothing runs twice.
        s.timed("up", "up", "--detach", *SCALE, timeout=900)
        wait_for_pipeline(s)
        # luigid's links of the first run, as it finished: luigid forgets a done task's link
        # when a later run meets the task complete (Luigi's scheduler), as a re-run from
        # TopTenStates does (the console's test).
        s.first_run_tracking_urls = aggregate_tracking_urls(REAL_RUN_DATE)
        yield s
    finally:
        logs = s.compose("logs", "--no-color", "--tail", "300", check=False, timeout=120)
        log_file = env_file.parent / "compose.log"
        log_file.write_text(logs.stdout + logs.stderr)
        start_down = time.monotonic()
        s.compose(
            "down", "--volumes", "--remove-orphans", "--timeout", "30", check=False, timeout=300
        )
        s.timings["down"] = round(time.monotonic() - start_down, 1)
        s.timings["total"] = round(time.monotonic() - started, 1)
        E2E_REPORT.parent.mkdir(exist_ok=True)
        E2E_REPORT.write_text(json.dumps({"timings_s": s.timings, "logs": str(log_file)}, indent=2))
        print(f"\ncompose e2e timings (s): {s.timings}; logs in {log_file}")
