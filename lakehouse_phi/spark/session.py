"""Getting a Spark session without assuming one kind: an active one (spark-submit, Databricks notebooks and jobs),
classic local, local Spark Connect, a remote Spark Connect URL, or pysail (a Spark Connect server from PyPI that
reads and writes Delta, used locally where the Delta JVM jars cannot be fetched).

Nothing here touches ``sparkContext``: Databricks serverless and shared clusters have none.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from lakehouse_phi.storage.engines import is_connect, is_sail, start_sail

ENGINES = ("auto", "active", "local", "connect", "sail")
__all__ = ["ENGINES", "functions", "get_session", "is_connect", "is_sail", "remote_session", "start_sail"]


def _local_builder(builder: Any, app: str) -> Any:
    return (builder.appName(app)
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.log.level", "ERROR")
            .config("spark.sql.shuffle.partitions", "2")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.sql.execution.arrow.pyspark.enabled", "true"))


def functions(spark: Any) -> Any:
    """``pyspark.sql.functions`` for this session's kind: a Spark Connect session made beside a classic one in the
    same process (tests, the demo) must build its columns with the Connect module."""
    if is_connect(spark):
        from pyspark.sql.connect import functions as connect_functions

        return connect_functions
    from pyspark.sql import functions

    return functions


def remote_session(url: str) -> Any:
    """A Spark Connect session to ``url``; may coexist with a classic session in the same process."""
    from pyspark.sql.connect.session import SparkSession as ConnectSession

    return ConnectSession.builder.remote(url).getOrCreate()


def get_session(engine: str = "auto", app: str = "lakehouse-phi") -> Any:
    """Return a Spark session.

    Args:
        engine: ``active`` (the running session; spark-submit and Databricks), ``local`` (classic ``local[2]``),
            ``connect`` (local Spark Connect, ``remote("local[2]")``), ``sail`` (pysail, Delta-capable), an
            ``sc://host:port`` URL, or ``auto``: the active session if there is one, else ``sail`` when pysail is
            installed (real Delta tables locally), else ``local``.
    """
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    if engine in ("auto", "active"):
        active = SparkSession.getActiveSession()
        if active is not None:
            return active
        if engine == "active":
            from lakehouse_phi.errors import UsageError

            raise UsageError("engine 'active': no active Spark session (run under spark-submit or in a notebook)")
        try:
            import pysail  # noqa: F401

            engine = "sail"
        except ImportError:
            engine = "local"
    if engine == "sail":
        return remote_session(start_sail())
    if engine.startswith("sc://"):
        return remote_session(engine)
    if engine == "connect":
        return _local_builder(SparkSession.builder.remote("local[2]"), app).getOrCreate()
    if engine == "local":
        return _local_builder(SparkSession.builder.master("local[2]"), app).getOrCreate()
    from lakehouse_phi.errors import UsageError

    raise UsageError(f"unknown engine {engine!r}; allowed: {', '.join(ENGINES)} or an sc://host:port URL")
