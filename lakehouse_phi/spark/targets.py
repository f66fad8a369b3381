"""Moved to :mod:`lakehouse_phi.storage` (targets, Delta adapter, rules); these names are re-exported for callers of
the previous layout and will go away."""

from lakehouse_phi.storage.delta import merge_sql, uses_deltars
from lakehouse_phi.storage.rules import is_not_found, spark_error_class
from lakehouse_phi.storage.tables import (
    append,
    default_table_format,
    delta_writable,
    exists,
    native_delta_sql,
    read,
    set_table_properties,
)
from lakehouse_phi.storage.targets import Target, default_audit_target

__all__ = ["Target", "append", "default_audit_target", "default_table_format", "delta_writable", "exists",
           "is_not_found", "merge_sql", "native_delta_sql", "read", "set_table_properties", "spark_error_class",
           "uses_deltars"]
