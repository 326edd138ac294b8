"""The Spark driver's class archive: which one belongs to an installation, and when it is used.

Fake Java and Spark installations (real files in a temporary folder) stand in for the real
ones here: what is tested is the choice of home and archive, not Java
(tests/tools/test_jvm_archive.py makes a real one and maps it from a second install).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import luigi
import pytest

from etl.adapters import classarchive
from etl.pipeline import AggregateUFOsByState
from etl.tools import jvmcache

D = "2019-03-29"


def _spark(home: Path, sql: bytes = b"jar spark-sql") -> Path:
    """A Spark install at ``home``: two jars, a script, a Python library; its spark-submit."""
    (home / "bin").mkdir(parents=True)
    (home / "jars").mkdir()
    (home / "python" / "lib").mkdir(parents=True)
    (home / "jars" / "spark-core.jar").write_bytes(b"jar spark-core")
    (home / "jars" / "spark-sql.jar").write_bytes(sql)
    (home / "python" / "lib" / "pyspark.zip").write_bytes(b"zip")
    (home / "bin" / "spark-class").write_text("#!/bin/sh\n")
    submit = home / "bin" / "spark-submit"
    submit.write_text("#!/bin/sh\n")
    return submit


@pytest.fixture
def install(tmp_path, monkeypatch):
    """A Spark home with two jars and a spark-submit, a JAVA_HOME, and an empty cache."""
    submit = _spark(tmp_path / "spark")
    java_home = tmp_path / "java"
    (java_home / "bin").mkdir(parents=True)
    (java_home / "bin" / "java").write_text("#!/bin/sh\n")
    monkeypatch.setenv("JAVA_HOME", str(java_home))
    monkeypatch.delenv("SPARK_HOME", raising=False)
    monkeypatch.delenv("UFO_JVM_ARCHIVE", raising=False)
    monkeypatch.setenv("UFO_JVM_CACHE", str(tmp_path / "cache"))
    return submit


def test_installs_of_the_same_spark_share_one_home_and_one_archive(install, tmp_path):
    first = classarchive.driver_archive(str(install))
    assert first.home.parent == tmp_path / "cache" and first.path.parent == first.home
    # A second clone's virtualenv: the same files at another path, written at another time.
    time.sleep(0.01)
    other = _spark(tmp_path / "clone" / "spark")
    assert classarchive.driver_archive(str(other)) == first
    # The home holds the install's files, linked (no second copy on one file system).
    jar = first.home / "jars" / "spark-sql.jar"
    assert jar.read_bytes() == b"jar spark-sql"
    assert jar.stat().st_ino == (install.parent.parent / "jars" / "spark-sql.jar").stat().st_ino
    assert (first.home / "bin" / "spark-class").is_file()
    assert (first.home / "python" / "lib" / "pyspark.zip").is_file()
    # Another Spark (one jar's bytes differ, however its size and time): another home.
    upgraded = _spark(tmp_path / "upgraded" / "spark", sql=b"jar spark-SQL")
    assert classarchive.driver_archive(str(upgraded)).home != first.home
    # Another Java build: the same home, another archive.
    java = tmp_path / "java" / "bin" / "java"
    os.utime(java, ns=(1, 1))
    again = classarchive.driver_archive(str(install))
    assert again.home == first.home and again.path != first.path


def test_a_run_never_reads_the_jars_to_match_an_install_it_is_matched_once(install):
    assert classarchive.driver_archive(str(install), create=False) is None
    made = classarchive.driver_archive(str(install))
    assert classarchive.driver_archive(str(install), create=False) == made
    # A jar rewritten with another size: the install is another one, not matched yet.
    (install.parent.parent / "jars" / "spark-core.jar").write_bytes(b"jar spark-core 2")
    assert classarchive.driver_archive(str(install), create=False) is None


def test_no_java_or_no_jars_means_no_archive(install, monkeypatch, tmp_path):
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "nowhere"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert classarchive.driver_archive(str(install)) is None
    assert classarchive.driver_java_options(str(install)) == classarchive.NO_VERIFY
    assert classarchive.driver_environment(str(install)) == {}


def test_the_archive_is_used_only_when_it_exists_and_is_not_turned_off(install, monkeypatch):
    found = classarchive.driver_archive(str(install))
    assert classarchive.driver_java_options(str(install)) == classarchive.NO_VERIFY
    assert classarchive.driver_environment(str(install)) == {}
    found.path.write_bytes(b"archive")
    assert classarchive.driver_java_options(str(install)) == [f"-XX:SharedArchiveFile={found.path}"]
    assert classarchive.driver_environment(str(install)) == {"SPARK_HOME": str(found.home)}
    monkeypatch.setenv("UFO_JVM_ARCHIVE", "off")
    assert classarchive.driver_java_options(str(install)) == classarchive.NO_VERIFY
    assert classarchive.driver_environment(str(install)) == {}


def _command(install, monkeypatch, tmp_path, **spark):
    monkeypatch.setenv("UFO_STORAGE", str(tmp_path / "lake"))
    monkeypatch.setenv("SPARK_MASTER", "local[2]")
    config = luigi.configuration.get_config()
    saved = {k: config.get("spark", k, None) for k in ("spark_submit", *spark)}
    config.set("spark", "spark_submit", str(install))
    for key, value in spark.items():
        config.set("spark", key, value)
    try:
        return AggregateUFOsByState(date=luigi.DateParameter().parse(D)).spark_command()
    finally:
        for key, value in saved.items():
            if value is None:
                config.remove_option("spark", key)
            else:
                config.set("spark", key, value)


def test_the_spark_step_starts_its_driver_with_the_archive_beside_the_configured_options(
    install, monkeypatch, tmp_path
):
    found = classarchive.driver_archive(str(install))
    found.path.write_bytes(b"archive")
    command = _command(install, monkeypatch, tmp_path, driver_java_options="-Dx=1")
    options = command[command.index("--driver-java-options") + 1]
    assert options == f"-Dx=1 -XX:SharedArchiveFile={found.path}"
    task = AggregateUFOsByState(date=luigi.DateParameter().parse(D))
    monkeypatch.setattr(type(task), "spark_submit", property(lambda _self: str(install)))
    assert task.program_environment()["SPARK_HOME"] == str(found.home)
    # In cluster mode the driver runs elsewhere: the archive on this machine is no use there.
    command = _command(install, monkeypatch, tmp_path, deploy_mode="cluster")
    assert "--driver-java-options" not in command


def test_older_homes_and_archives_are_pruned(install, tmp_path):
    current = classarchive.driver_archive(str(install))
    current.path.write_bytes(b"archive")
    (current.home / "driver-0000000000000000.jsa").write_bytes(b"another java's")
    olds = []
    for age in range(4):
        home = _spark(tmp_path / f"old{age}" / "spark", sql=f"old {age}".encode())
        found = classarchive.driver_archive(str(home))
        os.utime(found.home, (1_000_000 - age, 1_000_000 - age))  # old0 the newest of them
        olds.append(found)
    (tmp_path / "cache" / "spark-driver-0123456789abcdef.jsa").write_bytes(b"an earlier release's")
    classarchive.prune(current)
    kept = sorted(p.name for p in (tmp_path / "cache").glob("spark-*"))
    assert kept == sorted(a.home.name for a in [current, *olds[: classarchive.KEEP_HOMES - 1]])
    assert [p.name for p in current.home.glob("*.jsa")] == [current.path.name]
    memos = {m.read_text().strip() for m in (tmp_path / "cache" / "installs").iterdir()}
    assert memos == {n.removeprefix("spark-home-") for n in kept}


def test_the_estimate_is_the_last_build_on_this_machine_else_the_range_seen(tmp_path):
    assert (
        jvmcache.estimate(tmp_path) == "35 s on an idle 2-core machine, up to 100 s on a busy one"
    )
    (tmp_path / jvmcache.LAST_BUILD).write_text("57\n")
    assert jvmcache.estimate(tmp_path).startswith("about 57 s (the last build on this machine)")
