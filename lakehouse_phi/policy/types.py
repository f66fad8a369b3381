"""The one type table: every policy type with its Arrow and SQL form, read by the engine and the SQL compiler.

This module imports neither pyarrow nor sqlglot: ``engine/`` builds Arrow types from :data:`TYPES` (``arrow``),
``sql/`` writes SQL type names from it (``sql``), and the policy model checks type names with
:func:`check_type`. Nested types (``struct``, ``array<...>``) are written in Spark's DDL form by
:func:`ddl` from a tree of :class:`StructOf` / :class:`ArrayOf` / scalar names, and parsed back by
:func:`parse_ddl` (governance masks over a nested column declare the column's full type that way).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class TypeInfo:
    """One scalar policy type.

    Attributes:
        sql: its Spark/Databricks SQL name (upper case, as the generated SQL writes it).
        arrow: the Arrow type, as ``(pyarrow factory, args)`` (``engine/types.arrow_type`` builds it).
    """

    sql: str
    arrow: tuple[str, tuple[object, ...]]


#: Policy scalar type -> its forms. ``decimal(p,s)`` is matched by :data:`DECIMAL_RE`; ``json`` is a subtree kept
#: as one JSON string (its values are strings everywhere past the landing read).
TYPES: dict[str, TypeInfo] = {
    "string": TypeInfo("STRING", ("string", ())),
    "int": TypeInfo("INT", ("int32", ())),
    "long": TypeInfo("BIGINT", ("int64", ())),
    "double": TypeInfo("DOUBLE", ("float64", ())),
    "boolean": TypeInfo("BOOLEAN", ("bool_", ())),
    "date": TypeInfo("DATE", ("date32", ())),
    "timestamp": TypeInfo("TIMESTAMP", ("timestamp", ("us", "UTC"))),
    "json": TypeInfo("STRING", ("string", ())),
}

#: The scalar types a flat column may have (``json`` and the nested types are added by :func:`check_type`).
SIMPLE_TYPES = ("string", "int", "long", "double", "boolean", "date", "timestamp")
DECIMAL_RE = re.compile(r"^decimal\(\s*(\d{1,2})\s*,\s*(\d{1,2})\s*\)$")
#: Column types whose values are structures declared leaf by leaf under ``fields``.
NESTED_TYPES = ("struct", "array<struct>")
#: ``array<SCALAR>``: an array of scalars; the column's own keys (``phi``, ``ingest``, ``pattern`` ...) apply to
#: every element.
ARRAY_RE = re.compile(r"^array<\s*([a-z0-9(), ]+)\s*>$")


def normalize_type(value: str) -> str:
    """Lower-case and canonical spacing: ``Decimal(10, 2)`` -> ``decimal(10,2)``, ``Array<String>`` ->
    ``array<string>``."""
    text = value.strip().lower()
    m = DECIMAL_RE.match(text)
    if m:
        return f"decimal({int(m.group(1))},{int(m.group(2))})"
    m = ARRAY_RE.match(text)
    if m:
        return f"array<{normalize_type(m.group(1))}>"
    return text


def is_scalar(policy_type: str) -> bool:
    return policy_type in TYPES or bool(DECIMAL_RE.match(policy_type))


def _check_scalar(text: str, value: str, allowed: str) -> str:
    m = DECIMAL_RE.match(text)
    if m:
        p, s = int(m.group(1)), int(m.group(2))
        if not 1 <= p <= 38 or s > p:
            raise ValueError(f"found {value!r}; decimal needs 1 <= precision <= 38 and scale <= precision")
        return text
    if text not in SIMPLE_TYPES:
        raise ValueError(f"found {value!r}; allowed: {allowed}")
    return text


def check_type(value: str, *, nested: bool = True) -> str:
    """A policy type name, normalized; ``ValueError`` naming what is allowed otherwise.

    Args:
        nested: also accept ``json``, ``struct``, ``array<struct>`` and ``array<SCALAR>`` (column and leaf types;
            governance and row-filter types are scalar).
    """
    text = normalize_type(value)
    scalars = ", ".join(SIMPLE_TYPES + ("decimal(p,s)",))
    if not nested:
        return _check_scalar(text, value, scalars)
    allowed = scalars + ", json, struct, array<struct>, array<SCALAR>"
    if text in NESTED_TYPES or text == "json":
        return text
    m = ARRAY_RE.match(text)
    if m:
        _check_scalar(m.group(1), value, allowed)
        return text
    return _check_scalar(text, value, allowed)


def array_element(policy_type: str) -> str | None:
    """``array<string>`` -> ``string``; ``None`` for any other type (``array<struct>`` included)."""
    m = ARRAY_RE.match(policy_type)
    return m.group(1) if m and m.group(1) != "struct" else None


def sql_name(policy_type: str, mapping: dict[str, str] | None = None) -> str:
    """The SQL name of a scalar policy type (``long`` -> ``BIGINT``, ``decimal(12,2)`` -> ``DECIMAL(12,2)``);
    ``mapping`` overrides the table (a SQL target's own names)."""
    m = DECIMAL_RE.match(policy_type)
    if m:
        return f"DECIMAL({int(m.group(1))},{int(m.group(2))})"
    if "<" in policy_type and (mapping is None or policy_type not in mapping):  # a nested type, in DDL form
        return ddl(parse_ddl(policy_type), mapping, upper=True)
    if mapping is not None and policy_type in mapping:
        return mapping[policy_type]
    return TYPES[policy_type].sql


#: The SQL names of the scalar types, as one mapping (a generator's base ``TYPE_MAPPING``).
SQL_NAMES: dict[str, str] = {name: info.sql for name, info in TYPES.items() if name != "json"}


# ----------------------------------------------------------------------------------------------- nested types
@dataclass(frozen=True)
class StructOf:
    """``struct<name:type, ...>`` (fields in order)."""

    fields: tuple[tuple[str, TypeTree], ...]


@dataclass(frozen=True)
class ArrayOf:
    """``array<element>``."""

    element: TypeTree


#: A scalar policy type name, or a structure of them.
TypeTree = str | StructOf | ArrayOf


def ddl(tree: TypeTree, mapping: dict[str, str] | None = None, *, upper: bool = False) -> str:
    """The Spark DDL of a type tree: ``array<struct<`family`:string,`given`:array<string>>>`` (field names quoted
    with backticks)."""
    if isinstance(tree, StructOf):
        inner = ",".join(f"{_field_name(n)}:{ddl(t, mapping, upper=upper)}" for n, t in tree.fields)
        return f"{'STRUCT' if upper else 'struct'}<{inner}>"
    if isinstance(tree, ArrayOf):
        return f"{'ARRAY' if upper else 'array'}<{ddl(tree.element, mapping, upper=upper)}>"
    name = sql_name(tree, mapping)
    return name if upper else name.lower()


def _field_name(name: str) -> str:
    """Always quoted: a field may be named like a keyword (FHIR's ``Period.end``)."""
    return "`" + name.replace("`", "``") + "`"


_TOKEN = re.compile(r"\s*(`(?:[^`]|``)*`|[A-Za-z_][A-Za-z0-9_]*(?:\(\s*\d+\s*,\s*\d+\s*\))?|[<>:,])")
_FROM_SQL = {info.sql.lower(): name for name, info in TYPES.items() if name != "json"}
_FROM_SQL.update({"integer": "int", "bigint": "long", "bool": "boolean"})


def parse_ddl(text: str) -> TypeTree:
    """Parse a type written in Spark's DDL form (``array<struct<system:string,value:string>>``, ``struct<a: int>``,
    ``decimal(10,2)``) into a tree of policy types; ``ValueError`` naming the position of what does not parse."""
    tokens: list[str] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if not m:
            raise ValueError(f"cannot read the type {text!r} at character {pos + 1}")
        tokens.append(m.group(1))
        pos = m.end()
    tree, rest = _parse_tokens(tokens, text)
    if rest:
        raise ValueError(f"cannot read the type {text!r}: unexpected {rest[0]!r}")
    return tree


def _parse_tokens(tokens: list[str], text: str) -> tuple[TypeTree, list[str]]:
    if not tokens:
        raise ValueError(f"cannot read the type {text!r}: it ends too early")
    head, rest = tokens[0].lower(), tokens[1:]
    if head in ("array", "struct"):
        if not rest or rest[0] != "<":
            raise ValueError(f"cannot read the type {text!r}: {head} needs <...>")
        rest = rest[1:]
        if head == "array":
            element, rest = _parse_tokens(rest, text)
            if not rest or rest[0] != ">":
                raise ValueError(f"cannot read the type {text!r}: array<...> is not closed")
            return ArrayOf(element), rest[1:]
        fields: list[tuple[str, TypeTree]] = []
        while True:
            if not rest:
                raise ValueError(f"cannot read the type {text!r}: struct<...> is not closed")
            name = rest[0]
            name = name[1:-1].replace("``", "`") if name.startswith("`") else name
            if len(rest) < 2 or rest[1] != ":":
                raise ValueError(f"cannot read the type {text!r}: a struct field is written name:type")
            ftype, rest = _parse_tokens(rest[2:], text)
            fields.append((name, ftype))
            if rest and rest[0] == ",":
                rest = rest[1:]
                continue
            if rest and rest[0] == ">":
                names = [n for n, _ in fields]
                if len(set(names)) != len(names):
                    raise ValueError(f"cannot read the type {text!r}: a struct field name appears twice")
                return StructOf(tuple(fields)), rest[1:]
            raise ValueError(f"cannot read the type {text!r}: expected , or > in struct<...>")
    scalar = _FROM_SQL.get(head, head)
    scalar = normalize_type(scalar)
    if not is_scalar(scalar) or scalar == "json":
        raise ValueError(f"cannot read the type {text!r}: unknown type {tokens[0]!r}")
    return scalar, rest
