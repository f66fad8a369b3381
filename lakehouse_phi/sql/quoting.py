"""Quoting for generated SQL: identifiers in backticks, strings as escaped literals, nothing else interpolated.

Identifiers are validated before they get here (:mod:`lakehouse_phi.sql.ir`); quoting is still total, so a
backtick inside a name would be doubled rather than end the identifier. String literals are produced by sqlglot's
Databricks generator (backslash-escaped quotes and backslashes, as Spark SQL reads them); text holding ``${``
is refused earlier, because Spark substitutes ``${var}`` even inside string literals.
"""

from __future__ import annotations

import re

from sqlglot import exp

#: Control characters (and the line/paragraph separators) never belong in a name, a group or a literal we emit.
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")


def ident(name: str) -> str:
    """One identifier part in backticks, a backtick inside doubled."""
    return "`" + name.replace("`", "``") + "`"


def qualified(parts: tuple[str, ...]) -> str:
    """``('main', 'silver', 'patients')`` -> ``\\`main\\`.\\`silver\\`.\\`patients\\```."""
    return ".".join(ident(p) for p in parts)


def string(value: str) -> str:
    """A Spark SQL string literal for ``value``, exactly as sqlglot's Databricks dialect writes it."""
    return exp.Literal.string(value).sql(dialect="databricks")
