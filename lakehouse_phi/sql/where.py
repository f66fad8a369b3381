"""Check a row filter's ``where`` with sqlglot and emit it normalized, so what runs is what was checked.

A ``where`` is one boolean expression over the filter's declared columns. Allowed: literals, the declared columns
(unqualified), comparison / boolean / arithmetic operators, ``IN (list)``, ``IS [NOT] NULL``, ``BETWEEN``,
``LIKE`` / ``ILIKE`` / ``RLIKE``, ``CASE``, ``IF``, ``CAST`` to a simple type and the plain scalar functions in
:data:`FUNCTIONS`. Refused, each with a message naming the place: a second statement, comments, subqueries or any
other table, unknown columns, ``is_account_group_member`` / ``secret`` (the compiler writes those itself),
parameters and ``${...}`` substitutions, and any other function.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import sqlglot
from sqlglot import TokenType, exp
from sqlglot.errors import ParseError, TokenError

#: Node types that make up the grammar a ``where`` may use (besides columns and functions).
_OPERATORS: tuple[type[exp.Expression], ...] = (
    exp.Literal, exp.Boolean, exp.Null, exp.Paren, exp.Tuple,
    exp.And, exp.Or, exp.Not, exp.Xor,
    exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.NullSafeEQ, exp.Is,
    exp.In, exp.Between, exp.Like, exp.ILike, exp.RegexpLike,
    exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod, exp.Neg, exp.DPipe,
    exp.Case, exp.If, exp.Cast, exp.TryCast, exp.DataType,
)

#: Plain scalar functions, by the sqlglot node they parse to (user-facing name first).
FUNCTIONS: dict[str, tuple[type[exp.Expression], ...]] = {
    "upper": (exp.Upper,), "lower": (exp.Lower,), "trim": (exp.Trim,), "coalesce / nvl": (exp.Coalesce,),
    "substring / substr": (exp.Substring,), "left": (exp.Left,), "right": (exp.Right,), "length": (exp.Length,),
    "concat": (exp.Concat,), "startswith": (exp.StartsWith,), "abs": (exp.Abs,), "round": (exp.Round,),
    "floor": (exp.Floor,), "ceil": (exp.Ceil,), "year": (exp.Year,), "quarter": (exp.Quarter,),
    "month": (exp.Month,), "day": (exp.Day, exp.TsOrDsToDate), "current_date": (exp.CurrentDate,),
    "current_timestamp": (exp.CurrentTimestamp,), "date_add": (exp.TsOrDsAdd, exp.DateAdd),
    "date_sub": (exp.DateSub, exp.TsOrDsAdd), "datediff": (exp.DateDiff,), "date_trunc": (exp.TimestampTrunc,),
    "to_date": (exp.TsOrDsToDate, exp.StrToDate),
}
_FUNCTION_NODES = tuple({t for ts in FUNCTIONS.values() for t in ts})
_ALLOWED = _OPERATORS + _FUNCTION_NODES
#: Simple types a CAST may target.
_CAST_TYPES = {exp.DataType.Type.TEXT, exp.DataType.Type.VARCHAR, exp.DataType.Type.INT, exp.DataType.Type.BIGINT,
               exp.DataType.Type.SMALLINT, exp.DataType.Type.TINYINT, exp.DataType.Type.DOUBLE,
               exp.DataType.Type.FLOAT, exp.DataType.Type.DECIMAL, exp.DataType.Type.BOOLEAN,
               exp.DataType.Type.DATE, exp.DataType.Type.TIMESTAMP,
               exp.DataType.Type.TIMESTAMPTZ, exp.DataType.Type.TIMESTAMPNTZ}
#: Top-level nodes that yield a boolean (or may: a boolean column, CASE, IF, COALESCE).
_BOOLEAN_TOP = (exp.Boolean, exp.Predicate, exp.Connector, exp.Not, exp.Xor, exp.Column, exp.Case, exp.If,
                exp.Coalesce, exp.StartsWith)
_RESERVED = ("is_account_group_member", "secret", "current_user", "session_user", "is_member")


@dataclass(frozen=True)
class WhereCheck:
    """``sql`` is the normalized expression when ``problems`` is empty."""

    sql: str | None
    problems: tuple[str, ...]


def _function_name(node: exp.Expr) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.this)
    return node.sql_name().lower() if isinstance(node, exp.Func) else type(node).__name__


def _node_problem(node: exp.Expr, columns: dict[str, str]) -> str | None:
    if isinstance(node, (exp.Select, exp.Subquery, exp.Exists, exp.Query, exp.Table, exp.From, exp.Join)):
        return "a subquery or another table is not allowed; use only the declared columns"
    if isinstance(node, exp.Column):
        if node.table or node.args.get("db") or node.args.get("catalog"):
            return f"{node.sql(dialect='databricks')!r} names a table or struct field; use only the declared columns"
        if isinstance(node.this, exp.Star):
            return "'*' is not allowed"
        name = node.name
        if name.lower() not in columns:
            return f"unknown column {name!r}; row_filter.columns declares {', '.join(columns.values())}"
        return None
    if isinstance(node, exp.Identifier):
        return None  # inside a Column (checked there) or a DataType
    if isinstance(node, exp.Var):
        if node.arg_key == "unit":
            return None
        return f"{node.name!r} is not allowed here"
    if isinstance(node, (exp.Placeholder, exp.Parameter, exp.SessionParameter)):
        return "parameters and ${...} substitutions are not allowed"
    if isinstance(node, exp.Star):
        return "'*' is not allowed"
    if isinstance(node, exp.DataType):
        if node.this not in _CAST_TYPES or any(isinstance(c, exp.DataType) for c in node.iter_expressions()):
            return f"CAST to {node.sql(dialect='databricks')} is not allowed; cast to a simple type"
        return None
    if isinstance(node, exp.In) and (node.args.get("query") or node.args.get("unnest")):
        return "IN takes a list of values, not a subquery"
    if isinstance(node, _ALLOWED):
        return None
    name = _function_name(node)
    if name.lower() in _RESERVED or isinstance(node, exp.Secret):
        return f"{name}() is not allowed in a where; the compiler adds the group checks from rules[].to"
    if isinstance(node, exp.Func):
        return f"function {name}() is not allowed; allowed: {', '.join(FUNCTIONS)}"
    return f"{type(node).__name__} ({node.sql(dialect='databricks')[:40]!r}) is not allowed in a where"


def check_where(text: str, columns: list[str]) -> WhereCheck:
    """Parse ``text`` as one Databricks SQL boolean expression over ``columns``; every problem found, or the
    expression re-emitted by sqlglot with every identifier quoted."""
    problems = _text_problems(text)
    if problems:
        return WhereCheck(None, tuple(problems))
    try:
        trees = [t for t in sqlglot.parse(text, read="databricks") if t is not None]
    except ParseError as exc:
        first = exc.errors[0]["description"] if exc.errors else str(exc).splitlines()[0]
        return WhereCheck(None, (f"does not parse as SQL ({first})",))
    if len(trees) != 1:
        return WhereCheck(None, ("a where is exactly one expression",))
    tree = trees[0]
    declared = {c.lower(): c for c in columns}
    for node in tree.walk():
        msg = _node_problem(node, declared)
        if msg and msg not in problems:
            problems.append(msg)
    top = tree.unnest() if isinstance(tree, exp.Paren) else tree
    if not problems and not isinstance(top, _BOOLEAN_TOP):
        problems.append(f"must be a boolean condition, found {tree.sql(dialect='databricks')[:60]!r}")
    if problems:
        return WhereCheck(None, tuple(problems))
    return WhereCheck(tree.sql(dialect="databricks", identify=True), ())


def _text_problems(text: str) -> list[str]:
    """What is wrong before parsing: ``${``, tokens that do not scan, comments, ``;``, ``''`` inside a string."""
    if "${" in text:
        return ["'${' is not allowed: Spark substitutes ${...} before parsing"]
    try:
        tokens = sqlglot.tokenize(text, read="databricks")
    except TokenError as exc:
        return [f"does not parse as SQL ({str(exc).splitlines()[0][:120]})"]
    problems: list[str] = []
    if any(t.comments for t in tokens):
        problems.append("comments (-- or /* */) are not allowed")
    if any(t.token_type == TokenType.SEMICOLON for t in tokens):
        problems.append("';' is not allowed: a where is one expression, not a statement")
    strings = [t for t in tokens if t.token_type == TokenType.STRING]
    if any(b.start == a.end + 1 for a, b in pairwise(strings)):
        problems.append("write a quote inside a string as \\' ('' is read as an escaped quote by Spark but as two "
                        "strings by sqlglot)")
    return problems
