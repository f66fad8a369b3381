"""Shared fixtures. One classic local Spark session per test process (``spark``), created on first use."""

from __future__ import annotations

import os
import shutil
import sys

import pytest

# Spark's Python workers must run this interpreter (the venv), not whatever `python3` is on PATH.
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)


@pytest.fixture(scope="session")
def spark():
    """A classic local[2] SparkSession shared by every test of the run (skipped without PySpark or Java)."""
    pytest.importorskip("pyspark")  # the [spark] extra
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("classic Spark needs Java 17 (java on PATH or JAVA_HOME); .ci/run checks for it")
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
    pytest.importorskip("pysail")  # the [local] extra
    from lakehouse_phi.spark.session import remote_session, start_sail

    session = remote_session(start_sail())
    yield session
    session.stop()


_SPARK_DIR = os.path.join(os.path.dirname(__file__), "spark")
_SLOW_FILES = ("test_benchmark_smoke.py",)


def pytest_collection_modifyitems(config, items):
    """Lanes by folder: everything under ``tests/spark`` is ``spark`` (it starts a JVM or a Spark Connect server);
    the benchmark smoke test is also ``slow`` (run apart: ``pytest -m slow``). Tests on the classic session run
    before those on Spark Connect / pysail, so the classic JVM never starts on a machine loaded by gRPC servers."""
    for item in items:
        path = str(item.fspath)
        if path.startswith(_SPARK_DIR):
            item.add_marker(pytest.mark.spark)
        if os.path.basename(path) in _SLOW_FILES:
            item.add_marker(pytest.mark.slow)
    # a slow or pycanon test runs only when its lane asks for it (`-m slow`, `-m pycanon`): `-m "not spark"` alone
    # must stay fast, and pycanon lives in its own virtualenv (`make test-pycanon`)
    for lane in ("slow", "pycanon"):
        if lane not in (config.getoption("markexpr") or ""):
            off = [i for i in items if i.get_closest_marker(lane) is not None]
            if off:
                config.hook.pytest_deselected(items=off)
                items[:] = [i for i in items if i.get_closest_marker(lane) is None]

    def order(item) -> int:
        if not str(item.fspath).startswith(_SPARK_DIR):
            return 0
        return 1 if "spark" in getattr(item, "fixturenames", ()) else 2

    items.sort(key=order)
