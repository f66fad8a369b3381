"""Shared fixtures. One classic local Spark session per test process (``spark``), created on first use."""

from __future__ import annotations

import os
import sys

import pytest

# Spark's Python workers must run this interpreter (the venv), not whatever `python3` is on PATH.
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)


@pytest.fixture(scope="session")
def spark():
    """A classic local[2] SparkSession shared by every test of the run."""
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("lakehouse-phi-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.extraJavaOptions", "-Duser.timezone=UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def sail():
    """A pysail Spark Connect session (real Delta tables without the Delta JVM jars), beside ``spark``."""
    from lakehouse_phi.spark.session import remote_session, start_sail

    session = remote_session(start_sail())
    yield session
    session.stop()
