"""Which engine a Spark session is, decided once per session: :func:`caps` returns an :class:`EngineCaps` that every
module reads instead of asking ``is_connect`` / ``is_sail`` / the environment again.

Also the in-process pysail server (:func:`start_sail`), since telling a pysail session apart needs its address.
Importing this module never imports PySpark.
"""

from __future__ import annotations

import atexit
import os
import weakref
from dataclasses import dataclass
from typing import Any

_sail_server: Any = None
#: pysail reads its checkpoint folder from this variable when the server starts
SAIL_CHECKPOINT_ENV = "SAIL_EXECUTION__CHECKPOINT__PATH"
#: rows per Parquet row group the in-process pysail server writes (checkpoints, spools, Parquet bronze), unless
#: the environment sets it. Sail's default is 1,048,576, and its writer holds the open row group of every file it
#: writes in memory until the group is full: staging the masked batch grew by about 170 MB per million rows up to
#: millions of rows (issue 21.4, README "Scale"). 131,072 rows (DuckDB writes 122,880) keeps it bounded.
SAIL_ROW_GROUP_ENV = "SAIL_PARQUET__MAX_ROW_GROUP_SIZE"
SAIL_ROW_GROUP_ROWS = 131_072


def is_connect(spark: Any) -> bool:
    """True for a Spark Connect session (Databricks serverless/shared, pysail, ``remote(...)``)."""
    return type(spark).__module__.startswith("pyspark.sql.connect")


def start_sail() -> str:
    """Start (once per process) an in-process pysail Spark Connect server; return its ``sc://`` URL."""
    global _sail_server
    if _sail_server is None:
        try:
            from pysail.spark import SparkConnectServer
        except ImportError:
            from lakehouse_phi.errors import UsageError

            raise UsageError("engine 'sail' needs pysail: pip install 'lakehouse-phi[local]'") from None
        os.environ.setdefault("RUST_LOG", "error")  # pysail logs through Rust's env logger
        # localCheckpoint (the ingest job evaluates the mask pass once into a checkpoint) needs pysail's
        # object-store checkpoint folder: this process's own, removed at exit
        if not os.environ.get(SAIL_CHECKPOINT_ENV):
            import shutil
            import tempfile

            folder = tempfile.mkdtemp(prefix="lakehouse-phi-sail-checkpoints-")
            atexit.register(shutil.rmtree, folder, True)
            os.environ[SAIL_CHECKPOINT_ENV] = "file://" + folder
        os.environ.setdefault(SAIL_ROW_GROUP_ENV, str(SAIL_ROW_GROUP_ROWS))
        server = SparkConnectServer(ip="127.0.0.1", port=0)
        server.start(background=True)
        atexit.register(server.stop)
        _sail_server = server
    host, port = _sail_server.listening_address
    return f"sc://{host}:{port}"


def is_sail(spark: Any) -> bool:
    """True for a session connected to this process's pysail server."""
    if _sail_server is None or not is_connect(spark):
        return False
    host, port = _sail_server.listening_address
    client = getattr(spark, "client", None)
    url = getattr(getattr(client, "_builder", None), "url", None)
    if url is None:
        from lakehouse_phi.errors import UsageError

        raise UsageError("cannot tell which server this Spark Connect session talks to (no client URL); "
                         "pass --table-format explicitly")
    return f"{host}:{port}" in str(url)


#: Host suffixes of Databricks workspaces (AWS, Azure, GCP, GovCloud, China)
DATABRICKS_HOSTS = (".cloud.databricks.com", ".azuredatabricks.net", ".gcp.databricks.com", ".databricks.us",
                    ".cloud.databricks.us", ".cloud.databricks.mil", ".databricks.azure.cn", ".databricks.azure.us")


def connect_workspace(spark: Any) -> str | None:
    """The Databricks workspace a **Databricks Connect** session talks to, read from the session object's own Spark
    Connect channel (never from the environment): the channel's host when it is a Databricks workspace host, or the
    channel builder's ``databricks.*`` class for a session Databricks built. ``None`` for a classic session, a
    plain Spark Connect session (a local server, pysail) or anything else."""
    try:
        builder = getattr(getattr(spark, "client", None), "_builder", None)
    except Exception:  # noqa: BLE001 - a classic session has no client; any other failure: not Databricks Connect
        return None
    if builder is None:
        return None
    try:
        host = str(getattr(builder, "host", "") or "").strip().lower().rstrip(".")
    except Exception:  # noqa: BLE001 - a builder without a host
        host = ""
    name = host.rpartition(":")[0] if host.count(":") == 1 else host
    if name and name.endswith(DATABRICKS_HOSTS):
        return name
    module = type(builder).__module__ or ""
    if module.split(".")[0] == "databricks":
        return f"{module}.{type(builder).__name__}" + (f" ({name})" if name else "")
    return None


@dataclass(frozen=True)
class EngineCaps:
    """What one session's engine can do.

    Attributes:
        connect: a Spark Connect session (serverless, standard access, pysail, ``remote(...)``).
        sail: this process's pysail server.
        databricks: Databricks compute (``DATABRICKS_RUNTIME_VERSION``).
        delta_sql_on_paths: Spark reads/writes/merges Delta paths with SQL (Databricks, the Delta extension).
        can_persist: ``DataFrame.persist`` keeps a result (classic Spark; not Spark Connect).
        corrupt_record: CSV/JSON rows that do not parse are flagged in ``_corrupt_record`` (pysail fails the read).
        autoloader: ``cloudFiles`` streaming source (Databricks).
        foreach_batch: ``writeStream.foreachBatch`` (not pysail).
        commit_info_conf: ``spark.databricks.delta.commitInfo.userMetadata`` and the ``txnAppId`` confs are honoured.
        local_files: the engine's executors write this machine's filesystem (a ``local[...]`` master, or this
            process's pysail server), so a result can be spooled to a local folder.
        workspace: the Databricks workspace of a **Databricks Connect** session (:func:`connect_workspace`), read
            from the session's own channel; None otherwise (the validator's serverless evidence).
    """

    connect: bool
    sail: bool
    databricks: bool
    delta_sql_on_paths: bool
    can_persist: bool
    corrupt_record: bool
    autoloader: bool
    foreach_batch: bool
    commit_info_conf: bool
    local_files: bool = False
    workspace: str | None = None

    @property
    def default_table_format(self) -> str:
        """Delta where the engine writes it (Databricks, the Delta extension, pysail); parquet elsewhere."""
        return "delta" if self.sail or self.delta_sql_on_paths else "parquet"


_cache: weakref.WeakKeyDictionary[Any, EngineCaps] = weakref.WeakKeyDictionary()


def detect(spark: Any) -> EngineCaps:
    """Work out the capabilities of ``spark`` (uncached; use :func:`caps`)."""
    connect = is_connect(spark)
    sail = is_sail(spark)
    databricks = bool(os.environ.get("DATABRICKS_RUNTIME_VERSION")) and not sail
    if sail:
        delta_sql = False  # this process's pysail server: no Delta SQL on paths, whatever the environment says
    elif databricks:
        delta_sql = True
    elif connect:
        delta_sql = False  # Spark Connect outside Databricks: no way to know the server has the Delta extension
    else:
        delta_sql = "delta" in (spark.conf.get("spark.sql.extensions", "") or "").lower()
    local_files = sail or (not connect and not databricks and _local_master(spark))
    return EngineCaps(connect=connect, sail=sail, databricks=databricks, delta_sql_on_paths=delta_sql,
                      can_persist=not connect, corrupt_record=not sail, autoloader=databricks,
                      foreach_batch=not sail, commit_info_conf=not sail, local_files=local_files,
                      workspace=connect_workspace(spark) if connect and not sail else None)


def _local_master(spark: Any) -> bool:
    try:
        master = spark.conf.get("spark.master", None)
    except Exception:  # noqa: BLE001 - a session that reports no master is not known to be local
        return False
    return bool(master) and str(master).startswith("local")


def caps(spark: Any) -> EngineCaps:
    """The capabilities of ``spark``, detected on first use and kept for the session's life."""
    try:
        found = _cache.get(spark)
    except TypeError:  # not weak-referenceable (a stand-in object): detect every time
        return detect(spark)
    if found is None:
        found = detect(spark)
        _cache[spark] = found
    return found
