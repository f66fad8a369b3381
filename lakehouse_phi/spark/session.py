"""Getting a Spark session without assuming one kind: an active one (spark-submit, Databricks notebooks and jobs),
classic local, local Spark Connect, a remote Spark Connect URL, or pysail (a Spark Connect server from PyPI that
reads and writes Delta, used locally where the Delta JVM jars cannot be fetched).

Nothing here touches ``sparkContext``: Databricks serverless and shared clusters have none.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from lakehouse_phi.storage.engines import is_connect, is_sail, start_sail

ENGINES = ("auto", "active", "local", "connect", "sail")
__all__ = ["ENGINES", "choose_engine", "functions", "get_session", "is_connect", "is_sail", "local_connect_session",
           "remote_session", "start_sail"]
log = logging.getLogger(__name__)


#: The settings of the sessions this module starts locally.
_LOCAL_CONF = {"spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false", "spark.log.level": "ERROR",
               "spark.sql.shuffle.partitions": "2", "spark.sql.session.timeZone": "UTC",
               "spark.sql.execution.arrow.pyspark.enabled": "true"}


def _local_builder(builder: Any, app: str) -> Any:
    builder = builder.appName(app)
    for k, v in _LOCAL_CONF.items():
        builder = builder.config(k, v)
    return builder


def functions(spark: Any) -> Any:
    """``pyspark.sql.functions`` for this session's kind: a Spark Connect session made beside a classic one in the
    same process (tests, the demo) must build its columns with the Connect module."""
    if is_connect(spark):
        from pyspark.sql.connect import functions as connect_functions

        return connect_functions
    from pyspark.sql import functions

    return functions


def local_connect_session(app: str = "lakehouse-phi", port: int | None = None) -> Any:
    """A local Spark Connect server (``local[2]``) on its own port (an ephemeral one by default) and a session to
    it. ``builder.remote("local[2]")`` always connects to the default port 15002, where another process's server
    may already listen."""
    from pyspark.sql.connect.session import SparkSession as ConnectSession

    if port is None:
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
    opts = {"spark.app.name": app, "spark.connect.grpc.binding.port": str(port), **_LOCAL_CONF}
    ConnectSession._start_connect_server("local[2]", opts)  # its token is left in SPARK_CONNECT_AUTHENTICATE_TOKEN
    return ConnectSession.builder.remote(f"sc://localhost:{port}").getOrCreate()


def choose_engine(engine: str = "auto", *, streaming: bool = False) -> tuple[str, str]:
    """``(engine, reason)``: what ``auto`` resolves to, without starting a session. ``auto`` takes the active
    session if there is one, else pysail when installed (real Delta tables locally), else classic ``local``; a
    streaming job skips pysail, which has no ``foreachBatch``, for classic local Spark."""
    if engine != "auto":
        return engine, "asked for"
    from pyspark.sql import SparkSession

    if SparkSession.getActiveSession() is not None:
        return "active", "a Spark session is already running in this process"
    if streaming:
        return "local", "streaming needs foreachBatch, which pysail does not have"
    try:
        import pysail  # noqa: F401
    except ImportError:
        return "local", "pysail is not installed"
    return "sail", "pysail is installed (Delta without the JVM jars)"


def remote_session(url: str) -> Any:
    """A Spark Connect session to ``url``; may coexist with a classic session in the same process."""
    from pyspark.sql.connect.session import SparkSession as ConnectSession

    return ConnectSession.builder.remote(url).getOrCreate()


def get_session(engine: str = "auto", app: str = "lakehouse-phi", *, streaming: bool = False) -> Any:
    """Return a Spark session.

    Args:
        engine: ``active`` (the running session; spark-submit and Databricks), ``local`` (classic ``local[2]``),
            ``connect`` (local Spark Connect on an ephemeral port), ``sail`` (pysail, Delta-capable), an
            ``sc://host:port`` URL, or ``auto`` (:func:`choose_engine`).
        streaming: the session runs a streaming job (``auto`` then never picks pysail).
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
        engine, reason = choose_engine("auto", streaming=streaming)
        log.info("engine auto: %s (%s)", engine, reason)
    if engine == "sail":
        return remote_session(start_sail())
    if engine.startswith("sc://"):
        return remote_session(engine)
    if engine == "connect":
        return local_connect_session(app)
    if engine == "local":
        return _local_builder(SparkSession.builder.master("local[2]"), app).getOrCreate()
    from lakehouse_phi.errors import UsageError

    raise UsageError(f"unknown engine {engine!r}; allowed: {', '.join(ENGINES)} or an sc://host:port URL")
