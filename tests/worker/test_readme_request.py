"""The documented run request (docs/how-to/run-requests.md), written as shown, then run by the worker."""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml

from etl.tools import sample
from tests.support import REPO, pipeline_env
from tests.worker.support import run_worker

pytestmark = [pytest.mark.integration, pytest.mark.spark]


def readme_request_commands() -> str:
    page = (REPO / "docs/how-to/run-requests.md").read_text()
    part = page.split("Write a request whole", 1)[1]
    return re.search(r"```sh\n(.*?)```", part, re.S).group(1)


def test_the_readme_request_written_then_renamed_is_run(tmp_path, database_url):
    import datetime as dt

    source = tmp_path / "index.csv"
    with open(source, "w", encoding="utf-8", newline="") as out:
        sample.write(out, sample.generate(3000, until=dt.date(2019, 3, 29), seed=2))
    lake = tmp_path / "lake"
    (lake / "requests").mkdir(parents=True)
    env = pipeline_env(str(lake), database_url, str(source))

    commands = readme_request_commands()
    written = subprocess.run(["bash", "-c", commands], env=env, cwd=tmp_path, timeout=60,
                             capture_output=True, text=True)  # fmt: skip
    assert written.returncode == 0, written.stderr
    assert [p.name for p in (lake / "requests").iterdir() if p.is_file()] == [
        "reload-2019-03-29.yaml"
    ]

    result = run_worker(env, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    done = yaml.safe_load((lake / "requests" / "reload-2019-03-29.done.yaml").read_text())
    assert done["status"] == "done" and done["exit_code"] == 0
    assert "force_upstream: true" in done["request"]
