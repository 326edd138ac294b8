"""The Spark driver's class archive: which one belongs to an installation, and when it is used.

A fake Java and Spark installation (real files in a temporary folder) stands in for the real
ones here: what is tested is the choice of archive, not Java (tests/tools/test_jvm_archive.py
makes and maps a real one).
"""

from __future__ import annotations

import os

import luigi
import pytest

from etl.adapters import spark as spark_runtime
from etl.pipeline import AggregateUFOsByState
from etl.tools import jvmcache

D = "2019-03-29"


@pytest.fixture
def install(tmp_path, monkeypatch):
    """A Spark home with two jars and a spark-submit, a JAVA_HOME, and an empty cache."""
    home = tmp_path / "spark"
    (home / "bin").mkdir(parents=True)
    (home / "jars").mkdir()
    for name in ("spark-core.jar", "spark-sql.jar"):
        (home / "jars" / name).write_bytes(b"jar " + name.encode())
    submit = home / "bin" / "spark-submit"
    submit.write_text("#!/bin/sh\n")
    java_home = tmp_path / "java"
    (java_home / "bin").mkdir(parents=True)
    (java_home / "bin" / "java").write_text("#!/bin/sh\n")
    monkeypatch.setenv("JAVA_HOME", str(java_home))
    monkeypatch.delenv("SPARK_HOME", raising=False)
    monkeypatch.delenv("UFO_JVM_ARCHIVE", raising=False)
    monkeypatch.setenv("UFO_JVM_CACHE", str(tmp_path / "cache"))
    return submit


def test_an_archive_belongs_to_one_java_and_one_set_of_spark_jars(install):
    first = spark_runtime.archive_path(str(install))
    assert first.parent == install.parent.parent.parent / "cache"
    assert spark_runtime.archive_path(str(install)) == first  # stable
    jar = install.parent.parent / "jars" / "spark-sql.jar"
    jar.write_bytes(b"another build of spark-sql")
    assert spark_runtime.archive_path(str(install)) != first  # Spark upgraded: another archive
    second = spark_runtime.archive_path(str(install))
    java = install.parent.parent.parent / "java" / "bin" / "java"
    os.utime(java, ns=(1, 1))
    assert spark_runtime.archive_path(str(install)) not in (first, second)  # another Java


def test_no_java_or_no_jars_means_no_archive(install, monkeypatch, tmp_path):
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "nowhere"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert spark_runtime.archive_path(str(install)) is None
    assert spark_runtime.driver_java_options(str(install)) == []


def test_the_archive_is_used_only_when_it_exists_and_is_not_turned_off(install, monkeypatch):
    assert spark_runtime.driver_java_options(str(install)) == []
    path = spark_runtime.archive_path(str(install))
    path.parent.mkdir(parents=True)
    path.write_bytes(b"archive")
    assert spark_runtime.driver_java_options(str(install)) == [f"-XX:SharedArchiveFile={path}"]
    monkeypatch.setenv("UFO_JVM_ARCHIVE", "off")
    assert spark_runtime.driver_java_options(str(install)) == []


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
    path = spark_runtime.archive_path(str(install))
    path.parent.mkdir(parents=True)
    path.write_bytes(b"archive")
    command = _command(install, monkeypatch, tmp_path, driver_java_options="-Dx=1")
    options = command[command.index("--driver-java-options") + 1]
    assert options == f"-Dx=1 -XX:SharedArchiveFile={path}"
    # In cluster mode the driver runs elsewhere: the archive on this machine is no use there.
    command = _command(install, monkeypatch, tmp_path, deploy_mode="cluster")
    assert "--driver-java-options" not in command


def test_older_archives_are_pruned_to_the_newest_few(tmp_path):
    archives = [tmp_path / f"spark-driver-{i:016x}.jsa" for i in range(5)]
    for age, path in enumerate(reversed(archives)):
        path.write_bytes(b"archive")
        os.utime(path, (1_000_000 - age, 1_000_000 - age))  # archives[0] is the oldest
    (tmp_path / "notes.txt").write_text("not an archive")
    jvmcache.prune(archives[0])
    kept = sorted(p.name for p in tmp_path.iterdir())
    expected = [archives[0], *archives[-(jvmcache.KEEP_ARCHIVES - 1) :]]
    assert kept == sorted(["notes.txt", *(p.name for p in expected)])


def test_the_estimate_is_the_last_build_on_this_machine_else_the_range_seen(tmp_path):
    archive = tmp_path / "spark-driver-0000000000000001.jsa"
    assert jvmcache.estimate(archive) == "35 s on an idle 2-core machine, up to 100 s on a busy one"
    (tmp_path / jvmcache.LAST_BUILD).write_text("57\n")
    assert jvmcache.estimate(archive).startswith("about 57 s (the last build on this machine)")
    assert jvmcache.estimate(None).startswith("35 s")  # no Java or no Spark jars: no archive
