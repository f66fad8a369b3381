"""Bronze, quarantine and audit targets: a table name or a path, and the few operations the job needs on them.

(Split out of ``ingest.py``; the incremental-bronze work replaces the path-or-name guessing with an explicit
target type.)
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from typing import Any

def is_path(target: str) -> bool:
    return "/" in target or "\\" in target or bool(re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target))


def _local(path: str) -> str | None:
    """The local filesystem path of ``path`` or None for a remote URI."""
    if path.startswith("file:"):
        return re.sub(r"^file:(//)?", "", path)
    return None if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", path) else path


def default_audit_target(bronze: str, table_format: str) -> str:
    """Beside bronze: ``<dir>/_lakehouse_phi_audit`` (Delta) or ``.jsonl`` (parquet); ``<schema>.lakehouse_phi_audit``
    for a table name."""
    if is_path(bronze):
        parent = bronze.rstrip("/").rsplit("/", 1)[0] if "/" in bronze.rstrip("/") else "."
        return f"{parent}/_lakehouse_phi_audit" + (".jsonl" if table_format != "delta" else "")
    parts = bronze.split(".")
    return ".".join(parts[:-1] + ["lakehouse_phi_audit"])


def _spark_error(exc: BaseException) -> str:
    """The error class of a Spark exception, never its message (which may quote data)."""
    for getter in ("getCondition", "getErrorClass"):
        fn = getattr(exc, getter, None)
        if callable(fn):
            try:
                value = fn()
                if value:
                    return str(value)
            except Exception:  # pragma: no cover
                pass
    m = re.match(r"^\s*\[([A-Z0-9_.]+)\]", str(exc))
    return m.group(1) if m else type(exc).__name__


def _target_ref(target: str, table_format: str) -> str:
    return f"{table_format}.`{target}`" if is_path(target) else target


def _exists(spark: Any, target: str, table_format: str) -> bool:
    if not is_path(target):
        return bool(spark.catalog.tableExists(target))
    local = _local(target)
    if local is not None:
        return os.path.isdir(os.path.join(local, "_delta_log")) if table_format == "delta" else (
            os.path.isdir(local) and any(f.endswith(".parquet") for f in os.listdir(local)))
    try:
        spark.read.format(table_format).load(target).schema  # noqa: B018 - analysis only
        return True
    except Exception:
        return False


def _read_target(spark: Any, target: str, table_format: str) -> Any:
    return spark.read.format(table_format).load(target) if is_path(target) else spark.table(target)


def _write(df: Any, target: str, table_format: str, options: Mapping[str, str] | None = None) -> None:
    writer = df.write.format(table_format).mode("append")
    for k, v in (options or {}).items():
        writer = writer.option(k, v)
    if is_path(target):
        writer.save(target)
    else:
        writer.saveAsTable(target)


def set_table_properties(spark: Any, target: str, props: Mapping[str, str]) -> None:
    """``ALTER TABLE … SET TBLPROPERTIES`` on a Delta table name or path. Where an engine cannot alter a path
    (pysail), the path is registered under a session-local name first."""
    assignments = ", ".join(f"'{k}' = '{v.replace(chr(39), chr(39) * 2)}'" for k, v in sorted(props.items()))
    try:
        spark.sql(f"ALTER TABLE {_target_ref(target, 'delta')} SET TBLPROPERTIES ({assignments})")
        return
    except Exception:
        if not is_path(target):
            raise
    local = _local(target)
    location = os.path.abspath(local) if local is not None else target
    alias = "lakehouse_phi_t_" + hashlib.sha256(location.encode()).hexdigest()[:16]
    spark.sql(f"CREATE TABLE IF NOT EXISTS {alias} USING delta LOCATION '{location}'")
    spark.sql(f"ALTER TABLE {alias} SET TBLPROPERTIES ({assignments})")
