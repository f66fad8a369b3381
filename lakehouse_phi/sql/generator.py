"""SQL generation from the IR: one base generator, dispatching through tables; targets state only what differs.

Like sqlglot's ``Generator``, the dispatch table is built per class (:func:`_build_dispatch`, run for every
subclass by ``__init_subclass__``): each IR function type maps to the method named in :attr:`Generator.FUNCTIONS`
and each rendering kind ``K`` to the method ``K_sql``, looked up on the class itself, so a target
(:mod:`lakehouse_phi.sql.dialects`) that overrides ``hide_sql`` or ``mask_body`` gets its own rendering. Types go
through one table per target, :attr:`Generator.TYPE_MAPPING`, extended by inheritance. All text that is not SQL
syntax reaches the output through :mod:`lakehouse_phi.sql.quoting` (identifiers) or sqlglot (literals and
``where``).

Every function body uses only Spark SQL built-ins plus ``is_account_group_member`` and ``try_secret``, so the same
bodies run on open-source Spark 4 (the tests bind those two to chosen groups and a test key), and no body throws on
a value or a key it cannot read (``try_`` forms wherever a built-in could: ``try_secret`` gives NULL where
``secret`` would raise ``INVALID_SECRET_LOOKUP``).

Order of ``apply`` (fail toward protection): the function schema, governed tags, the functions, each table's
protections and metadata, and only then what loosens access: REVOKEs that protect come before every GRANT, and the
GRANTs are last. Every statement carries its ``undo``; ``rollback`` is the undos in reverse order (``IF EXISTS``
forms where the grammar has them). ``lakehouse_phi.sql.plan`` decides what a failed apply undoes (only the
privileges it added).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from lakehouse_phi.hipaa import RESTRICTED_PREFIXES
from lakehouse_phi.policy import types
from lakehouse_phi.policy.model import RENDERINGS
from lakehouse_phi.sql.ir import (
    KEY_VERSIONS_COLUMN,
    BronzeIR,
    ColumnMeta,
    GrantIR,
    LeafMask,
    MaskFunction,
    Name,
    PolicyIR,
    RowFilterFunction,
    Show,
    TableIR,
)
from lakehouse_phi.sql.quoting import ident, string

#: Whitespace that the ingest ``zip3`` regex (RE2 ``\s``) strips: space, \t, \n, \f, \r.
_ZIP_SPACE = "concat(' ', char(9), char(10), char(12), char(13))"
_EMAIL_LOCAL = string("(?s)^(.*)@[^@]*$")

#: Tag keys the targets set on columns and tables.
TAG_PHI, TAG_PROTECTION, TAG_MASK, TAG_POLICY = "phi", "phi_protection", "phi_mask", "lakehouse_phi_policy"
#: The ``ALTER`` keyword of each governed relation kind.
RELATION = {"table": "TABLE", "materialized_view": "MATERIALIZED VIEW", "streaming_table": "STREAMING TABLE"}


@dataclass(frozen=True)
class Statement:
    """One SQL statement, without its terminating ``;``. ``kind`` names what it does (``create_function``,
    ``set_mask``, ``set_row_filter``, ``set_tags``, ``comment``, ``grant``, ``revoke``, ``create_view``,
    ``create_policy`` and their inverses); ``about`` is the governed object, shown as a comment above it in files;
    ``undo`` is the statement that reverses it (``None``: nothing to reverse, e.g. a REVOKE)."""

    sql: str
    kind: str
    about: str = ""
    undo: Statement | None = None
    #: a GRANT's securable and privileges (what a failed apply revokes when this run added them)
    grant: Privileges | None = None
    #: a table this statement needs (grants on and metadata of tables ingest creates): skipped while it is missing
    requires: Name | None = None
    #: run instead when the statement fails with ALREADY_EXISTS (``CREATE GOVERNED TAG`` -> ``ALTER … SET VALUES``)
    if_exists: Statement | None = None
    #: the (key, value) pairs a SET TAGS assigns
    tags: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Privileges:
    """``GRANT privileges ON securable name TO principal``: ``securable`` is ``CATALOG``, ``SCHEMA``, ``TABLE`` or
    ``VIEW``."""

    securable: str
    name: Name
    principal: str
    privileges: tuple[str, ...]


#: statement kinds that loosen access: run last, and the only ones a failed apply undoes
LOOSENING_KINDS = ("grant",)


def _build_dispatch(cls: type[Generator]) -> tuple[dict[type, Callable[..., str]], dict[str, Callable[..., str]]]:
    """IR function type -> method, rendering kind -> method, resolved on ``cls`` (so overrides count)."""
    functions = {typ: getattr(cls, name) for typ, name in cls.FUNCTIONS.items()}
    missing = [k for k in RENDERINGS if not callable(getattr(cls, f"{k}_sql", None))]
    if missing:
        raise TypeError(f"{cls.__name__} has no rendering method for {', '.join(missing)} (define <kind>_sql)")
    return functions, {k: getattr(cls, f"{k}_sql") for k in RENDERINGS}


class Generator:
    """The statements common to every target: the mask and row-filter functions, grants, and undoing them."""

    target: ClassVar[str] = "base"

    #: policy type -> SQL type name (``decimal(p,s)`` is written ``DECIMAL(p,s)``); extend per target by inheritance.
    TYPE_MAPPING: ClassVar[dict[str, str]] = {
        **types.SQL_NAMES,  # the one type table (lakehouse_phi.policy.types)
        "map<string,int>": "MAP<STRING,INT>",  # _key_versions, passed to a decrypt mask with older key versions
    }
    #: IR function type -> name of the method writing its body.
    FUNCTIONS: ClassVar[dict[type, str]] = {MaskFunction: "mask_body", RowFilterFunction: "row_filter_body"}
    _functions: ClassVar[dict[type, Callable[..., str]]]
    _renderings: ClassVar[dict[str, Callable[..., str]]]

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls._functions, cls._renderings = _build_dispatch(cls)

    def __init__(self, ir: PolicyIR | None = None) -> None:
        self.ir = ir

    @classmethod
    def type_name(cls, policy_type: str) -> str:
        """This target's name of a (normalized) policy type: ``decimal(12,2)`` -> ``DECIMAL(12,2)``."""
        return types.sql_name(policy_type, cls.TYPE_MAPPING)

    # ---------------------------------------------------------------------------------------- entry points
    def apply(self, ir: PolicyIR) -> list[Statement]:
        """Create (or replace) every function, then govern each table (:meth:`govern`), then grant: in policy
        order, idempotent, privileges only once the protection is in place."""
        self.ir = ir
        out = [*self.schemas(ir), *self.prerequisites(ir)]
        out += [self.create_function(fn) for fn in ir.functions]
        for table in ir.tables:
            out.extend(self.govern(table))
        for bronze in ir.bronze:
            out.extend(self.describe_bronze(bronze))
        access = self.grants(ir.grants)
        out.extend(st for st in access if st.kind not in LOOSENING_KINDS)  # protective REVOKEs first
        out.extend(st for st in access if st.kind in LOOSENING_KINDS)
        return out

    def rollback(self, ir: PolicyIR) -> list[Statement]:
        """The undo of every applied statement, last first: privileges, then bindings and metadata, then the
        functions (unbound before they are dropped)."""
        return [st.undo for st in reversed(self.apply(ir)) if st.undo is not None]

    # ---------------------------------------------------------------------------------------- prerequisites
    def schemas(self, ir: PolicyIR) -> list[Statement]:
        """``CREATE SCHEMA IF NOT EXISTS`` for the function schema and for each schema ingest writes into (first
        deploy); never dropped by a rollback, which cannot know what else a schema holds."""
        out = [self.create_schema(ir.function_schema, "function schema")]
        seen = {tuple(p.lower() for p in ir.function_schema.parts)}
        for g in ir.grants:
            if g.securable == "SCHEMA" and tuple(p.lower() for p in g.table.parts) not in seen:
                seen.add(tuple(p.lower() for p in g.table.parts))
                out.append(self.create_schema(g.table, "ingest writes here"))
        return out

    @staticmethod
    def create_schema(schema: Name, why: str) -> Statement:
        return Statement(f"CREATE SCHEMA IF NOT EXISTS {schema.sql()}", "create_schema", f"{schema} ({why})")

    def prerequisites(self, ir: PolicyIR) -> list[Statement]:
        """What a target needs before its functions (the ABAC target's governed tags); none by default."""
        return []

    # ------------------------------------------------------------------------------------------ functions
    def create_function(self, fn: MaskFunction | RowFilterFunction, temporary: bool = False) -> Statement:
        """``CREATE OR REPLACE FUNCTION``; ``temporary`` gives the session-scoped form with the bare name, which is
        what open-source Spark can create without a Unity Catalog (the tests use it)."""
        name = ident(fn.name.leaf) if temporary else fn.name.sql()
        params = ", ".join(f"{ident(col)} {self.type_name(typ)}" for col, typ in fn.params)
        kind = "TEMPORARY FUNCTION" if temporary else "FUNCTION"
        about = f"{fn.table}.{fn.column}" if isinstance(fn, MaskFunction) else f"{fn.table} row filter"
        comment = "" if temporary or self.ir is None else \
            f"\n  COMMENT {string(f'lakehouse-phi {self.ir.policy_name} sha256:{self.ir.sha256[:12]}: {about}')}"
        sql = (f"CREATE OR REPLACE {kind} {name}({params})\n  RETURNS {self.type_name(fn.returns)}{comment}\n"
               f"  RETURN {self.body(fn)}")
        undo = Statement(f"DROP FUNCTION IF EXISTS {fn.name.sql()}", "drop_function", str(fn.name))
        return Statement(sql, "create_function", about, undo)

    def body(self, fn: MaskFunction | RowFilterFunction) -> str:
        return self._functions[type(fn)](self, fn)

    def _case(self, cases: list[tuple[tuple[str, ...], str]], otherwise: str) -> str:
        whens = [f"    WHEN {self.member(groups)} THEN {sql}" for groups, sql in cases if groups]
        if not whens:
            return otherwise
        return "CASE\n" + "\n".join(whens) + f"\n    ELSE {otherwise}\n  END"

    def mask_body(self, fn: MaskFunction) -> str:
        if fn.leaves:
            return self.nested_mask_body(fn)
        col = ident(fn.column)
        sql_type = self.type_name(fn.type)
        cases = [(groups, self.render(show, col, sql_type)) for groups, show in fn.cases]
        return self._case(cases, self.render(fn.otherwise, col, sql_type))

    def nested_mask_body(self, fn: MaskFunction) -> str:
        """A nested column rebuilt with its governed leaves masked: ``transform`` over arrays, ``named_struct`` over
        structs (NULL stays NULL at every level, no element dropped or reordered); subtrees without a governed
        leaf are passed whole."""
        governed = {leaf.path: leaf for leaf in fn.leaves}
        return self._rebuild(types.parse_ddl(fn.type), ident(fn.column), "", governed, 0)

    def _rebuild(self, tree: types.TypeTree, expr: str, path: str, governed: dict[str, LeafMask], depth: int) -> str:
        if not any(p == path or p.startswith(path) for p in governed):
            return expr
        if isinstance(tree, str):
            leaf = governed.get(path)
            if leaf is None:
                return expr
            sql_type = self.type_name(leaf.type)
            cases = [(groups, self.render(show, expr, sql_type)) for groups, show in leaf.cases]
            return self._case(cases, self.render(leaf.otherwise, expr, sql_type))
        if isinstance(tree, types.StructOf):
            parts = ", ".join(
                f"{string(name)}, {self._rebuild(t, f'{expr}.{ident(name)}', f'{path}.{name}', governed, depth)}"
                for name, t in tree.fields)
            return f"CASE WHEN {expr} IS NULL THEN NULL ELSE named_struct({parts}) END"
        var = f"e{depth}"
        inner = self._rebuild(tree.element, var, f"{path}[]", governed, depth + 1)
        return f"transform({expr}, {var} -> {inner})"

    def row_filter_body(self, fn: RowFilterFunction) -> str:
        return self._case([(groups, f"({where})") for groups, where in fn.cases], f"({fn.otherwise})")

    def member(self, groups: tuple[str, ...]) -> str:
        return " OR ".join(f"is_account_group_member({string(g)})" for g in groups)

    # ----------------------------------------------------------------------------------------- renderings
    def render(self, show: Show, col: str, sql_type: str) -> str:
        """The SQL of one rendering of column ``col`` (already quoted), returning ``sql_type``."""
        return self._renderings[show.kind](self, show, col, sql_type)

    def raw_sql(self, show: Show, col: str, sql_type: str) -> str:
        return col

    def hide_sql(self, show: Show, col: str, sql_type: str) -> str:
        return f"CAST(NULL AS {sql_type})"

    def redact_sql(self, show: Show, col: str, sql_type: str) -> str:
        return f"CASE WHEN {col} IS NULL THEN NULL ELSE {string(show.arg)} END"

    def partial_sql(self, show: Show, col: str, sql_type: str) -> str:
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

    def generalize_date_sql(self, show: Show, col: str, sql_type: str) -> str:
        """First day of the period (``WEEK``: the ISO week's Monday; ``DAY``: midnight). A TIMESTAMP is truncated in
        UTC, like ingest, whatever the session time zone: the UTC day from ``unix_micros``, truncated as a DATE, back
        to a TIMESTAMP at 00:00 UTC. With ``top_code_age`` N (90 on a date of birth), a subject N or older at
        ``current_date()`` gets the first day of year (current year - N), as the ingest strategy does."""
        arg = show.arg if isinstance(show.arg, dict) else {"to": show.arg}
        to, age = str(arg["to"]).upper(), arg.get("top_code_age")
        utc_day = f"date_from_unix_date(CAST(floor(unix_micros({col}) / 86400000000) AS INT))"
        day = col if sql_type == "DATE" else utc_day
        truncated = day if to == "DAY" else f"trunc({day}, {string(to)})"
        out = truncated if sql_type == "DATE" else f"timestamp_seconds(CAST(unix_date({truncated}) AS BIGINT) * 86400)"
        return out if age is None else _top_code(day, out, int(age), sql_type)

    def zip3_sql(self, show: Show, col: str, sql_type: str) -> str:
        """The ingest ``zip3``: ``12345``, ``12345-6789`` or ``123456789`` with optional surrounding whitespace
        gives its first three digits, ``000`` for the restricted prefixes; anything else gives NULL."""
        z = f"btrim({col}, {_ZIP_SPACE})"
        prefixes = ", ".join(string(p) for p in RESTRICTED_PREFIXES)
        return (f"CASE WHEN {z} RLIKE '^[0-9]{{5}}(-?[0-9]{{4}})?$' THEN CASE WHEN left({z}, 3) IN ({prefixes}) "
                f"THEN '000' ELSE left({z}, 3) END END")

    def age_cap_sql(self, show: Show, col: str, sql_type: str) -> str:
        """Above ``cap - 1`` becomes ``cap``; a DOUBLE NaN stays NaN (Spark orders NaN above every number). On a DATE
        or TIMESTAMP (a date of birth): a subject ``cap`` or older at ``current_date()`` gets the first day of year
        (current year - cap); younger subjects keep their value."""
        cap = int(show.arg["cap"])
        if sql_type in ("DATE", "TIMESTAMP"):
            day = col if sql_type == "DATE" else \
                f"date_from_unix_date(CAST(floor(unix_micros({col}) / 86400000000) AS INT))"
            return _top_code(day, col, cap, sql_type)
        nan = f" AND NOT isnan({col})" if sql_type == "DOUBLE" else ""
        return f"CASE WHEN {col} > {cap - 1}{nan} THEN CAST({cap} AS {sql_type}) ELSE {col} END"

    def decrypt_sql(self, show: Show, col: str, sql_type: str) -> str:
        """Open the ingest ``encrypt`` ciphertext: base64(IV ‖ ct ‖ tag), AES-GCM, AAD ``TABLE.COLUMN``; the key is
        standard base64 in a Databricks secret. ``try_`` forms: a malformed value (or key) gives NULL, never an
        error that would fail every query on the table. With older key versions (``previous``) the secret is chosen
        by the row's ``_key_versions[column]``; a row without one is read with the active version."""
        k = show.arg
        secret = self.secret_sql(k.scope, k.key)
        if k.previous:
            version = f"element_at({ident(KEY_VERSIONS_COLUMN)}, {string(k.column)})"
            whens = " ".join(f"WHEN {v} THEN {self.secret_sql(scope, key)}" for v, scope, key in k.previous)
            secret = f"CASE {version} {whens} ELSE {secret} END"
        key = f"try_to_binary({secret}, 'base64')"
        return (f"CAST(try_aes_decrypt(try_to_binary({col}, 'base64'), {key}, 'GCM', 'DEFAULT', {string(k.aad)}) "
                "AS STRING)")

    @staticmethod
    def secret_sql(scope: str, key: str) -> str:
        """A key read that cannot throw: ``try_secret`` (Databricks Runtime 15.0+, Databricks SQL) returns NULL when
        the reader may not read the scope, and the ``try_`` decrypt then gives NULL too."""
        return f"try_secret({string(scope)}, {string(key)})"

    # ---------------------------------------------------------------------------------- target specifics
    def govern(self, table: TableIR) -> list[Statement]:
        """What protects one governed table (each statement with its undo)."""
        raise NotImplementedError

    def describe_bronze(self, table: BronzeIR) -> list[Statement]:
        """Metadata of a bronze table (tags, comments); none by default."""
        return []

    def grants(self, grants: tuple[GrantIR, ...]) -> list[Statement]:
        """``USE CATALOG`` / ``USE SCHEMA`` once per principal and container (never revoked: they open no data and
        other tables may need them), then each privilege (revoked on rollback)."""
        out: list[Statement] = []
        seen: set[tuple[str, str, str]] = set()
        for g in grants:
            who = ident(g.principal)
            for kind, parts in (("CATALOG", g.table.parts[:1]), ("SCHEMA", g.table.parts[:2])):
                key = (kind, ".".join(parts).lower(), g.principal)
                if key not in seen:
                    seen.add(key)
                    privs = Privileges(kind, Name(parts), g.principal, (f"USE {kind}",))
                    out.append(Statement(f"GRANT USE {kind} ON {kind} {Name(parts).sql()} TO {who}", "grant",
                                         f"{g.principal} uses {'.'.join(parts)}", grant=privs))
            out.extend(self.grant_schema(g) if g.securable == "SCHEMA" else self.grant_table(g))
        return out

    def grant_schema(self, g: GrantIR) -> list[Statement]:
        """What ingest needs on the schema of the tables it creates (``CREATE TABLE, MODIFY, SELECT``)."""
        privileges, who, s = ", ".join(g.privileges), ident(g.principal), g.table.sql()
        about = f"{g.principal} writes {g.table}"
        undo = Statement(f"REVOKE {privileges} ON SCHEMA {s} FROM {who}", "revoke", about)
        return [Statement(f"GRANT {privileges} ON SCHEMA {s} TO {who}", "grant", about, undo,
                          grant=Privileges("SCHEMA", g.table, g.principal, g.privileges))]

    def grant_table(self, g: GrantIR) -> list[Statement]:
        privileges, who, t = ", ".join(g.privileges), ident(g.principal), g.table.sql()
        about = f"{g.principal} on {g.table}"
        undo = Statement(f"REVOKE {privileges} ON TABLE {t} FROM {who}", "revoke", about)
        return [Statement(f"GRANT {privileges} ON TABLE {t} TO {who}", "grant", about, undo,
                          grant=Privileges("TABLE", g.table, g.principal, g.privileges),
                          requires=g.table if g.ingest_written else None)]

    # ---------------------------------------------------------------------------------- shared statement forms
    @staticmethod
    def call(fn: Name, args: list[str], temporary: bool = False) -> str:
        name = ident(fn.leaf) if temporary else fn.sql()
        return f"{name}({', '.join(ident(a) for a in args)})"

    def alter(self, table: TableIR | BronzeIR) -> str:
        """``ALTER TABLE t`` / ``ALTER MATERIALIZED VIEW t`` / ``ALTER STREAMING TABLE t``."""
        return f"ALTER {RELATION[getattr(table, 'kind', 'table')]} {table.name.sql()}"

    def set_tags(self, table: TableIR | BronzeIR, column: str | None, tags: dict[str, str]) -> Statement:
        """``… [ALTER COLUMN c] SET TAGS ('k' = 'v', …)``, undone by ``UNSET TAGS ('k', …)`` (idempotent both ways)."""
        target = f"{self.alter(table)}{f' ALTER COLUMN {ident(column)}' if column else ''}"
        about = f"{table.name}.{column}" if column else str(table.name)
        pairs = ", ".join(f"{string(k)} = {string(v)}" for k, v in tags.items())
        needs = _ingest_created(table)
        undo = Statement(f"{target} UNSET TAGS ({', '.join(string(k) for k in tags)})", "unset_tags", about,
                         requires=needs)
        return Statement(f"{target} SET TAGS ({pairs})", "set_tags", about, undo, requires=needs,
                         tags=tuple(tags.items()))

    def comment(self, table: TableIR | BronzeIR, column: str, text: str) -> Statement:
        target = f"{table.name.sql()}.{ident(column)}"
        about = f"{table.name}.{column}"
        needs = _ingest_created(table)
        undo = Statement(f"COMMENT ON COLUMN {target} IS NULL", "comment", about, requires=needs)
        return Statement(f"COMMENT ON COLUMN {target} IS {string(text)}", "comment", about, undo, requires=needs)

    def column_tags(self, meta: ColumnMeta) -> dict[str, str]:
        tags = {TAG_PHI: meta.phi} if meta.phi else {}
        if meta.protection:
            tags[TAG_PROTECTION] = meta.protection
        if meta.mask:
            tags[TAG_MASK] = meta.mask
        return tags

    def describe(self, table: TableIR | BronzeIR, extra: dict[str, dict[str, str]] | None = None) -> list[Statement]:
        """The table tag naming the policy, then per column its tags (plus ``extra`` ones) and a comment saying how
        it is protected."""
        assert self.ir is not None
        out = [self.set_tags(table, None, {TAG_POLICY: self.ir.policy_name})]
        extra = dict(extra or {})
        for meta in table.columns:
            out.append(self.set_tags(table, meta.column, {**self.column_tags(meta), **extra.pop(meta.column, {})}))
            out.append(self.comment(table, meta.column, self.protection_text(table, meta)))
        out.extend(self.set_tags(table, col, tags) for col, tags in extra.items())
        return out

    def protection_text(self, table: TableIR | BronzeIR, meta: ColumnMeta) -> str:
        assert self.ir is not None
        what = f"PHI ({meta.phi})" if meta.phi else "governed column"
        how = [f"ingest {meta.protection}"] if meta.protection else []
        if meta.mask:
            how.append(f"masked by {Name(self.ir.function_schema.parts + (meta.mask,))}")
        text = f"{what}: {', '.join(how) or 'protected'} (lakehouse-phi policy {self.ir.policy_name})"
        return f"{meta.description} - {text}" if meta.description else text


Generator._functions, Generator._renderings = _build_dispatch(Generator)


def _ingest_created(table: TableIR | BronzeIR) -> Name | None:
    """A bronze table is created by the first ingest: its metadata waits until it exists."""
    return table.name if isinstance(table, BronzeIR) else None


def _top_code(birth_day: str, otherwise: str, age: int, sql_type: str) -> str:
    """Safe Harbor's 90+: born on or before today minus ``age`` years (``add_months``: 29 Feb -> 28 Feb) gives the
    first day of year (current year - ``age``), as a DATE or a TIMESTAMP at 00:00 UTC; else ``otherwise``."""
    bucket = f"make_date(year(current_date()) - {age}, 1, 1)"
    if sql_type != "DATE":
        bucket = f"timestamp_seconds(CAST(unix_date({bucket}) AS BIGINT) * 86400)"
    return f"CASE WHEN {birth_day} <= add_months(current_date(), {-12 * age}) THEN {bucket} ELSE {otherwise} END"
