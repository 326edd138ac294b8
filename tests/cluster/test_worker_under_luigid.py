"""Run requests against a real luigid: a failure ends at once, a disabled date is explained, and
a forced request re-enables it and runs."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import sys
import time

import pytest
import yaml

from tests.cluster.support import LOOPBACK, cluster_env
from tests.support import REPO

pytestmark = [pytest.mark.integration, pytest.mark.spark, pytest.mark.shared_data]

DAY = dt.date(2019, 3, 21)  # the newest reports in the small source are posted 3/21/19


def worker_once(luigid, env: dict) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "etl.worker", "--once", "--scheduler-host", LOOPBACK,
         "--scheduler-port", str(luigid.port)],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    return result, time.monotonic() - started


def result_of(requests, stem: str) -> dict:
    [path] = [p for p in requests.glob(f"{stem}.*.yaml")]
    return {"status": path.name.split(".")[-2], **yaml.safe_load(path.read_text())}


@pytest.mark.timeout(420)
def test_a_failed_request_ends_at_once_and_a_disabled_date_is_explained_then_forced(
    luigid_factory, database_url, small_source, tmp_path
):
    # Production's retry delay: a worker kept alive would wait five minutes before its retry.
    luigid = luigid_factory(scheduler={"retry_delay": 300, "retry_count": 2,
                                       "disable_window": 3600, "disable_persist": 3600})  # fmt: skip
    lake = tmp_path / "lake"
    requests = lake / "requests"
    requests.mkdir(parents=True)
    env = cluster_env(lake, database_url, small_source, None)
    env.pop("UFO_LOCAL_SCHEDULER", None)
    missing = tmp_path / "incoming" / "nuforc.csv"
    bad = f"task: TopStatesToDatabase\nparams: {{date: {DAY}}}\nenv: {{UFO_SOURCE: {missing}}}\n"

    # Two failures, each ending at once with its reason (no wait for luigid's retries).
    for stem in ("first", "second"):
        (requests / f"{stem}.yaml").write_text(bad)
        result, took = worker_once(luigid, env)
        assert result.returncode == 1 and took < 90, (took, result.stdout[-3000:])
        found = result_of(requests, stem)
        assert found["status"] == "error" and "does not exist" in found["error"], found
    assert list(luigid.families("DISABLED")) == ["ReadUFOs"]  # two failures: disabled

    # The date's ReadUFOs is disabled: a plain request is told so, and how to run it anyway.
    good = f"task: TopStatesToDatabase\nparams: {{date: {DAY}}}\n"
    (requests / "plain.yaml").write_text(good)
    result, _ = worker_once(luigid, env)
    found = result_of(requests, "plain")
    assert found["status"] == "error"
    assert "luigid has disabled ReadUFOs" in found["error"] and "force: true" in found["error"]

    # A forced request re-enables it, runs, and loads the date.
    shutil.rmtree(tmp_path / "incoming", ignore_errors=True)
    (requests / "forced.yaml").write_text(
        f"task: TopStatesToDatabase\nparams: {{date: {DAY}, force_upstream: true}}\n"
    )
    result, _ = worker_once(luigid, env)
    assert result.returncode == 0, result.stdout[-4000:]
    assert result_of(requests, "forced")["status"] == "done"
    assert "re-enabled ReadUFOs" in result.stdout
    assert not luigid.families("DISABLED")
