"""Fixtures of the pipeline's tests: the whole chain run once on the real 2019 file."""

from __future__ import annotations

import datetime as dt
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import (
    REAL_2019,
    REAL_RUN_DATE,
    new_database,
    pipeline_env,
    run_luigi,
    shared_file,
)


@dataclass(frozen=True)
class PipelineRun:
    """One finished run of the whole chain: where its outputs are."""

    storage: Path
    database_url: str
    run_date: dt.date
    source: Path
    result: subprocess.CompletedProcess


@pytest.fixture(scope="session")
def real_run(tmp_path_factory, postgres) -> PipelineRun:
    """The whole chain once, on the real 2019 NUFORC file, local Spark, the session's database."""
    source = shared_file(REAL_2019.name)
    url = new_database(postgres, "real_run")
    storage = tmp_path_factory.mktemp("real-lake")
    # As `make demo` runs it: its Spark application's event log kept (tests/pipeline/
    # test_readable_runs.py reads it); a progress line a second.
    env = pipeline_env(str(storage), url, str(source), UFO_PROGRESS_SECONDS="1",
                       UFO_SPARK_EVENTS=str(storage.parent / "real-spark-events"))  # fmt: skip
    result = run_luigi(
        "TopStatesToDatabase", "--date", REAL_RUN_DATE.isoformat(), "--local-scheduler", env=env
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return PipelineRun(storage, url, REAL_RUN_DATE, source, result)
