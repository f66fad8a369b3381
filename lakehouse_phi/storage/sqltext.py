"""The one place where runtime SQL text is built from names, values and paths (``storage/``, ``spark/``,
``lifecycle/``).

Everything interpolated into a statement goes through one of these functions; nothing else is formatted into SQL.
Spark SQL (and pysail) read string literals with backslash escapes, so a quote or backslash inside a value is
escaped rather than ending the literal; identifiers are backticked with inner backticks doubled. The
``datafusion_*`` forms are for delta-rs predicates (DataFusion SQL: double-quoted identifiers, ``''`` in literals).
Importing this module never imports Spark.
"""

from __future__ import annotations

import re

from lakehouse_phi.errors import UsageError

#: A table name part as catalogs write them (Unity Catalog, Hive): letters, digits, underscore, hyphen.
_NAME_PART = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")


def _no_control(text: str, what: str) -> None:
    if _CONTROL.search(text):
        raise UsageError(f"{what} holds a control character; remove it")


def ident(name: str) -> str:
    """One identifier part in backticks, a backtick inside doubled."""
    _no_control(name, "an identifier")
    return "`" + name.replace("`", "``") + "`"


def table_name(name: str) -> str:
    """``catalog.schema.table`` (1 to 3 parts, each a plain name) with every part backticked.

    Raises:
        UsageError: a part that is not a plain name (write paths as paths, not as names).
    """
    parts = name.split(".")
    if not 1 <= len(parts) <= 3 or not all(_NAME_PART.fullmatch(p) for p in parts):
        raise UsageError(f"table name {name!r}: write 1 to 3 dot-separated parts of letters, digits, _ or -, "
                         "e.g. main.bronze.patients (a location is a path: start it with / or a URI scheme)")
    return ".".join(ident(p) for p in parts)


def literal(value: str) -> str:
    """A Spark SQL string literal: backslash and single quote escaped with a backslash. ``${`` is refused because
    Spark substitutes variables even inside literals."""
    _no_control(value, "a SQL string value")
    if "${" in value:
        raise UsageError("a SQL string value holds '${', which Spark would substitute; remove it")
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def path_ref(table_format: str, path: str) -> str:
    """A path as a table reference, e.g. ``delta.`/data/bronze/it``s here```."""
    if table_format not in ("delta", "parquet"):
        raise UsageError(f"table format {table_format!r}; allowed: delta, parquet")
    return f"{table_format}.{ident(path)}"


def properties(props: dict[str, str]) -> str:
    """``('k1' = 'v1', 'k2' = 'v2')`` for ``TBLPROPERTIES``."""
    return "(" + ", ".join(f"{literal(k)} = {literal(v)}" for k, v in sorted(props.items())) + ")"


def datafusion_ident(name: str) -> str:
    """A column name for a delta-rs (DataFusion) predicate: double quotes, inner double quotes doubled."""
    _no_control(name, "an identifier")
    return '"' + name.replace('"', '""') + '"'


def datafusion_qualified(alias: str, name: str) -> str:
    return f"{datafusion_ident(alias)}.{datafusion_ident(name)}"


def datafusion_literal(value: str | int) -> str:
    """A value for a delta-rs (DataFusion) predicate: an integer as is, a string single-quoted with ``''``."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise UsageError("a predicate value must be a string or an integer")
    if isinstance(value, int):
        return str(value)
    _no_control(value, "a predicate value")
    return "'" + value.replace("'", "''") + "'"
