"""`python -m etl.tools.jvmcache` makes a class archive Java really maps for Spark's classes."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from etl.adapters import spark as spark_runtime
from tests.support import REPO

pytestmark = [pytest.mark.spark]

NOOP = "from pyspark.sql import SparkSession\nSparkSession.builder.getOrCreate().stop()\n"


def test_the_archive_is_made_once_and_spark_loads_its_classes_from_it(tmp_path, monkeypatch):
    monkeypatch.setenv("UFO_JVM_CACHE", str(tmp_path / "cache"))
    env = dict(os.environ, PYTHONPATH=str(REPO), PYSPARK_PYTHON=sys.executable)
    make = [sys.executable, "-m", "etl.tools.jvmcache", "--if-missing"]
    made = subprocess.run(make, env=env, capture_output=True, text=True, timeout=900)
    assert made.returncode == 0, made.stdout + made.stderr
    [archive] = (tmp_path / "cache").glob("spark-driver-*.jsa")
    assert "Spark driver class archive" in made.stdout
    again = subprocess.run(make, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and again.stdout == ""  # made once

    # -Xshare:on fails the JVM if the archive cannot be mapped; the class log says where each
    # class came from.
    app = tmp_path / "noop.py"
    app.write_text(NOOP)
    loads = tmp_path / "classes.log"
    options = spark_runtime.driver_java_options(spark_runtime.default_spark_submit())
    assert options == [f"-XX:SharedArchiveFile={archive}"]
    command = [
        spark_runtime.default_spark_submit(), "--master", "local[1]",
        "--driver-java-options", f"{options[0]} -Xshare:on -Xlog:class+load=info:file={loads}",
        str(app),
    ]  # fmt: skip
    run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    spark_classes = [
        line for line in loads.read_text().splitlines() if " org.apache.spark." in line
    ]
    shared = [line for line in spark_classes if "shared objects file (top)" in line]
    # Most of them (measured: two thirds); classes made at run time (lambdas, proxies, generated
    # code) are never in an archive.
    assert spark_classes and len(shared) > 0.5 * len(spark_classes), spark_classes[:5]
