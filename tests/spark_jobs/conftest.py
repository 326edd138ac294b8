"""Fixtures of the Spark job's tests: a local SparkSession."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def spark():
    """A local SparkSession for the transform unit tests."""
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("ufo-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .getOrCreate()
    )
    yield session
    session.stop()
