"""Moved to :mod:`lakehouse_phi.storage.sqltext`; re-exported for callers of the previous layout."""

from lakehouse_phi.storage.sqltext import (
    datafusion_ident,
    datafusion_literal,
    datafusion_qualified,
    ident,
    literal,
    path_ref,
    properties,
    table_name,
)

__all__ = ["datafusion_ident", "datafusion_literal", "datafusion_qualified", "ident", "literal", "path_ref",
           "properties", "table_name"]
