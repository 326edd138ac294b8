"""`python -m etl.tools.jvmcache` makes a class archive Java really maps for Spark's classes, from
the install that made it and from a second install of the same Spark."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from etl.adapters import classarchive
from etl.adapters.spark import default_spark_submit
from tests.support import REPO

pytestmark = [pytest.mark.spark]

NOOP = "from pyspark.sql import SparkSession\nSparkSession.builder.getOrCreate().stop()\n"


def test_the_archive_is_made_once_and_spark_loads_its_classes_from_it(tmp_path, monkeypatch):
    monkeypatch.setenv("UFO_JVM_CACHE", str(tmp_path / "cache"))
    env = dict(os.environ, PYTHONPATH=str(REPO), PYSPARK_PYTHON=sys.executable)
    make = [sys.executable, "-m", "etl.tools.jvmcache", "--if-missing"]
    made = subprocess.run(make, env=env, capture_output=True, text=True, timeout=900)
    assert made.returncode == 0, made.stdout + made.stderr
    [archive] = (tmp_path / "cache").glob("spark-home-*/driver-*.jsa")
    assert "Spark driver class archive" in made.stdout
    again = subprocess.run(make, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and again.stdout == ""  # made once

    # A second install of the same Spark (a second clone's virtualenv): its own copy of the
    # files, at another path and written now. It is matched to the archive, not given another.
    pyspark_home = classarchive.spark_home(default_spark_submit())
    clone = tmp_path / "clone"
    for part in classarchive.HOME_PARTS:
        shutil.copytree(pyspark_home / part, clone / part, copy_function=shutil.copy)
    submit = str(clone / "bin" / "spark-submit")
    second = subprocess.run([*make, "--spark-submit", submit], env=env, capture_output=True,
                            text=True, timeout=120)  # fmt: skip
    assert second.returncode == 0 and second.stdout == "", second.stdout + second.stderr
    assert classarchive.driver_archive(submit, create=False).path == archive

    # -Xshare:on fails the JVM if the archive cannot be mapped; the class log says where each
    # class came from.
    app = tmp_path / "noop.py"
    app.write_text(NOOP)
    loads = tmp_path / "classes.log"
    options = classarchive.driver_java_options(submit)
    assert options == [f"-XX:SharedArchiveFile={archive}"]
    command = [
        submit, "--master", "local[1]",
        "--driver-java-options", f"{options[0]} -Xshare:on -Xlog:class+load=info:file={loads}",
        str(app),
    ]  # fmt: skip
    run_env = dict(env, **classarchive.driver_environment(submit))
    run = subprocess.run(command, env=run_env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    spark_classes = [
        line for line in loads.read_text().splitlines() if " org.apache.spark." in line
    ]
    shared = [line for line in spark_classes if "shared objects file (top)" in line]
    # Most of them (measured: two thirds); classes made at run time (lambdas, proxies, generated
    # code) are never in an archive.
    assert spark_classes and len(shared) > 0.5 * len(spark_classes), spark_classes[:5]
