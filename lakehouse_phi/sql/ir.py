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
from lakehouse_phi.policy.model import IDENT_RE, Governance, GovernedTable, Rendering, RowFilterSpec
from lakehouse_phi.sql.quoting import CONTROL_RE, qualified, sql_type
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


@dataclass(frozen=True)
class DecryptKey:
    """What ``{decrypt: TABLE.COLUMN}`` needs in SQL: the Databricks secret holding the AES key, and the AAD."""

    scope: str
    key: str
    aad: str


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
    #: The column's Spark SQL type, which the function returns (``STRING``, ``DECIMAL(12,2)``...).
    sql_type: str
    #: (account group names, rendering), tried in order.
    cases: tuple[tuple[tuple[str, ...], Show], ...]
    otherwise: Show

    @property
    def params(self) -> tuple[tuple[str, str], ...]:
        return ((self.column, self.sql_type),)

    @property
    def returns(self) -> str:
        return self.sql_type


@dataclass(frozen=True)
class RowFilterFunction:
    name: Name
    table: Name
    params: tuple[tuple[str, str], ...]
    #: (account group names, normalized where), tried in order.
    cases: tuple[tuple[tuple[str, ...], str], ...]
    otherwise: str
    returns = "BOOLEAN"


@dataclass(frozen=True)
class TableIR:
    name: Name
    masks: tuple[MaskFunction, ...]
    row_filter: RowFilterFunction | None


@dataclass(frozen=True)
class PolicyIR:
    policy_name: str
    sha256: str
    function_schema: Name
    tables: tuple[TableIR, ...] = field(default_factory=tuple)

    @property
    def functions(self) -> Iterator[MaskFunction | RowFilterFunction]:
        for t in self.tables:
            yield from t.masks
            if t.row_filter is not None:
                yield t.row_filter



# ---------------------------------------------------------------------------------------------------- building
class _IRBuilder:
    """Builds the IR of one policy step by step, collecting every problem instead of stopping at the first."""

    def __init__(self, loaded: LoadedPolicy) -> None:
        self.loaded = loaded
        self.policy = loaded.policy
        self.problems: list[Problem] = []
        self.schema: Name | None = None
        #: lower-case generated function name -> the place it was generated for
        self.functions: dict[str, str] = {}

    def add(self, place: str, message: str) -> None:
        self.problems.append(Problem(place, message))

    # ------------------------------------------------------------------ values
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

    def show(self, r: Rendering, place: str) -> Show:
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
        return DecryptKey(scope, secret, ref) if ok else None

    def where(self, text: str, columns: list[str], place: str) -> str | None:
        if CONTROL_RE.search(text.replace("\n", " ").replace("\t", " ").replace("\r", " ")):
            self.add(place, "contains a control character; remove it")
            return None
        result = check_where(text, columns)
        for msg in result.problems:
            self.add(place, msg)
        return result.sql

    # ------------------------------------------------------------------ steps
    def table_names(self, gov: Governance) -> dict[str, Name]:
        """Governed table (as written) -> its checked name; a table written twice (any case) is a problem."""
        names: dict[str, Name] = {}
        for written in gov.tables:
            n = self.name(written, f"governance.tables.{written}", "governed table", (1, 2, 3))
            if n is not None:
                names[written] = n
        seen: dict[tuple[str, ...], str] = {}
        for written, n in names.items():
            key = tuple(p.lower() for p in n.parts)
            if key in seen:
                self.add(f"governance.tables.{written}", f"same table as {seen[key]!r} (names are case-insensitive)")
            seen.setdefault(key, written)
        return names

    def function_name(self, stem: str, place: str) -> Name | None:
        """``<function_schema>.<stem>``, unless the schema is invalid or the name is too long or already taken."""
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

    def masks(self, tname: Name | None, stem: str, spec: GovernedTable, tplace: str) -> list[MaskFunction]:
        out: list[MaskFunction] = []
        seen_cols: dict[str, str] = {}
        for col, mask in spec.masks.items():
            mplace = f"{tplace}.masks.{col}"
            col_ok = self.ident(col, mplace, "column")
            if col.lower() in seen_cols:
                self.add(mplace, f"column {col!r} is masked twice (also as {seen_cols[col.lower()]!r}; names are "
                                 "case-insensitive)")
                col_ok = False
            seen_cols.setdefault(col.lower(), col)
            cases = tuple((self.groups(r.to, f"{mplace}.rules.{i}.to"), self.show(r.show, f"{mplace}.rules.{i}.show"))
                          for i, r in enumerate(mask.rules))
            otherwise = self.show(mask.otherwise, f"{mplace}.otherwise")
            fname = self.function_name(f"mask_{stem}_{col.lower()}", mplace) if tname and col_ok else None
            if fname is not None and tname is not None:
                out.append(MaskFunction(fname, tname, col, sql_type(mask.type), cases, otherwise))
        return out

    def row_filter(self, tname: Name | None, stem: str, rf: RowFilterSpec, tplace: str) -> RowFilterFunction | None:
        fplace = f"{tplace}.row_filter"
        cols_ok = True
        lowered: set[str] = set()
        for i, col in enumerate(rf.columns):
            cols_ok &= self.ident(col, f"{fplace}.columns.{i}", "column")
            if col.lower() in lowered:
                self.add(f"{fplace}.columns.{i}", f"column {col!r} is listed twice")
                cols_ok = False
            lowered.add(col.lower())
        cases = [(self.groups(r.to, f"{fplace}.rules.{i}.to"),
                  self.where(r.where, rf.columns, f"{fplace}.rules.{i}.where")) for i, r in enumerate(rf.rules)]
        otherwise = self.where(rf.otherwise, rf.columns, f"{fplace}.otherwise")
        fname = self.function_name(f"filter_{stem}", fplace) if tname and cols_ok else None
        checked = tuple((groups, where) for groups, where in cases if where is not None)
        if fname is None or tname is None or otherwise is None or len(checked) < len(cases):
            return None  # a problem was recorded
        params = tuple((col, sql_type(rf.types.get(col, "string"))) for col in rf.columns)
        return RowFilterFunction(fname, tname, params, checked, otherwise)


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
    b = _IRBuilder(loaded)
    pol = loaded.policy
    b.text(pol.name, "name", "policy name")
    gov = pol.governance
    if gov is None:
        if b.problems:
            raise PolicyError(b.problems, loaded.path)
        return PolicyIR(pol.name, loaded.sha256, Name(("governance",)), ())
    b.schema = b.name(gov.function_schema, "governance.function_schema", "function_schema", (1, 2))
    names = b.table_names(gov)
    stems = _function_names(names)
    tables: list[TableIR] = []
    for written, spec in gov.tables.items():
        tplace = f"governance.tables.{written}"
        tname = names.get(written)
        masks = b.masks(tname, stems.get(written, ""), spec, tplace)
        row_filter = (b.row_filter(tname, stems.get(written, ""), spec.row_filter, tplace)
                      if spec.row_filter is not None else None)
        if tname is not None:
            tables.append(TableIR(tname, tuple(masks), row_filter))
    if b.problems or b.schema is None:
        raise PolicyError(b.problems, loaded.path)
    return PolicyIR(pol.name, loaded.sha256, b.schema, tuple(tables))
