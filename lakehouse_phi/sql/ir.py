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
from lakehouse_phi.policy.load import LoadedPolicy
from lakehouse_phi.policy.model import IDENT_RE, Rendering, TableSpec
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
KEY_VERSIONS_COLUMN = "_key_versions"
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


@dataclass(frozen=True)
class GrantIR:
    """``GRANT <privileges> ON TABLE <table> TO <principal>`` (an account group name, as written)."""

    privileges: tuple[str, ...]
    table: Name
    principal: str


@dataclass(frozen=True)
class PolicyIR:
    policy_name: str
    sha256: str
    function_schema: Name
    tables: tuple[TableIR, ...] = field(default_factory=tuple)
    bronze: tuple[BronzeIR, ...] = field(default_factory=tuple)
    grants: tuple[GrantIR, ...] = field(default_factory=tuple)

    @property
    def functions(self) -> Iterator[MaskFunction | RowFilterFunction]:
        for t in self.tables:
            yield from t.masks
            if t.row_filter is not None:
                yield t.row_filter


# ---------------------------------------------------------------------------------------------------- checks
class _Checker:
    def __init__(self, loaded: LoadedPolicy) -> None:
        self.loaded = loaded
        self.policy = loaded.policy
        self.problems: list[Problem] = []

    def add(self, place: str, message: str) -> None:
        self.problems.append(Problem(place, message))

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
        for i, g in enumerate(logical):
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
        table, column = ref.split(".", 1)
        spec = self.policy.tables.get(table)
        rule = None
        if spec is not None:
            col = spec.columns.get(column)
            if col is not None:
                rule = col.effective_ingest
            else:
                rule = next((c.derive[column] for c in spec.columns.values() if column in c.derive), None)
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
    c = _Checker(loaded)
    pol = loaded.policy
    c.text(pol.name, "name", "policy name")
    gov = pol.governance
    if gov is None:
        if c.problems:
            raise PolicyError(c.problems, loaded.path)
        return PolicyIR(pol.name, loaded.sha256, Name(("governance",)), ())
    schema = c.name(gov.function_schema, "governance.function_schema", "function_schema", (1, 2))
    names: dict[str, Name] = {}
    for written in gov.tables:
        n = c.name(written, f"governance.tables.{written}", "governed table", (1, 2, 3))
        if n is not None:
            names[written] = n
    seen_tables: dict[tuple[str, ...], str] = {}
    for written, n in names.items():
        key = tuple(p.lower() for p in n.parts)
        if key in seen_tables:
            c.add(f"governance.tables.{written}", f"same table as {seen_tables[key]!r} (names are case-insensitive)")
        seen_tables.setdefault(key, written)
    stems = _function_names(names)
    functions: dict[str, str] = {}  # lower-case function name -> place

    def function_name(stem: str, place: str) -> Name | None:
        if schema is None:
            return None
        if len(stem) > MAX_IDENT:
            c.add(place, f"the generated function name {stem!r} is longer than {MAX_IDENT} characters")
            return None
        if stem in functions:
            c.add(place, f"the generated function name {stem!r} is also generated for {functions[stem]}; rename a "
                         "column so the names differ")
            return None
        functions[stem] = place
        return Name(schema.parts + (stem,))

    tables: list[TableIR] = []
    for written, spec in gov.tables.items():
        tplace = f"governance.tables.{written}"
        tname = names.get(written)
        masks: list[MaskFunction] = []
        seen_cols: dict[str, str] = {}
        for col, mask in spec.masks.items():
            mplace = f"{tplace}.masks.{col}"
            col_ok = c.ident(col, mplace, "column")
            if col.lower() in seen_cols:
                c.add(mplace, f"column {col!r} is masked twice (also as {seen_cols[col.lower()]!r}; names are "
                              "case-insensitive)")
                col_ok = False
            seen_cols.setdefault(col.lower(), col)
            cases = tuple((c.groups(r.to, f"{mplace}.rules.{i}.to"), c.show(r.show, f"{mplace}.rules.{i}.show", col))
                          for i, r in enumerate(spec.masks[col].rules))
            otherwise = c.show(mask.otherwise, f"{mplace}.otherwise", col)
            fname = function_name(f"mask_{stems[written]}_{col.lower()}", mplace) if tname and col_ok else None
            if fname is not None and tname is not None:
                masks.append(MaskFunction(fname, tname, col, mask.type, cases, otherwise))
        row_filter = None
        rf = spec.row_filter
        if rf is not None:
            fplace = f"{tplace}.row_filter"
            cols_ok = True
            lowered: set[str] = set()
            for i, col in enumerate(rf.columns):
                cols_ok &= c.ident(col, f"{fplace}.columns.{i}", "column")
                if col.lower() in lowered:
                    c.add(f"{fplace}.columns.{i}", f"column {col!r} is listed twice")
                    cols_ok = False
                lowered.add(col.lower())
            rcases = []
            for i, r in enumerate(rf.rules):
                groups = c.groups(r.to, f"{fplace}.rules.{i}.to")
                rcases.append((groups, _where(c, r.where, rf.columns, f"{fplace}.rules.{i}.where")))
            otherwise_where = _where(c, rf.otherwise, rf.columns, f"{fplace}.otherwise")
            fname = function_name(f"filter_{stems[written]}", fplace) if tname and cols_ok else None
            if fname is not None and tname is not None:
                params = tuple((col, rf.types.get(col, "string")) for col in rf.columns)
                row_filter = RowFilterFunction(fname, tname, params, tuple(rcases), otherwise_where)  # type: ignore[arg-type]
        if tname is not None:
            metas = tuple(_governed_meta(c, tname, m) for m in masks)
            tables.append(TableIR(tname, tuple(masks), row_filter, spec.kind, metas))
    bronze = _bronze(c)
    grants = _grants(c, gov)
    if c.problems:
        raise PolicyError(c.problems, loaded.path)
    assert schema is not None
    return PolicyIR(pol.name, loaded.sha256, schema, tuple(tables), bronze, grants)


def _outputs(spec: TableSpec) -> dict[str, ColumnMeta]:
    """Bronze output column -> its PHI category and ingest strategy (derived columns carry their source's
    category)."""
    out: dict[str, ColumnMeta] = {}
    for name, col in spec.columns.items():
        out[name] = ColumnMeta(name, col.phi, col.effective_ingest.strategy, description=col.description)
        for dname, rule in col.derive.items():
            out[dname] = ColumnMeta(dname, col.phi, rule.strategy)
    return out


def _governed_meta(c: _Checker, table: Name, mask: MaskFunction) -> ColumnMeta:
    """A governed column's category and ingest protection, when the governed table is named like an ingest table
    (its last part is the policy's table name or its bronze table's last part) that has the column."""
    for tname, spec in c.policy.tables.items():
        if table.leaf.lower() in (tname.lower(), spec.bronze.rsplit(".", 1)[-1].lower()):
            meta = _outputs(spec).get(mask.column)
            if meta is not None:
                return ColumnMeta(mask.column, meta.phi, meta.protection, mask.name.leaf)
    return ColumnMeta(mask.column, None, None, mask.name.leaf)


def _bronze(c: _Checker) -> tuple[BronzeIR, ...]:
    """Every bronze *table* (a target written as a path, ``/...`` or ``s3://...``, is no catalog object) with its
    PHI columns."""
    out = []
    for tname, spec in c.policy.tables.items():
        if "/" in spec.bronze or ":" in spec.bronze:
            continue
        name = c.name(spec.bronze, f"tables.{tname}.bronze", "bronze table", (1, 2, 3))
        metas = tuple(m for m in _outputs(spec).values() if m.phi is not None)
        for m in metas:
            c.ident(m.column, f"tables.{tname}.columns.{m.column}", "column")
            if m.description is not None:
                c.text(m.description, f"tables.{tname}.columns.{m.column}.description", "description")
        if name is not None and metas:
            out.append(BronzeIR(name, metas))
    return tuple(out)


def _grants(c: _Checker, gov: Any) -> tuple[GrantIR, ...]:
    out: dict[GrantIR, None] = {}
    for i, grant in enumerate(gov.grants):
        principals = c.groups(grant.to, f"governance.grants.{i}.to")
        for key, privileges in (("select", ("SELECT",)), ("modify", ("SELECT", "MODIFY"))):
            for j, written in enumerate(getattr(grant, key)):
                name = c.name(written, f"governance.grants.{i}.{key}.{j}", "table", (3,))
                if name is not None:
                    out.update({GrantIR(privileges, name, p): None for p in principals})
    return tuple(out)


def _where(c: _Checker, text: str, columns: list[str], place: str) -> str | None:
    if CONTROL_RE.search(text.replace("\n", " ").replace("\t", " ").replace("\r", " ")):
        c.add(place, "contains a control character; remove it")
        return None
    result = check_where(text, columns)
    for msg in result.problems:
        c.add(place, msg)
    return result.sql

