"""Static check of generated statements, without an engine: sqlglot parses every statement it models, and a strict
pattern covers the Unity Catalog statements it does not (``SET MASK``, ``SET ROW FILTER``, ``DROP MASK``,
``DROP ROW FILTER``, which sqlglot 30 reads only as an opaque ``Command``)."""

from __future__ import annotations

import re

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from lakehouse_phi.sql.generator import Statement

_ID = r"`(?:[^`]|``)+`"
_NAME = rf"{_ID}(?:\.{_ID}){{0,2}}"
#: statement kind -> the whole statement, as a pattern
STRICT: dict[str, re.Pattern[str]] = {
    "set_mask": re.compile(rf"ALTER TABLE {_NAME} ALTER COLUMN {_ID} SET MASK {_NAME}"
                           rf"(?: USING COLUMNS \({_ID}(?:, {_ID})*\))?"),
    "set_row_filter": re.compile(rf"ALTER TABLE {_NAME} SET ROW FILTER {_NAME} ON \({_ID}(?:, {_ID})*\)"),
    "drop_mask": re.compile(rf"ALTER TABLE {_NAME} ALTER COLUMN {_ID} DROP MASK"),
    "drop_row_filter": re.compile(rf"ALTER TABLE {_NAME} DROP ROW FILTER"),
}
#: statement kind -> (sqlglot node, its ``kind``)
PARSED: dict[str, tuple[type[exp.Expression], str]] = {
    "create_function": (exp.Create, "FUNCTION"), "create_view": (exp.Create, "VIEW"),
    "drop_function": (exp.Drop, "FUNCTION"), "drop_view": (exp.Drop, "VIEW"),
}


def verify(statement: Statement) -> str | None:
    """None when the statement is well formed; else what is wrong."""
    if statement.kind in STRICT:
        if STRICT[statement.kind].fullmatch(statement.sql):
            return None
        return f"{statement.kind} does not have the expected shape"
    if statement.kind not in PARSED:
        return f"unknown statement kind {statement.kind!r}"
    try:
        trees = sqlglot.parse(statement.sql, read="databricks")
    except ParseError as exc:
        return f"does not parse: {str(exc).splitlines()[0][:200]}"
    node, kind = PARSED[statement.kind]
    if len(trees) != 1 or not isinstance(trees[0], node) or trees[0].args.get("kind") != kind:
        return f"does not parse as one {node.__name__.upper()} {kind}"
    if any(True for _ in trees[0].find_all(exp.Command)):
        return "part of it parses only as opaque text"
    return None
