"""Bronze, quarantine and audit targets: an explicit :class:`Target` (a path, or a catalog table name, as Delta's
``forPath``/``forName``), and the few operations the job needs on one, each with one implementation.

Which engine writes a Delta target:

* **Spark SQL** (Databricks, Spark with the Delta extension; any catalog table name): ``MERGE INTO`` built by
  :func:`merge_sql`, commits tagged through ``spark.databricks.delta.commitInfo.userMetadata``.
* **delta-rs** (``deltalake``) for a path on an engine without Delta SQL on paths (pysail, classic Spark without
  the Delta jars): merges with predicates, ``CommitProperties`` carrying the run id (``userMetadata``) and
  streaming app transactions (see :mod:`lakehouse_phi.spark.bronze`).

Unexpected errors are never taken for "the table does not exist": only a narrow, documented set is.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from lakehouse_phi.errors import UsageError
from lakehouse_phi.spark import sqltext

_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


@dataclass(frozen=True)
class Target:
    """Where a table lives: ``Target.path("/data/bronze/patients")`` or ``Target.table("main.bronze.patients")``."""

    kind: Literal["path", "table"]
    location: str

    @classmethod
    def path(cls, location: str | os.PathLike) -> Target:
        text = os.fspath(location)
        if not text:
            raise UsageError("an empty path is not a table location")
        return cls("path", text)

    @classmethod
    def table(cls, name: str) -> Target:
        sqltext.table_name(name)  # validates
        return cls("table", name)

    @classmethod
    def parse(cls, text: str | Target) -> Target:
        """The command-line rule, the only one: a URI (``s3://``, ``file:``, ``dbfs:``), or text starting with
        ``/``, ``.`` or ``~``, or holding a path separator, is a path; anything else must be a table name of 1-3
        plain parts."""
        if isinstance(text, Target):
            return text
        if not text:
            raise UsageError("an empty string is neither a path nor a table name")
        if _SCHEME.match(text) or text.startswith(("/", ".", "~")) or "/" in text or "\\" in text:
            return cls.path(os.path.expanduser(text))
        return cls.table(text)

    @property
    def is_path(self) -> bool:
        return self.kind == "path"

    @property
    def local(self) -> str | None:
        """The local filesystem path, or None for a remote URI or a table name."""
        return _local(self.location) if self.is_path else None

    def sql_ref(self, table_format: str) -> str:
        return sqltext.path_ref(table_format, self.location) if self.is_path else sqltext.table_name(self.location)

    def __str__(self) -> str:
        return self.location


def is_path(target: str) -> bool:
    return Target.parse(target).is_path


def _local(path: str) -> str | None:
    """The local filesystem path of ``path`` or None for a remote URI."""
    if path.startswith("file:"):
        return re.sub(r"^file:(//)?", "", path)
    return None if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", path) else path


def default_audit_target(bronze: str | Target, table_format: str) -> str:
    """Beside bronze: ``<dir>/_lakehouse_phi_audit`` (Delta) or ``.jsonl`` (parquet); ``<schema>.lakehouse_phi_audit``
    for a table name."""
    t = Target.parse(bronze)
    if t.is_path:
        loc = t.location.rstrip("/")
        parent = loc.rsplit("/", 1)[0] if "/" in loc else "."
        return f"{parent}/_lakehouse_phi_audit" + (".jsonl" if table_format != "delta" else "")
    parts = t.location.split(".")
    return ".".join(parts[:-1] + ["lakehouse_phi_audit"])


def spark_error_class(exc: BaseException) -> str:
    """The error class of a Spark exception, never its message (which may quote data)."""
    for getter in ("getCondition", "getErrorClass"):
        fn = getattr(exc, getter, None)
        if callable(fn):
            try:
                value = fn()
            except Exception:  # noqa: BLE001 - pragma: no cover; an accessor that fails has no class to give
                value = None
            if value:
                return str(value)
    m = re.match(r"^\s*\[([A-Z0-9_.]+)\]", str(exc))
    return m.group(1) if m else type(exc).__name__


# ------------------------------------------------------------------------------------------------- engines
def native_delta_sql(spark: Any) -> bool:
    """True where Spark itself reads and writes Delta paths with SQL (Databricks, the Delta extension)."""
    from lakehouse_phi.spark.session import is_connect, is_sail

    if is_sail(spark):
        return False  # this process's pysail server: no Delta SQL on paths, whatever the environment says
    if os.environ.get("DATABRICKS_RUNTIME_VERSION"):
        return True

    if is_connect(spark):
        return False  # Spark Connect: Databricks sets the variable above; pysail has no Delta SQL on paths
    return "delta" in (spark.conf.get("spark.sql.extensions", "") or "").lower()


def default_table_format(spark: Any) -> str:
    """Delta on Databricks, on a Spark with the Delta extension, and on pysail; parquet elsewhere."""
    from lakehouse_phi.spark.session import is_sail

    return "delta" if is_sail(spark) or native_delta_sql(spark) else "parquet"


def delta_writable(spark: Any, target: Target | str) -> bool:
    """Delta where the engine writes it (Databricks, the Delta extension, pysail), or a Delta *path* on any engine
    (written through delta-rs when it is installed); a catalog table name needs the engine's own Delta."""
    import importlib.util

    if default_table_format(spark) == "delta":
        return True
    return Target.parse(target).is_path and importlib.util.find_spec("deltalake") is not None


def uses_deltars(spark: Any, target: Target, table_format: str) -> bool:
    """A Delta path on an engine without Delta SQL on paths is written through delta-rs."""
    return table_format == "delta" and target.is_path and not native_delta_sql(spark)


#: How engines say "no Delta table / no such path". Kept narrow: taking an existing table for a missing one would
#: write without the record-key rule (duplicates).
NOT_FOUND_MARKERS = ("path_not_found", "path does not exist", "delta_path_does_not_exist", "no commit files found",
                     "delta_missing_delta_table", "is not a delta table", "unable_to_infer_schema",
                     "table_or_view_not_found")


def is_not_found(exc: BaseException) -> bool:
    text = f"{type(exc).__name__} {exc}".lower()
    return any(m in text for m in NOT_FOUND_MARKERS)


def exists(spark: Any, target: Target, table_format: str) -> bool:
    """Whether the table holds data already. Errors other than "not found" propagate."""
    if not target.is_path:
        return bool(spark.catalog.tableExists(target.location))
    local = target.local
    if local is not None:
        if table_format == "delta":
            return os.path.isdir(os.path.join(local, "_delta_log"))
        return os.path.isdir(local) and any(f.endswith(".parquet") for f in os.listdir(local))
    if uses_deltars(spark, target, table_format):
        from deltalake import DeltaTable

        return bool(DeltaTable.is_deltatable(target.location))
    try:
        spark.read.format(table_format).load(target.location).schema  # noqa: B018 - analysis only
        return True
    except Exception as exc:
        if is_not_found(exc):
            return False
        raise


def read(spark: Any, target: Target, table_format: str) -> Any:
    if target.is_path:
        return spark.read.format(table_format).load(target.location)
    return spark.table(target.location)


def append(df: Any, target: Target, table_format: str, options: Mapping[str, str] | None = None) -> None:
    writer = df.write.format(table_format).mode("append")
    for k, v in (options or {}).items():
        writer = writer.option(k, v)
    if target.is_path:
        writer.save(target.location)
    else:
        writer.saveAsTable(target.location)


def merge_sql(target_ref: str, source_view: str, on: Sequence[str], *, update_when: str | None = None,
              insert: bool = True) -> str:
    """``MERGE INTO target AS t USING view AS s ON t.k <=> s.k ...`` (null-safe keys). ``update_when`` adds
    ``WHEN MATCHED AND <condition> THEN UPDATE SET *`` (a condition built from :mod:`sqltext` only)."""
    cond = " AND ".join(f"t.{sqltext.ident(k)} <=> s.{sqltext.ident(k)}" for k in on)
    text = f"MERGE INTO {target_ref} AS t USING {sqltext.ident(source_view)} AS s ON {cond}"
    if update_when is not None:
        text += f" WHEN MATCHED AND ({update_when}) THEN UPDATE SET *"
    if insert:
        text += " WHEN NOT MATCHED THEN INSERT *"
    return text


def spark_merge(spark: Any, source: Any, target: Target, on: Sequence[str], *, update_when: str | None = None,
                table_format: str = "delta", run_id: str | None = None) -> list[Any]:
    """Run one ``MERGE`` of DataFrame ``source`` into ``target`` through Spark SQL; returns the result rows
    (Delta: ``num_affected_rows, num_updated_rows, num_deleted_rows, num_inserted_rows``). ``run_id`` goes into
    the commit's ``userMetadata``. The one MERGE helper of the bronze writer and the Delta audit sink."""
    view = f"lakehouse_phi_src_{uuid.uuid4().hex}"
    source.createOrReplaceTempView(view)
    key = "spark.databricks.delta.commitInfo.userMetadata"
    try:
        if run_id is not None and not _connect_without_delta(spark):
            spark.conf.set(key, run_id)
        return spark.sql(merge_sql(target.sql_ref(table_format), view, on, update_when=update_when)).collect()
    finally:
        if run_id is not None and not _connect_without_delta(spark):
            spark.conf.unset(key)
        spark.catalog.dropTempView(view)


def _connect_without_delta(spark: Any) -> bool:
    from lakehouse_phi.spark.session import is_sail

    return is_sail(spark)


def set_table_properties(spark: Any, target: Target | str, props: Mapping[str, str],
                         run_id: str | None = None) -> None:
    """Table properties of a Delta table: ``ALTER TABLE ... SET TBLPROPERTIES`` through Spark, or delta-rs for a
    path that the engine cannot alter. Errors propagate (no fallback that creates catalog objects)."""
    target = Target.parse(target)
    if uses_deltars(spark, target, "delta"):
        from deltalake import CommitProperties, DeltaTable

        commit = CommitProperties(custom_metadata={"userMetadata": run_id}) if run_id else None
        DeltaTable(target.location).alter.set_table_properties(dict(props), raise_if_not_exists=False,
                                                               commit_properties=commit)
        return
    spark.sql(f"ALTER TABLE {target.sql_ref('delta')} SET TBLPROPERTIES {sqltext.properties(dict(props))}").collect()
