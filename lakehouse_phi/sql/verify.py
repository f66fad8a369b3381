"""Static check of generated statements, without an engine: sqlglot parses every statement it models, and a strict
pattern covers the Unity Catalog statements it does not model or models loosely (``SET MASK``, ``SET ROW FILTER``,
their ``DROP`` forms, ``SET TAGS``, ``COMMENT ON COLUMN``, ``GRANT``/``REVOKE``, ``CREATE``/``DROP POLICY``, which
sqlglot 30 reads as an opaque ``Command`` or not at all)."""

from __future__ import annotations

import re

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from lakehouse_phi.sql.generator import Statement

_ID = r"`(?:[^`]|``)+`"
_NAME = rf"{_ID}(?:\.{_ID}){{0,2}}"
_STR = r"'(?:[^'\\]|\\.)*'"
_ALTER = rf"ALTER (?:TABLE|MATERIALIZED VIEW|STREAMING TABLE) {_NAME}"
_TAGGED = rf"{_ALTER}(?: ALTER COLUMN {_ID})?"
_PRIVS = r"(?:SELECT|SELECT, MODIFY)"
_ON = (rf"(?:USE CATALOG ON CATALOG {_ID}|USE SCHEMA ON SCHEMA {_ID}\.{_ID}|{_PRIVS} ON (?:TABLE|VIEW) {_NAME}"
       rf"|CREATE TABLE, MODIFY, SELECT ON SCHEMA {_ID}\.{_ID})")
_EXCEPT = rf"(?:\n  EXCEPT {_ID}(?:, {_ID})*)?"
_VALUES = rf"VALUES \({_STR}(?:, {_STR})*\)"
_MATCH = rf"hasTagValue\({_STR}, {_STR}\) AS {_ID}"
#: statement kind -> the whole statement, as a pattern
STRICT: dict[str, re.Pattern[str]] = {
    "set_mask": re.compile(rf"{_ALTER} ALTER COLUMN {_ID} SET MASK {_NAME}(?: USING COLUMNS \({_ID}(?:, {_ID})*\))?"),
    "set_row_filter": re.compile(rf"{_ALTER} SET ROW FILTER {_NAME} ON \({_ID}(?:, {_ID})*\)"),
    "drop_mask": re.compile(rf"{_ALTER} ALTER COLUMN {_ID} DROP MASK"),
    "drop_row_filter": re.compile(rf"{_ALTER} DROP ROW FILTER"),
    "set_tags": re.compile(rf"{_TAGGED} SET TAGS \({_STR} = {_STR}(?:, {_STR} = {_STR})*\)"),
    "unset_tags": re.compile(rf"{_TAGGED} UNSET TAGS \({_STR}(?:, {_STR})*\)"),
    "comment": re.compile(rf"COMMENT ON COLUMN {_NAME}\.{_ID} IS (?:{_STR}|NULL)"),
    "grant": re.compile(rf"GRANT {_ON} TO {_ID}"),
    "revoke": re.compile(rf"REVOKE {_ON} FROM {_ID}"),
    "create_policy": re.compile(
        rf"CREATE OR REPLACE POLICY {_ID} ON SCHEMA {_NAME}\n  COMMENT {_STR}\n  "
        rf"(?:COLUMN MASK {_NAME}\n  TO `account users`{_EXCEPT}\n  FOR TABLES\n  MATCH COLUMNS {_MATCH}\n  "
        rf"ON COLUMN {_ID}"
        rf"|ROW FILTER {_NAME}\n  TO `account users`{_EXCEPT}\n  FOR TABLES\n  "
        rf"MATCH COLUMNS {_MATCH}(?:, {_MATCH})*\n  "
        rf"USING COLUMNS \({_ID}(?:, {_ID})*\))"),
    "drop_policy": re.compile(rf"DROP POLICY {_ID} ON SCHEMA {_NAME}"),
    "create_schema": re.compile(rf"CREATE SCHEMA IF NOT EXISTS {_NAME}"),
    "governed_tag": re.compile(rf"(?:CREATE GOVERNED TAG {_ID} DESCRIPTION {_STR} {_VALUES}"
                               rf"|ALTER GOVERNED TAG {_ID} SET {_VALUES})"),
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
