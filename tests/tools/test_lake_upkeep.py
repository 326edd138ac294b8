"""The lake's upkeep: ``python -m etl.tools.lake sweep`` removes what nothing names (never a file
a manifest names), ``check`` finds the first named file that is missing or of another size."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys

from etl.adapters.lake import LocalLake
from etl.adapters.manifests import Manifests
from tests.pipeline.support import put_aggregate
from tests.support import REPO

D1, D2 = dt.date(2019, 3, 28), dt.date(2019, 3, 29)


def lake_tool(*args: str, storage) -> subprocess.CompletedProcess:
    env = {**os.environ, "UFO_STORAGE": str(storage)}
    return subprocess.run(
        [sys.executable, "-m", "etl.tools.lake", *args],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def named_files(root) -> set[str]:
    found = set()
    for manifest in root.glob("*/date=*/_MANIFEST.json"):
        for paths in json.loads(manifest.read_text())["files"].values():
            found |= set(paths)
    return found


def test_the_sweep_removes_superseded_and_killed_attempts_never_a_named_file(tmp_path):
    root = tmp_path / "lake"
    lake = LocalLake(str(root))
    put_aggregate(lake, D1, 1_000)
    superseded = json.loads((root / f"aggregated/date={D1}/_MANIFEST.json").read_text())["attempt"]
    put_aggregate(lake, D1, 1_100)  # a re-run of the date whose old attempt was never retired
    put_aggregate(lake, D2, 1_200)
    killed = Manifests(lake).new_attempt("aggregated", [D2])  # a run killed before publishing
    lake.write_text(f"{killed}/aggregated/date={D2}/part-0.parquet", "half written")
    leftover = root / f"aggregated/date={D2}/.tmp-abc123"  # a rename that never happened
    leftover.write_text("{")
    named = named_files(root)
    assert all((root / p).exists() for p in named)

    kept = lake_tool("sweep", storage=root)  # the default retention: all of it is too recent
    assert kept.returncode == 0, kept.stderr
    assert "0 attempt(s) and 0 leftover file(s) removed" in kept.stdout
    assert (root / "_attempts" / superseded).exists() and leftover.exists()

    swept = lake_tool("sweep", "--retention-hours", "0", storage=root)
    assert swept.returncode == 0, swept.stderr
    assert "2 attempt(s) and 1 leftover file(s) removed" in swept.stdout, swept.stdout
    assert not (root / "_attempts" / superseded).exists()
    assert not (root / killed).exists() and not leftover.exists()
    assert all((root / p).exists() for p in named)
    assert lake_tool("check", storage=root).returncode == 0


def test_check_reports_the_first_missing_file_and_a_file_of_another_size(tmp_path):
    root = tmp_path / "lake"
    lake = LocalLake(str(root))
    put_aggregate(lake, D1, 1_000)
    put_aggregate(lake, D2, 1_200)
    fine = lake_tool("check", storage=root)
    assert fine.returncode == 0, fine.stderr
    assert "lake check: 2 manifests, 2 files named, all present at their sizes" in fine.stdout

    manifest = json.loads((root / f"aggregated/date={D2}/_MANIFEST.json").read_text())
    part = manifest["files"]["aggregated"][0]
    assert manifest["sizes"][part] == (root / part).stat().st_size
    (root / part).write_bytes((root / part).read_bytes()[:-10])  # cut short
    cut = lake_tool("check", storage=root)
    assert cut.returncode == 1
    assert cut.stderr.startswith(f"lake: error: {root / part} (")
    assert "the manifest recorded" in cut.stderr and f"aggregated/date={D2}" in cut.stderr

    (root / part).unlink()
    gone = lake_tool("check", storage=root)
    assert gone.returncode == 1
    assert f"{root / part} (missing) is named by aggregated/date={D2}/_MANIFEST.json" in gone.stderr
    assert "--force-upstream" in gone.stderr


def test_check_and_sweep_on_an_s3_lake(s3, s3_endpoint, monkeypatch):
    from etl.adapters.lake import open_lake
    from etl.tools import lake as lake_module
    from tests.support import BUCKET

    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    lake = open_lake(f"s3://{BUCKET}/lake")
    put_aggregate(lake, D1, 1_000)
    put_aggregate(lake, D1, 1_100)  # the first attempt superseded, not retired
    manifest = Manifests(lake).read("aggregated", D1)
    part = manifest["files"]["aggregated"][0]
    assert manifest["sizes"][part] == lake.size(part) > 0
    said: list[str] = []
    assert lake_module.check(lake, said.append) is None
    assert lake_module.sweep(lake, dt.timedelta(0), said.append) == 1
    assert lake_module.check(lake, said.append) is None  # the named files were kept
    s3.delete_object(Bucket=BUCKET, Key=f"lake/{part}")
    problem = lake_module.check(lake, said.append)
    assert problem.startswith(f"s3://{BUCKET}/lake/{part} (missing)")
