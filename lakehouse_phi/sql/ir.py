"""Policy -> a small intermediate form of the governance SQL: per governed table, its mask functions and row filter
(each target writes the statements that bind them).

Everything a generator needs is resolved and checked here, once, for every target: identifiers (each part a
plain SQL identifier), group names (account names, as literals), constants, every ``where`` (sqlglot,
:mod:`lakehouse_phi.sql.where`), the key and associated data of ``decrypt`` and the generated function names.
:func:`build_ir` reports all problems together as a :class:`PolicyError`.

Function names: ``<function_schema>.mask_<table>_<column>`` and ``<function_schema>.filter_<table>``, lower case,
where ``<table>`` is the governed table's last name part. When two governed tables share that last part, their
functions are named after as many trailing parts as make them distinct (``mask_silver_patients_ssn`` beside
``mask_gold_patients_ssn``). A name that still collides (``a_b`` + ``c`` versus ``a`` + ``b_c``) is a problem to fix
in the policy, never a silent overwrite. Spark identifiers are case-insensitive, so are these comparisons.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from lakehouse_phi.errors import PolicyError, Problem
from lakehouse_phi.policy import columns
from lakehouse_phi.policy.load import LoadedPolicy
from lakehouse_phi.policy.model import (
    IDENT_RE,
    PHI_CATEGORIES,
    GovernedTable,
    MaskSpec,
    Rendering,
    RowFilterSpec,
    TableSpec,
)
from lakehouse_phi.sql.quoting import CONTROL_RE, qualified
from lakehouse_phi.sql.where import check_where
from lakehouse_phi.transforms.partial import PartialParams

#: Identifier length limit of Unity Catalog names.
MAX_IDENT = 255


@dataclass(frozen=True)
class Name:
    """A validated, possibly qualified SQL name (``main.silver.patients``)."""

    parts: tuple[str, ...]

    @property
    def leaf(self) -> str:
        return self.parts[-1]

    def sql(self) -> str:
        return qualified(self.parts)

    def __str__(self) -> str:
        return ".".join(self.parts)


#: The row column that names, per output column, the key version that wrote it (``map<string,int>``).
KEY_VERSIONS_COLUMN = columns.KEY_VERSIONS
#: Its type as the generators name it (:attr:`Generator.TYPE_MAPPING`).
KEY_VERSIONS_TYPE = "map<string,int>"


@dataclass(frozen=True)
class DecryptKey:
    """What ``{decrypt: TABLE.COLUMN}`` needs in SQL: the Databricks secret holding the AES key, and the AAD.

    With older key versions (``keys.<k>.previous``), ``previous`` lists ``(version, scope, key)`` of each and the
    mask picks the secret by the row's ``_key_versions[column]`` (``column`` is the ingest output column)."""

    scope: str
    key: str
    aad: str
    previous: tuple[tuple[int, str, str], ...] = ()
    column: str = ""


@dataclass(frozen=True)
class Show:
    """A resolved rendering: ``kind`` as in the policy; ``arg`` the redact constant, the normalized partial or
    age_cap parameters, the generalize_date period, or a :class:`DecryptKey`."""

    kind: str
    arg: Any = None


@dataclass(frozen=True)
class LeafMask:
    """One governed leaf of a nested column: its path (``[].value``), scalar type and renderings per group."""

    path: str
    type: str
    cases: tuple[tuple[tuple[str, ...], Show], ...]
    otherwise: Show


@dataclass(frozen=True)
class MaskFunction:
    name: Name
    table: Name
    column: str
    #: The column's (normalized) policy type, which the function takes and returns (``string``,
    #: ``decimal(12,2)``...); each generator names it in its own SQL (:attr:`Generator.TYPE_MAPPING`).
    type: str
    #: (account group names, rendering), tried in order.
    cases: tuple[tuple[tuple[str, ...], Show], ...]
    otherwise: Show
    #: A nested column (``type`` in DDL form): the governed leaves, each with its own cases (``cases`` and
    #: ``otherwise`` above are then unused: the column is rebuilt with only these leaves masked).
    leaves: tuple[LeafMask, ...] = ()

    @property
    def versioned(self) -> bool:
        """A decrypt rendering has older key versions: the function also takes the row's ``_key_versions``
        (bound with ``USING COLUMNS``)."""
        return any(show.kind == "decrypt" and isinstance(show.arg, DecryptKey) and show.arg.previous
                   for show in (*(s for _, s in self.cases), self.otherwise))

    @property
    def params(self) -> tuple[tuple[str, str], ...]:
        extra = ((KEY_VERSIONS_COLUMN, KEY_VERSIONS_TYPE),) if self.versioned else ()
        return ((self.column, self.type), *extra)

    @property
    def using_columns(self) -> tuple[str, ...]:
        """The columns passed to the mask besides the masked one (``SET MASK … USING COLUMNS``)."""
        return tuple(c for c, _ in self.params[1:])

    @property
    def returns(self) -> str:
        return self.type


@dataclass(frozen=True)
class RowFilterFunction:
    name: Name
    table: Name
    #: (column, policy type)
    params: tuple[tuple[str, str], ...]
    #: (account group names, normalized where), tried in order.
    cases: tuple[tuple[tuple[str, ...], str], ...]
    otherwise: str
    returns = "boolean"


@dataclass(frozen=True)
class ColumnMeta:
    """What a column's metadata says about it: the PHI category (``None`` when not known), how it is protected
    (the ingest strategy), and the function masking it (governed tables)."""

    column: str
    phi: str | None
    protection: str | None
    mask: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class TableIR:
    name: Name
    masks: tuple[MaskFunction, ...]
    row_filter: RowFilterFunction | None
    #: ``table`` | ``materialized_view`` | ``streaming_table``
    kind: str = "table"
    #: every masked column (policy order), with what is known about it
    columns: tuple[ColumnMeta, ...] = ()


@dataclass(frozen=True)
class BronzeIR:
    """A bronze table written by ingest (``tables.<t>.bronze``) and its PHI columns (including derived ones)."""

    name: Name
    columns: tuple[ColumnMeta, ...]


#: The audit trail's table name beside a bronze table (``lakehouse_phi.storage.targets.default_audit_target``).
AUDIT_TRAIL_TABLE = "lakehouse_phi_audit"
#: What a ``modify`` grant on a table that ingest creates becomes, on that table's schema (with USE SCHEMA):
#: the tables do not exist before the first ingest, and ingest must be able to create them.
INGEST_SCHEMA_PRIVILEGES = ("CREATE TABLE", "MODIFY", "SELECT")


@dataclass(frozen=True)
class GrantIR:
    """``GRANT <privileges> ON <securable> <table> TO <principal>`` (an account group name, or a service principal's
    application id, as written). ``securable`` is ``TABLE`` or ``SCHEMA`` (then ``table`` names the schema);
    ``ingest_written``: the table is one ingest creates (bronze, quarantine, audit trail), so it may not exist yet."""

    privileges: tuple[str, ...]
    table: Name
    principal: str
    securable: str = "TABLE"
    ingest_written: bool = False


@dataclass(frozen=True)
class PolicyIR:
    policy_name: str
    sha256: str
    function_schema: Name
    tables: tuple[TableIR, ...] = field(default_factory=tuple)
    bronze: tuple[BronzeIR, ...] = field(default_factory=tuple)
    grants: tuple[GrantIR, ...] = field(default_factory=tuple)
    #: principals that ABAC policies exempt (``governance.except``: pipeline run-as identities, ingest)
    excepted: tuple[str, ...] = ()

    @property
    def functions(self) -> Iterator[MaskFunction | RowFilterFunction]:
        for t in self.tables:
            yield from t.masks
            if t.row_filter is not None:
                yield t.row_filter


# ---------------------------------------------------------------------------------------------------- checks
class _Resolver:
    """Resolves the policy's governance text into IR parts, recording every problem (raised together at the end)."""

    def __init__(self, loaded: LoadedPolicy) -> None:
        self.loaded = loaded
        self.policy = loaded.policy
        self.problems: list[Problem] = []
        #: the checked ``function_schema`` (``None`` until known, or when it is not valid)
        self.schema: Name | None = None
        #: generated function names so far (lower case) -> the place that generated each
        self.functions: dict[str, str] = {}

    def add(self, place: str, message: str) -> None:
        self.problems.append(Problem(place, message))

    def raise_problems(self) -> None:
        if self.problems:
            raise PolicyError(self.problems, self.loaded.path)

    def function_name(self, stem: str, place: str) -> Name | None:
        """``<function_schema>.<stem>``, unless too long or already generated elsewhere (a problem)."""
        if self.schema is None:
            return None
        if len(stem) > MAX_IDENT:
            self.add(place, f"the generated function name {stem!r} is longer than {MAX_IDENT} characters")
            return None
        if stem in self.functions:
            self.add(place, f"the generated function name {stem!r} is also generated for {self.functions[stem]}; "
                            "rename a column so the names differ")
            return None
        self.functions[stem] = place
        return Name(self.schema.parts + (stem,))

    def ident(self, value: str, place: str, what: str) -> bool:
        if IDENT_RE.fullmatch(value) and len(value) <= MAX_IDENT:  # fullmatch: `$` alone allows a final \n
            return True
        self.add(place, f"{what} {value!r} is not a plain SQL identifier (letters, digits and _, not starting with a "
                        f"digit, at most {MAX_IDENT} characters); rename it")
        return False

    def name(self, value: str, place: str, what: str, parts: tuple[int, ...]) -> Name | None:
        split = value.split(".")
        if len(split) not in parts:
            shape = " or ".join({1: "NAME", 2: "SCHEMA.NAME", 3: "CATALOG.SCHEMA.NAME"}[n] for n in parts)
            self.add(place, f"{what} {value!r} must be written {shape}")
            return None
        checked = [self.ident(p, place, f"{what} part") for p in split]  # every part, so every problem is reported
        return Name(tuple(split)) if all(checked) else None

    def text(self, value: str, place: str, what: str) -> bool:
        """A string that ends up in a literal or a comment: no control characters, no ``${``."""
        if CONTROL_RE.search(value):
            self.add(place, f"{what} contains a control character (newline, tab...); remove it")
            return False
        if "${" in value:
            self.add(place, f"{what} contains '${{', which Spark substitutes even inside string literals; remove it")
            return False
        return True

    def groups(self, logical: list[str], place: str) -> tuple[str, ...]:
        out = []
        for g in logical:
            account = self.policy.groups.get(g)
            if account is None:  # reported by the loader; keep going
                continue
            if self.text(account, f"groups.{g}", "account group name") and account.strip():
                out.append(account)
            elif not account.strip():
                self.add(f"groups.{g}", "account group name is empty")
        return tuple(dict.fromkeys(out))

    def show(self, r: Rendering, place: str, column: str | None = None) -> Show:
        if r.kind == "generalize_date":  # top_code_age: as written, else 90 on a date of birth of tables:
            arg = r.arg if isinstance(r.arg, dict) else {"to": r.arg}
            dob = column is not None and column.lower() in self.birth_dates()
            return Show("generalize_date", {"top_code_age": 90 if dob else None, **arg})
        if r.kind == "redact":
            self.text(r.arg, place, "redact constant")
            return Show("redact", r.arg)
        if r.kind == "partial":
            arg = PartialParams.model_validate(r.arg).model_dump()  # the written parameters with defaults
            self.text(arg["mask_char"], place, "partial.mask_char")
            return Show("partial", arg)
        if r.kind == "decrypt":
            return Show("decrypt", self.decrypt_key(r.arg, place))
        return Show(r.kind, r.arg)

    def birth_dates(self) -> set[str]:
        """Lower-case names of every ``phi: date_of_birth`` column of tables: (ingest columns and derive outputs)."""
        return {name.lower() for t in self.policy.tables.values() for c, spec in t.columns.items()
                if spec.phi == "date_of_birth" for name in (c, *spec.derive)}

    def decrypt_key(self, ref: str, place: str) -> DecryptKey | None:
        """The loader has checked that ``ref`` is an ingest ``encrypt`` column with a databricks key."""
        column = ref.split(".", 1)[1]
        found = self.policy.ingest_rule_of(ref)
        rule = found[1] if found is not None else None
        key_name = rule.params.get("key") if rule is not None else None
        key = self.policy.keys.get(key_name) if isinstance(key_name, str) else None
        if rule is None or rule.strategy != "encrypt" or key is None or key.provider != "databricks":
            self.add(place, f"decrypt names {ref!r}, which is not an ingest encrypt column with a databricks key")
            return None
        scope, secret = key.databricks_scope_key
        ok = self.text(scope, place, "secret scope") & self.text(secret, place, "secret key")
        previous = []
        for version, old_ref in sorted(key.previous.items()):
            old_scope, old_secret = old_ref.split("/", 1)
            ok &= self.text(old_scope, place, "secret scope") & self.text(old_secret, place, "secret key")
            previous.append((int(version), old_scope, old_secret))
        return DecryptKey(scope, secret, ref, tuple(previous), column) if ok else None


def _function_names(tables: dict[str, Name]) -> dict[str, str]:
    """Governed table (as written) -> the table part of its function names (see the module docstring)."""
    out: dict[str, str] = {}
    for written, name in tables.items():
        depth = 1
        while depth < len(name.parts):
            mine = name.parts[-depth:]
            if not any(o.parts[-depth:] == mine for w, o in tables.items() if w != written):
                break
            depth += 1
        out[written] = "_".join(name.parts[-depth:]).lower()
    return out


def build_ir(loaded: LoadedPolicy) -> PolicyIR:
    """Resolve and check ``loaded.policy.governance``. Raises :class:`PolicyError` listing every problem."""
    r = _Resolver(loaded)
    pol = loaded.policy
    r.text(pol.name, "name", "policy name")
    gov = pol.governance
    if gov is None:
        r.raise_problems()
        return PolicyIR(pol.name, loaded.sha256, Name(("governance",)), ())
    r.schema = r.name(gov.function_schema, "governance.function_schema", "function_schema", (1, 2))
    names = _governed_names(r, gov.tables)
    stems = _function_names(names)
    tables = []
    for written, spec in gov.tables.items():
        table = _table(r, written, spec, names.get(written), stems.get(written, ""))
        if table is not None:
            tables.append(table)
    bronze = _bronze(r)
    grants = _grants(r, gov)
    excepted = r.groups(list(gov.except_), "governance.except")
    r.raise_problems()
    assert r.schema is not None
    return PolicyIR(pol.name, loaded.sha256, r.schema, tuple(tables), bronze, grants, excepted)


def _governed_names(r: _Resolver, governed: dict[str, GovernedTable]) -> dict[str, Name]:
    """Each governed table's checked name (as written -> :class:`Name`); two spellings of one table are a problem."""
    names: dict[str, Name] = {}
    for written in governed:
        n = r.name(written, f"governance.tables.{written}", "governed table", (1, 2, 3))
        if n is not None:
            names[written] = n
    seen: dict[tuple[str, ...], str] = {}
    for written, n in names.items():
        key = tuple(p.lower() for p in n.parts)
        if key in seen:
            r.add(f"governance.tables.{written}", f"same table as {seen[key]!r} (names are case-insensitive)")
        seen.setdefault(key, written)
    return names


def _table(r: _Resolver, written: str, spec: GovernedTable, name: Name | None, stem: str) -> TableIR | None:
    """One governed table's functions; every part is checked even when the table's own name is not valid."""
    place = f"governance.tables.{written}"
    masks = _masks(r, place, spec, name, stem)
    row_filter = _row_filter(r, f"{place}.row_filter", spec.row_filter, name, stem) if spec.row_filter else None
    if name is None:
        return None
    metas = tuple(_governed_meta(r, name, m) for m in masks)
    return TableIR(name, masks, row_filter, spec.kind, metas)


def _masks(r: _Resolver, place: str, spec: GovernedTable, table: Name | None, stem: str) -> tuple[MaskFunction, ...]:
    out: list[MaskFunction] = []
    seen: dict[str, str] = {}
    for col, mask in spec.masks.items():
        mplace = f"{place}.masks.{col}"
        col_ok = r.ident(col, mplace, "column")
        if col.lower() in seen:
            r.add(mplace, f"column {col!r} is masked twice (also as {seen[col.lower()]!r}; names are "
                          "case-insensitive)")
            col_ok = False
        seen.setdefault(col.lower(), col)
        cases = tuple((r.groups(rule.to, f"{mplace}.rules.{i}.to"), r.show(rule.show, f"{mplace}.rules.{i}.show", col))
                      for i, rule in enumerate(mask.rules))
        otherwise = r.show(mask.otherwise, f"{mplace}.otherwise", col)
        leaves = _leaf_masks(r, mplace, mask)
        fname = r.function_name(f"mask_{stem}_{col.lower()}", mplace) if table and col_ok else None
        if fname is not None and table is not None:
            out.append(MaskFunction(fname, table, col, mask.type, cases, otherwise, leaves))
    return tuple(out)


def _leaf_masks(r: _Resolver, mplace: str, mask: MaskSpec) -> tuple[LeafMask, ...]:
    """The governed leaves of a nested column's mask, in the order written."""
    out = []
    for path, leaf in mask.fields.items():
        lplace = f"{mplace}.fields.{path}"
        cases = tuple((r.groups(rule.to, f"{lplace}.rules.{i}.to"), r.show(rule.show, f"{lplace}.rules.{i}.show"))
                      for i, rule in enumerate(leaf.rules))
        out.append(LeafMask(path, leaf.type, cases, r.show(leaf.otherwise, f"{lplace}.otherwise")))
    return tuple(out)


def _row_filter(r: _Resolver, place: str, rf: RowFilterSpec, table: Name | None, stem: str) -> RowFilterFunction | None:
    cols_ok = True
    lowered: set[str] = set()
    for i, col in enumerate(rf.columns):
        cols_ok &= r.ident(col, f"{place}.columns.{i}", "column")
        if col.lower() in lowered:
            r.add(f"{place}.columns.{i}", f"column {col!r} is listed twice")
            cols_ok = False
        lowered.add(col.lower())
    written = [(r.groups(rule.to, f"{place}.rules.{i}.to"),
                _where(r, rule.where, rf.columns, f"{place}.rules.{i}.where")) for i, rule in enumerate(rf.rules)]
    otherwise = _where(r, rf.otherwise, rf.columns, f"{place}.otherwise")
    cases = tuple((groups, where) for groups, where in written if where is not None)
    fname = r.function_name(f"filter_{stem}", place) if table and cols_ok else None
    if fname is None or table is None or otherwise is None or len(cases) < len(written):
        return None  # a problem was recorded
    params = tuple((col, rf.types.get(col, "string")) for col in rf.columns)
    return RowFilterFunction(fname, table, params, cases, otherwise)


def _outputs(spec: TableSpec) -> dict[str, ColumnMeta]:
    """Bronze output column -> its PHI category and ingest strategy (derived columns carry their source's
    category)."""
    out: dict[str, ColumnMeta] = {}
    for name, col in spec.columns.items():
        if col.fields:  # a struct column, masked leaf by leaf at ingest: tagged with its leading category
            phis = sorted({leaf.phi for leaf in col.fields.values() if leaf.phi}, key=_category_rank)
            leaves = f"PHI in leaves: {', '.join(phis)}" if phis else None
            out[name] = ColumnMeta(name, phis[0] if phis else None, "per_leaf" if phis else "keep",
                                   description=f"{col.description} ({leaves})" if col.description and leaves
                                   else col.description or leaves)
        else:
            out[name] = ColumnMeta(name, col.phi, col.effective_ingest.strategy, description=col.description)
        for dname, rule in col.derive.items():
            out[dname] = ColumnMeta(dname, col.phi, rule.strategy)
    return out


def _category_rank(phi: str) -> tuple[bool, int]:
    """Direct identifiers first (in the policy's category order), then dates and free text."""
    return (phi in ("date", "free_text", "other"), PHI_CATEGORIES.index(phi))


def _governed_meta(r: _Resolver, table: Name, mask: MaskFunction) -> ColumnMeta:
    """A governed column's category and ingest protection, when the governed table is named like an ingest table
    (its last part is the policy's table name or its bronze table's last part) that has the column."""
    for tname, spec in r.policy.tables.items():
        if table.leaf.lower() in (tname.lower(), spec.bronze.rsplit(".", 1)[-1].lower()):
            meta = _outputs(spec).get(mask.column)
            if meta is not None:
                return ColumnMeta(mask.column, meta.phi, meta.protection, mask.name.leaf)
    return ColumnMeta(mask.column, None, None, mask.name.leaf)


def _bronze(r: _Resolver) -> tuple[BronzeIR, ...]:
    """Every bronze *table* (a target written as a path, ``/...`` or ``s3://...``, is no catalog object) with its
    PHI columns."""
    out = []
    for tname, spec in r.policy.tables.items():
        if "/" in spec.bronze or ":" in spec.bronze:
            continue
        name = r.name(spec.bronze, f"tables.{tname}.bronze", "bronze table", (1, 2, 3))
        metas = tuple(m for m in _outputs(spec).values() if m.phi is not None)
        for m in metas:
            r.ident(m.column, f"tables.{tname}.columns.{m.column}", "column")
            if m.description is not None:
                r.text(m.description, f"tables.{tname}.columns.{m.column}.description", "description")
        if name is not None and metas:
            out.append(BronzeIR(name, metas))
    return tuple(out)


def ingest_written(policy: Any) -> set[tuple[str, ...]]:
    """Lower-case names of the catalog tables ingest creates: each bronze table, its quarantine, and the audit trail
    beside it (or where ``audit.table`` puts it)."""
    out: set[tuple[str, ...]] = set()
    for spec in policy.tables.values():
        for target in (spec.bronze, spec.quarantine_target):
            if "/" in target or ":" in target:
                continue
            parts = tuple(p.lower() for p in target.split("."))
            out.add(parts)
            out.add(parts[:-1] + (AUDIT_TRAIL_TABLE,))
    trail = policy.audit.table if getattr(policy, "audit", None) is not None else None
    if trail:  # the trail in a schema of its own (audit.table)
        out.add(tuple(p.lower() for p in trail.split(".")))
    return out


def _grants(r: _Resolver, gov: Any) -> tuple[GrantIR, ...]:
    """Table grants; a ``modify`` grant on a table ingest creates becomes ``CREATE TABLE, MODIFY, SELECT`` on its
    schema (the first deploy runs before the first ingest); a ``select`` on one is granted once the table exists."""
    out: dict[GrantIR, None] = {}
    written = ingest_written(r.policy)
    for i, grant in enumerate(gov.grants):
        principals = r.groups(grant.to, f"governance.grants.{i}.to")
        for key, privileges in (("select", ("SELECT",)), ("modify", ("SELECT", "MODIFY"))):
            for j, text in enumerate(getattr(grant, key)):
                name = r.name(text, f"governance.grants.{i}.{key}.{j}", "table", (3,))
                if name is None:
                    continue
                by_ingest = tuple(p.lower() for p in name.parts) in written
                if by_ingest and key == "modify":
                    schema = Name(name.parts[:2])
                    out.update({GrantIR(INGEST_SCHEMA_PRIVILEGES, schema, p, "SCHEMA"): None for p in principals})
                else:
                    out.update({GrantIR(privileges, name, p, ingest_written=by_ingest): None for p in principals})
    return tuple(out)


def _where(r: _Resolver, text: str, columns: list[str], place: str) -> str | None:
    if CONTROL_RE.search(text.replace("\n", " ").replace("\t", " ").replace("\r", " ")):
        r.add(place, "contains a control character; remove it")
        return None
    result = check_where(text, columns)
    for msg in result.problems:
        r.add(place, msg)
    return result.sql

