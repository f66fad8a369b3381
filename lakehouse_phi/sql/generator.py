"""SQL generation from the IR: one base generator, dispatching through tables; targets state only what differs.

Like sqlglot's ``Generator``, every IR node type and every rendering kind maps to one method through a table
(:attr:`Generator.FUNCTIONS`, :attr:`Generator.RENDERINGS`); a target (:mod:`lakehouse_phi.sql.dialects`) subclasses
it and overrides only the statements that bind the functions to tables. All text that is not SQL syntax reaches
the output through :mod:`lakehouse_phi.sql.quoting` (identifiers) or sqlglot (literals and ``where``).

Every function body uses only Spark SQL built-ins plus ``is_account_group_member`` and ``secret``, so the same
bodies run on open-source Spark 4 (the tests bind those two to chosen groups and a test key).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from lakehouse_phi.sql.ir import KEY_VERSIONS_COLUMN, MaskFunction, Name, PolicyIR, RowFilterFunction, Show, TableIR
from lakehouse_phi.sql.quoting import ident, string
from lakehouse_phi.transforms.zip3 import RESTRICTED_PREFIXES

#: Whitespace that the ingest ``zip3`` regex (RE2 ``\s``) strips: space, \t, \n, \f, \r.
_ZIP_SPACE = "concat(' ', char(9), char(10), char(12), char(13))"
_EMAIL_LOCAL = string("(?s)^(.*)@[^@]*$")


@dataclass(frozen=True)
class Statement:
    """One SQL statement, without its terminating ``;``. ``kind`` names what it does (``create_function``,
    ``set_mask``, ``set_row_filter``, ``create_view``, ``drop_mask``, ``drop_row_filter``, ``drop_view``,
    ``drop_function``); ``about`` is the governed object, shown as a comment above it in files."""

    sql: str
    kind: str
    about: str = ""


class Generator:
    """The statements common to every target: the mask and row-filter functions, and dropping them."""

    target: ClassVar[str] = "base"

    # ---------------------------------------------------------------------------------------- entry points
    def apply(self, ir: PolicyIR) -> list[Statement]:
        """Create (or replace) every function, then bind them: idempotent, in policy order."""
        out = [self.create_function(fn) for fn in ir.functions]
        for table in ir.tables:
            out.extend(self.bind(table))
        return out

    def rollback(self, ir: PolicyIR) -> list[Statement]:
        """Unbind everything first (a function in use cannot be dropped), then drop the functions."""
        out: list[Statement] = []
        for table in ir.tables:
            out.extend(self.unbind(table))
        out.extend(Statement(f"DROP FUNCTION IF EXISTS {fn.name.sql()}", "drop_function", str(fn.name))
                   for fn in ir.functions)
        return out

    # ------------------------------------------------------------------------------------------ functions
    def create_function(self, fn: MaskFunction | RowFilterFunction, temporary: bool = False) -> Statement:
        """``CREATE OR REPLACE FUNCTION``; ``temporary`` gives the session-scoped form with the bare name, which is
        what open-source Spark can create without a Unity Catalog (the tests use it)."""
        name = ident(fn.name.leaf) if temporary else fn.name.sql()
        params = ", ".join(f"{ident(col)} {typ}" for col, typ in fn.params)
        kind = "TEMPORARY FUNCTION" if temporary else "FUNCTION"
        sql = (f"CREATE OR REPLACE {kind} {name}({params})\n  RETURNS {fn.returns}\n"
               f"  RETURN {self.body(fn)}")
        about = f"{fn.table}.{fn.column}" if isinstance(fn, MaskFunction) else f"{fn.table} row filter"
        return Statement(sql, "create_function", about)

    def body(self, fn: MaskFunction | RowFilterFunction) -> str:
        return self.FUNCTIONS[type(fn)](self, fn)

    def _case(self, cases: list[tuple[tuple[str, ...], str]], otherwise: str) -> str:
        whens = [f"    WHEN {self.member(groups)} THEN {sql}" for groups, sql in cases if groups]
        if not whens:
            return otherwise
        return "CASE\n" + "\n".join(whens) + f"\n    ELSE {otherwise}\n  END"

    def mask_body(self, fn: MaskFunction) -> str:
        col = ident(fn.column)
        cases = [(groups, self.render(show, col, fn.sql_type)) for groups, show in fn.cases]
        return self._case(cases, self.render(fn.otherwise, col, fn.sql_type))

    def row_filter_body(self, fn: RowFilterFunction) -> str:
        return self._case([(groups, f"({where})") for groups, where in fn.cases], f"({fn.otherwise})")

    def member(self, groups: tuple[str, ...]) -> str:
        return " OR ".join(f"is_account_group_member({string(g)})" for g in groups)

    FUNCTIONS: ClassVar[dict[type, Callable[..., str]]] = {
        MaskFunction: mask_body,
        RowFilterFunction: row_filter_body,
    }

    # ----------------------------------------------------------------------------------------- renderings
    def render(self, show: Show, col: str, sql_type: str) -> str:
        """The SQL of one rendering of column ``col`` (already quoted), returning ``sql_type``."""
        return self.RENDERINGS[show.kind](self, show, col, sql_type)

    def raw(self, show: Show, col: str, sql_type: str) -> str:
        return col

    def hide(self, show: Show, col: str, sql_type: str) -> str:
        return f"CAST(NULL AS {sql_type})"

    def redact(self, show: Show, col: str, sql_type: str) -> str:
        return f"CASE WHEN {col} IS NULL THEN NULL ELSE {string(show.arg)} END"

    def partial(self, show: Show, col: str, sql_type: str) -> str:
        """The ingest ``partial`` (:mod:`lakehouse_phi.transforms.partial`): same length in characters; all masked
        when ``keep_first + keep_last`` reaches the length; with ``keep_domain`` the part after the last ``@`` is
        kept and a value without ``@`` is masked entirely."""
        p = show.arg
        mc = string(p["mask_char"])
        if not p["keep_domain"]:
            return self._partial(col, p["keep_first"], p["keep_last"], mc)
        local = f"regexp_extract({col}, {_EMAIL_LOCAL}, 1)"
        domain = f"substring_index({col}, '@', -1)"
        masked_local = self._partial(local, p["keep_first"], p["keep_last"], mc)
        return (f"CASE WHEN instr({col}, '@') > 0 THEN concat({masked_local}, '@', {domain}) "
                f"ELSE repeat({mc}, char_length({col})) END")

    @staticmethod
    def _partial(s: str, keep_first: int, keep_last: int, mc: str) -> str:
        everything = f"repeat({mc}, char_length({s}))"
        kept = keep_first + keep_last
        if kept == 0:
            return everything
        pieces = ([f"left({s}, {keep_first})"] if keep_first else []) + \
                 [f"repeat({mc}, char_length({s}) - {kept})"] + ([f"right({s}, {keep_last})"] if keep_last else [])
        return f"CASE WHEN char_length({s}) > {kept} THEN concat({', '.join(pieces)}) ELSE {everything} END"

    def generalize_date(self, show: Show, col: str, sql_type: str) -> str:
        """First day of the period. A TIMESTAMP is truncated in UTC, like ingest, whatever the session time zone:
        the UTC day from ``unix_micros``, truncated as a DATE, back to a TIMESTAMP at 00:00 UTC."""
        unit = string(str(show.arg).upper())
        if sql_type == "DATE":
            return f"trunc({col}, {unit})"
        utc_day = f"date_from_unix_date(CAST(floor(unix_micros({col}) / 86400000000) AS INT))"
        return f"timestamp_seconds(CAST(unix_date(trunc({utc_day}, {unit})) AS BIGINT) * 86400)"

    def zip3(self, show: Show, col: str, sql_type: str) -> str:
        """The ingest ``zip3``: ``12345``, ``12345-6789`` or ``123456789`` with optional surrounding whitespace
        gives its first three digits, ``000`` for the restricted prefixes; anything else gives NULL."""
        z = f"btrim({col}, {_ZIP_SPACE})"
        prefixes = ", ".join(string(p) for p in RESTRICTED_PREFIXES)
        return (f"CASE WHEN {z} RLIKE '^[0-9]{{5}}(-?[0-9]{{4}})?$' THEN CASE WHEN left({z}, 3) IN ({prefixes}) "
                f"THEN '000' ELSE left({z}, 3) END END")

    def age_cap(self, show: Show, col: str, sql_type: str) -> str:
        """Above ``cap - 1`` becomes ``cap``; a DOUBLE NaN stays NaN (Spark orders NaN above every number)."""
        cap = int(show.arg["cap"])
        nan = f" AND NOT isnan({col})" if sql_type == "DOUBLE" else ""
        return f"CASE WHEN {col} > {cap - 1}{nan} THEN CAST({cap} AS {sql_type}) ELSE {col} END"

    def decrypt(self, show: Show, col: str, sql_type: str) -> str:
        """Open the ingest ``encrypt`` ciphertext: base64(IV ‖ ct ‖ tag), AES-GCM, AAD ``TABLE.COLUMN``; the key is
        standard base64 in a Databricks secret. With older key versions the secret is chosen by the row's
        ``_key_versions[column]`` (a row without one is read with the active version)."""
        k = show.arg
        secret = f"secret({string(k.scope)}, {string(k.key)})"
        if k.previous:
            version = f"element_at({ident(KEY_VERSIONS_COLUMN)}, {string(k.column)})"
            whens = " ".join(f"WHEN {v} THEN secret({string(scope)}, {string(key)})" for v, scope, key in k.previous)
            secret = f"CASE {version} {whens} ELSE {secret} END"
        key = f"unbase64({secret})"
        return f"CAST(aes_decrypt(unbase64({col}), {key}, 'GCM', 'DEFAULT', {string(k.aad)}) AS STRING)"

    RENDERINGS: ClassVar[dict[str, Callable[..., str]]] = {
        "raw": raw, "hide": hide, "redact": redact, "partial": partial, "generalize_date": generalize_date,
        "zip3": zip3, "age_cap": age_cap, "decrypt": decrypt,
    }

    # ---------------------------------------------------------------------------------- target specifics
    def bind(self, table: TableIR) -> list[Statement]:
        raise NotImplementedError

    def unbind(self, table: TableIR) -> list[Statement]:
        raise NotImplementedError

    @staticmethod
    def call(fn: Name, args: list[str], temporary: bool = False) -> str:
        name = ident(fn.leaf) if temporary else fn.sql()
        return f"{name}({', '.join(ident(a) for a in args)})"
