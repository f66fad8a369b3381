"""Format-generic operations on a bronze/quarantine target (Delta or Parquet), each with one implementation:
existence, reading with Spark, appending, table properties, and the per-path lock of local tables.

Delta writes go through :mod:`lakehouse_phi.storage.delta`; this module adds what Parquet needs and what the job asks
before it writes (:func:`exists`, :func:`default_table_format`, :func:`delta_writable`).
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from lakehouse_phi.storage import parquet
from lakehouse_phi.storage.delta import Commit, open_delta, uses_deltars
from lakehouse_phi.storage.engines import caps
from lakehouse_phi.storage.rules import is_not_found
from lakehouse_phi.storage.targets import Target


def native_delta_sql(spark: Any) -> bool:
    """True where Spark itself reads and writes Delta paths with SQL (Databricks, the Delta extension)."""
    return caps(spark).delta_sql_on_paths


def default_table_format(spark: Any) -> str:
    """Delta on Databricks, on a Spark with the Delta extension, and on pysail; parquet elsewhere."""
    return caps(spark).default_table_format


def delta_writable(spark: Any, target: Target | str) -> bool:
    """Delta where the engine writes it (Databricks, the Delta extension, pysail), or a Delta *path* on any engine
    (written through delta-rs when it is installed); a catalog table name needs the engine's own Delta."""
    if default_table_format(spark) == "delta":
        return True
    return Target.parse(target).is_path and importlib.util.find_spec("deltalake") is not None


def exists(spark: Any, target: Target, table_format: str) -> bool:
    """Whether the table holds data already. A local path is looked at on disk; a remote path or a table name is
    asked of the engine (delta-rs or Spark). Errors other than "not found" propagate."""
    if table_format == "delta":
        local = target.local
        if local is not None:
            return os.path.isdir(os.path.join(local, "_delta_log"))
        return open_delta(target, spark).exists()
    if not target.is_path:
        return bool(spark.catalog.tableExists(target.location))
    local = target.local
    if local is not None:
        parquet.recover(local)
        return os.path.isdir(local) and any(f.endswith(".parquet") for f in os.listdir(local))
    try:
        spark.read.format(table_format).load(target.location).schema  # noqa: B018 - analysis only
        return True
    except Exception as exc:
        if is_not_found(exc):
            return False
        raise


def read(spark: Any, target: Target, table_format: str) -> Any:
    if table_format == "parquet" and target.local is not None:
        parquet.recover(target.local)  # a rewrite a killed run committed is finished first
    if target.is_path:
        return spark.read.format(table_format).load(target.location)
    return spark.table(target.location)


def append(df: Any, target: Target, table_format: str, options: Mapping[str, str] | None = None) -> None:
    if table_format == "parquet" and target.local is not None:
        parquet.recover(target.local)
    writer = df.write.format(table_format).mode("append")
    for k, v in (options or {}).items():
        writer = writer.option(k, v)
    if target.is_path:
        writer.save(target.location)
    else:
        writer.saveAsTable(target.location)


def set_table_properties(spark: Any, target: Target | str, props: Mapping[str, str],
                         run_id: str | None = None) -> None:
    """Table properties of a Delta table (``ALTER TABLE ... SET TBLPROPERTIES`` through Spark, or delta-rs for a
    path the engine cannot alter). Errors propagate (no fallback that creates catalog objects)."""
    open_delta(Target.parse(target), spark).set_properties(props, Commit(run_id=run_id))


@contextlib.contextmanager
def path_lock(target: Target) -> Iterator[None]:
    """An exclusive lock beside a local path (``<path>.lakehouse_phi.lock``), so two runs on one table serialize
    their read-compare-write. A no-op for table names and remote paths: nothing is created on this machine for
    them (Delta's own commit protocol guards those, see :mod:`lakehouse_phi.storage.delta`)."""
    local = target.local
    if local is None:
        yield
        return
    lock_path = local.rstrip("/") + ".lakehouse_phi.lock"
    os.makedirs(os.path.dirname(os.path.abspath(lock_path)), exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o640)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def replace_parquet(target: Target, write: Callable[[str], None]) -> None:
    """``bronze_mode: latest`` on a local Parquet table: replace its contents crash-safely
    (:func:`lakehouse_phi.storage.parquet.replace_contents`)."""
    local = target.local
    if local is None:
        from lakehouse_phi.errors import UsageError

        raise UsageError(f"bronze_mode: latest on a Parquet target needs a local path to rewrite ({target}); "
                         "use Delta for remote tables")
    parquet.replace_contents(local, write)


__all__ = ["append", "default_table_format", "delta_writable", "exists", "native_delta_sql", "path_lock", "read",
           "replace_parquet", "set_table_properties", "uses_deltars"]
