"""`make demo`'s program end to end: sample data, a private PostgreSQL, local Spark."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from etl.tools.localpg import LocalPostgres
from tests.support import REPO

pytestmark = [pytest.mark.integration, pytest.mark.spark]


def test_demo_runs_the_pipeline_and_prints_the_top_ten(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("UFO_")}
    env["PYTHONPATH"] = str(REPO)
    result = subprocess.run(
        [sys.executable, "-m", "etl.tools.demo", "--date", "2019-03-29", "--rows", "3000"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    try:
        assert result.returncode == 0, result.stderr[-4000:]
        out = result.stdout
        assert "on a generated sample of 3000 reports" in out
        top = [m.groups() for m in re.finditer(r"^\s*(\d+)\. ([A-Z]{2})\s+([\d,]+)$", out, re.M)]
        assert [int(rank) for rank, _, _ in top] == list(range(1, 11))
        assert top[0][1] == "CA"  # the generator's most reported state
        lake = tmp_path / ".run" / "lake"
        assert f"top10      {lake}/top10/date=2019-03-29" in out
        # Complete: Spark's _SUCCESS flag, or the manifest of the lake layout being introduced.
        aggregated = lake / "aggregated/date=2019-03-29"
        assert (aggregated / "_SUCCESS").exists() or (aggregated / "_MANIFEST.json").exists()
        assert "make producto" in out
        env = (tmp_path / ".run" / "demo.env").read_text()
        url = re.search(r"^UFO_DATABASE_URL=(postgresql\S+)$", env, re.M).group(1)
        assert f"\nPRODUCTO_DATABASE_URL={url}\n" in env
        assert f"\nUFO_STORAGE={lake}\n" in env
        assert f"\nUFO_LOG_DIR={tmp_path / '.run' / 'logs'}\n" in env
        assert "\nRUN_DATE=2019-03-29\n" in env
    finally:
        LocalPostgres(Path(tmp_path / ".run" / "postgres")).discard()
