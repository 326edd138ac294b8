"""The virtualenv's Spark launchers work without activating it (etl/tools/venvspark.py, run by
the Makefile after every pip install)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from etl.tools import venvspark
from tests.support import REPO

VENV_BIN = REPO / ".venv" / "bin"


def test_a_launcher_gets_spark_home_and_the_driver_python_once(tmp_path):
    script = tmp_path / "spark-submit"
    script.write_text('#!/usr/bin/env bash\n\nsource "$(dirname "$0")"/find-spark-home\n')
    (tmp_path / "spark-submit.cmd").write_text("rem find-spark-home\n")
    assert venvspark.launchers(tmp_path) == [script]
    lines = venvspark.header(Path("/opt/a $b/pyspark"), Path("/opt/venv/bin/python"))
    assert venvspark.patch(script, lines)
    assert not venvspark.patch(script, lines)  # a second run changes nothing
    text = script.read_text()
    assert text.startswith("#!/usr/bin/env bash\n# Added by etl/tools/venvspark.py")
    assert 'export SPARK_HOME="${SPARK_HOME:-/opt/a \\$b/pyspark}"\n' in text


@pytest.mark.spark
@pytest.mark.skipif(not (VENV_BIN / "spark-submit").exists(), reason="no .venv: run make first")
def test_spark_submit_runs_with_a_path_that_lacks_the_virtualenv():
    subprocess.run([str(VENV_BIN / "python"), str(REPO / "etl/tools/venvspark.py")], check=True)
    env = {k: v for k, v in os.environ.items() if k not in ("SPARK_HOME", "VIRTUAL_ENV")}
    env["PATH"] = os.pathsep.join(
        p for p in os.environ["PATH"].split(os.pathsep) if Path(p).resolve() != VENV_BIN.resolve()
    )
    ran = subprocess.run([str(VENV_BIN / "spark-submit"), "--version"], env=env, cwd="/",
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert "version 4." in ran.stderr + ran.stdout
    # The shell's Python is the virtualenv's, whatever python3 PATH finds.
    probe = subprocess.run(
        ["bash", "-c", f'. <(sed -n 2,4p {VENV_BIN / "pyspark"}); echo "$PYSPARK_DRIVER_PYTHON"'],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert Path(probe.stdout.strip()) == VENV_BIN / "python"
