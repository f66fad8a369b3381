"""The typed policy model of ``shared/design/policy.md``.

Parsing (this module) checks shapes and types; :mod:`lakehouse_phi.policy.load` then runs the cross-reference
checks (keys, groups, strategies' parameters, decrypt targets) and reports every problem of a file at once.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_serializer, model_validator

from lakehouse_phi.policy import columns, types
from lakehouse_phi.transforms.age_cap import AgeCapParams
from lakehouse_phi.transforms.generalize_date import GeneralizeDateParams
from lakehouse_phi.transforms.partial import PartialParams
from lakehouse_phi.transforms.redact import RedactParams

#: Policy column types: the one type table is :mod:`lakehouse_phi.policy.types` (re-exported here).
SIMPLE_TYPES, DECIMAL_RE = types.SIMPLE_TYPES, types.DECIMAL_RE
normalize_type, check_type = types.normalize_type, types.check_type

#: HIPAA identifier categories (45 CFR 164.514(b)(2)) plus the clinical ones a lakehouse sees in practice.
PHI_CATEGORIES = (
    "name", "address", "zip", "date", "date_of_birth", "age", "phone", "fax", "email", "ssn",
    "medical_record_number", "health_plan_number", "account_number", "license_number", "vehicle_id",
    "device_id", "url", "ip", "biometric", "photo", "free_text", "other",
)

#: PHI categories that identify a person only in combination (Safe Harbor releases them generalized: a ZIP3, a
#: year, an age capped at 90); every other category is a direct identifier.
QUASI_PHI = ("zip", "date", "date_of_birth", "age")
DIRECT_IDENTIFIER_PHI = tuple(c for c in PHI_CATEGORIES if c not in QUASI_PHI)
#: The only strategies under which a direct identifier may leave in an export: one-way (a keyed pseudonym) or gone.
EXPORTABLE_DIRECT = ("hmac", "redact", "suppress")

#: Columns the package adds to (or carries through) bronze and quarantine rows: a policy may not declare them
#: (:mod:`lakehouse_phi.policy.columns` owns the names; its prefixes are refused too).
RESERVED_COLUMNS = columns.RESERVED

#: The longest landing value (in characters) a column accepts unless it declares ``max_length``: a longer one is
#: quarantined (rule ``max_length``) before it is parsed or masked.
DEFAULT_MAX_LENGTH = 65_536

#: A SQL identifier part as the generated SQL accepts it (quoted with backticks there).
IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Strict(BaseModel):
    """Unknown keys anywhere are an error."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# --------------------------------------------------------------------------------------------------- keys
KEY_PROVIDERS = ("env", "file", "databricks", "aws-secrets-manager", "aws-kms")


class KeySpec(Strict):
    """A named key: where its material is (``provider``/``ref``), its ``version``, and older versions still readable
    (``previous: {VERSION: REF}``, same provider)."""

    provider: Literal["env", "file", "databricks", "aws-secrets-manager", "aws-kms"]
    ref: str = Field(min_length=1)
    version: int = Field(default=1, ge=1)
    previous: dict[int, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _previous_versions(self) -> KeySpec:
        for v, ref in self.previous.items():
            if v < 1 or v >= self.version:
                raise ValueError(f"previous version {v} must be between 1 and version - 1 ({self.version - 1})")
            if not isinstance(ref, str) or not ref:
                raise ValueError(f"previous version {v} needs a non-empty ref")
            if self.provider == "databricks" and not re.fullmatch(r"[^/\s]+/[^/\s]+", ref):
                raise ValueError(f"found previous ref {ref!r} (version {v}); a databricks key ref is 'scope/key'")
        return self

    @model_validator(mode="after")
    def _databricks_ref(self) -> KeySpec:
        if self.provider == "databricks" and not re.fullmatch(r"[^/\s]+/[^/\s]+", self.ref):
            raise ValueError(f"found ref {self.ref!r}; a databricks key ref is 'scope/key'")
        return self

    @property
    def databricks_scope_key(self) -> tuple[str, str]:
        scope, key = self.ref.split("/", 1)
        return scope, key


# -------------------------------------------------------------------------------------------- ingest rules
class IngestRule(BaseModel):
    """``{strategy: NAME, **params}``; ``ingest: NAME`` is shorthand for ``{strategy: NAME}``.

    ``params`` are checked against the strategy's own parameter model by the loader, which knows the registry.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    strategy: str
    justification: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    #: ``derive`` of a nested column: the leaf it reads (``address[0].postalCode``: one element, by index).
    source: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"strategy": data}
        if isinstance(data, dict):
            if "params" in data:
                raise ValueError("write a strategy's parameters beside 'strategy', not under 'params'")
            if "strategy" not in data:
                raise ValueError("found no 'strategy'; write {strategy: NAME, ...parameters} or just NAME")
            params = {k: v for k, v in data.items() if k not in ("strategy", "justification", "from")}
            out = {"strategy": data["strategy"], "params": params}
            if "justification" in data:
                out["justification"] = data["justification"]
            if "from" in data:
                out["source"] = data["from"]
            return out
        return data

    @model_serializer
    def _as_written(self) -> dict[str, Any]:
        """Dump in the policy file's shape: ``{[from,] strategy, **params[, justification]}``."""
        out: dict[str, Any] = {"from": self.source} if self.source is not None else {}
        out.update({"strategy": self.strategy, **self.params})
        if self.justification is not None:
            out["justification"] = self.justification
        return out


class LeafSpec(Strict):
    """What a flat column and a leaf of a nested column both declare (``shared/design/policy.md``)."""

    type: str = "string"
    required: bool = False
    pattern: str | None = None
    phi: str | None = None
    ingest: IngestRule | None = None
    #: Written beside ``ingest`` instead of inside it (``keep`` on PHI): the same as ``ingest.justification``.
    justification: str | None = None
    description: str | None = None
    #: Safe release: a quasi-identifier (part of the equivalence class for k-anonymity) / a sensitive attribute
    #: (l-diversity is measured over it).
    quasi_identifier: bool = False
    sensitive: bool = False
    #: The longest landing value (characters) accepted; longer ones are quarantined. Default DEFAULT_MAX_LENGTH.
    max_length: int | None = Field(default=None, ge=1)

    @field_validator("type")
    @classmethod
    def _type(cls, v: str) -> str:
        text = check_type(v)
        if text in types.NESTED_TYPES or types.array_element(text) is not None:
            raise ValueError(f"found {v!r} on a leaf; a leaf is a scalar or json (write nesting in its path: "
                             "[].given[])")
        return text

    @model_validator(mode="after")
    def _justification_beside(self) -> LeafSpec:
        if self.justification is not None:
            if self.ingest is None:
                raise ValueError("justification: beside no ingest; write it with ingest: {strategy: keep, ...}")
            if self.ingest.justification is not None and self.ingest.justification != self.justification:
                raise ValueError("justification is written twice (beside and inside ingest) with different texts")
            object.__setattr__(self, "ingest", self.ingest.model_copy(update={"justification": self.justification}))
        return self

    @property
    def effective_max_length(self) -> int:
        return self.max_length if self.max_length is not None else DEFAULT_MAX_LENGTH

    @property
    def value_type(self) -> str:
        """The type strategies see: a ``json`` value is its JSON text (``string``); an ``array<SCALAR>``'s
        elements are SCALAR."""
        scalar = types.array_element(self.type) or self.type
        return "string" if scalar == "json" else scalar

    @field_validator("pattern")
    @classmethod
    def _pattern(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression ({exc})") from None
        return v

    @field_validator("phi")
    @classmethod
    def _phi(cls, v: str | None) -> str | None:
        if v is not None and v not in PHI_CATEGORIES:
            raise ValueError(f"found {v!r}; allowed: {', '.join(PHI_CATEGORIES)}")
        return v

    @property
    def effective_ingest(self) -> IngestRule:
        """The rule applied at ingest: declared, or ``keep`` for a non-PHI column with none."""
        return self.ingest or IngestRule(strategy="keep")


class ColumnSpec(LeafSpec):
    """A source column: a flat one (a :class:`LeafSpec` plus ``derive``), an ``array<SCALAR>`` (its keys apply to
    every element), or a ``struct`` / ``array<struct>`` whose leaves are declared under ``fields`` by path."""

    derive: dict[str, IngestRule] = Field(default_factory=dict)
    #: ``struct`` / ``array<struct>`` columns: leaf path (``[].family``, ``[].given[]``) -> its declaration.
    fields: dict[str, LeafSpec] = Field(default_factory=dict)

    @field_validator("type")
    @classmethod
    def _type(cls, v: str) -> str:
        return check_type(v)

    @model_validator(mode="after")
    def _nested_shape(self) -> ColumnSpec:
        if self.type in types.NESTED_TYPES:
            if not self.fields:
                raise ValueError(f"a {self.type} column declares its leaves under fields: (path -> leaf), e.g. "
                                 "fields: {'[].family': {type: string, phi: name, ingest: suppress}}")
            set_here = [k for k in ("pattern", "phi", "ingest", "max_length") if getattr(self, k) is not None]
            set_here += [k for k in ("quasi_identifier", "sensitive") if getattr(self, k)]
            if set_here:
                raise ValueError(f"{', '.join(set_here)} on a {self.type} column; write them on its leaves under "
                                 "fields:")
            from lakehouse_phi.policy.nested import column_tree

            column_tree("column", self)  # paths that contradict each other or the type: ValueError naming the path
        elif self.fields:
            raise ValueError(f"fields: is for struct and array<struct> columns; this column is {self.type}")
        for name, rule in self.derive.items():
            if rule.source is not None and self.type not in types.NESTED_TYPES \
                    and types.array_element(self.type) is None:
                raise ValueError(f"derive.{name}.from reads a leaf of a nested column; this column is {self.type}")
            if rule.source is None and (self.type in types.NESTED_TYPES or types.array_element(self.type)):
                raise ValueError(f"derive.{name} on a {self.type} column needs from: (the leaf it reads, one "
                                 "element by index: address[0].postalCode)")
        return self

    def ingest_rules(self) -> list[IngestRule]:
        """The ingest rule of the column, or of each of its leaves (struct columns)."""
        if self.fields:
            return [leaf.effective_ingest for leaf in self.fields.values()]
        return [self.effective_ingest]

    @property
    def nested(self) -> bool:
        """A struct or array column (its values are masked leaf by leaf)."""
        return self.type in types.NESTED_TYPES or types.array_element(self.type) is not None


class SourceSpec(Strict):
    format: Literal["csv", "json", "parquet"]
    path: str = Field(min_length=1)
    options: dict[str, str] = Field(default_factory=dict)

    @field_validator("options", mode="before")
    @classmethod
    def _stringify(cls, v: Any) -> Any:
        if isinstance(v, dict):
            return {k: (str(x).lower() if isinstance(x, bool) else str(x)) for k, x in v.items()}
        return v


class PhiScanSpec(Strict):
    """Extension: sample non-PHI string columns for values that look like SSNs, emails or phone numbers."""

    sample_rows: int = Field(default=10_000, ge=0)
    on_detect: Literal["warn", "fail"] = "warn"


class RiskSpec(Strict):
    """Safe release: the smallest equivalence class (``k``) and the fewest distinct sensitive values within a class
    (``l``) a released table must reach."""

    k: int = Field(default=2, ge=1)
    l: int = Field(default=1, ge=1)  # noqa: E741 - the literature's name


class ExportSpec(Strict):
    """Safe release: the columns an export may carry, and the key (an Ed25519 PKCS#8 PEM) that signs it."""

    columns: list[str] = Field(min_length=1)
    signing_key: str = Field(min_length=1)


class AlertRule(Strict):
    """One alert: above ``max`` the run warns (printed, logged, in its audit event) or fails (refused before
    anything is written, audited as ``ingest_refused`` with reason ``alert``)."""

    max: float = Field(ge=0)
    action: Literal["warn", "fail"] = "warn"


class AlertsSpec(Strict):
    """``alerts:`` (top level for every table, or a table's own, which wins per alert):

    * ``phi_scan_hits``: values that look like PHI in columns not declared PHI (the ingest PHI scan), per run;
    * ``quarantine_rate``: the share of a run's rows sent to quarantine (0-1);
    * ``scrub_replacements_drop``: how much the scrub_text replacements per row fell against the table's previous
      run in the audit trail (0-1: 0.5 = fewer than half as many), a sign the detectors stopped matching a changed
      source.
    """

    phi_scan_hits: AlertRule | None = None
    quarantine_rate: AlertRule | None = None
    scrub_replacements_drop: AlertRule | None = None

    @model_validator(mode="after")
    def _shares(self) -> AlertsSpec:
        for name in ("quarantine_rate", "scrub_replacements_drop"):
            rule = getattr(self, name)
            if rule is not None and rule.max > 1:
                raise ValueError(f"{name}.max is a share between 0 and 1, found {rule.max}")
        return self

    def merged(self, own: AlertsSpec | None) -> AlertsSpec:
        """These alerts with a table's ``own`` ones taking precedence, alert by alert."""
        if own is None:
            return self
        return AlertsSpec(**{n: getattr(own, n) or getattr(self, n) for n in type(self).model_fields})


class TableSpec(Strict):
    source: SourceSpec
    bronze: str = Field(min_length=1)
    quarantine: str | None = None
    record_key: list[str] = Field(default_factory=list)
    on_unclassified: Literal["fail", "drop"] = "fail"
    phi_scan: PhiScanSpec = Field(default_factory=PhiScanSpec)
    columns: dict[str, ColumnSpec] = Field(min_length=1)
    # --- incremental bronze
    #: history: every distinct version of a record is kept | latest: one row per record key (MERGE).
    bronze_mode: Literal["history", "latest"] = "history"
    #: latest only: the column that orders several versions of one key within a batch (newest wins).
    sequence_by: str | None = None
    #: The key of ``_row_fingerprint``; default: the key of the record key's hmac.
    fingerprint_key: str | None = None
    #: Above this fraction of quarantined rows the job writes no bronze rows and exits 1.
    max_quarantine_rate: float | None = Field(default=None, ge=0.0, le=1.0)
    #: hash (default): ``_source_file`` holds a keyed hash of the path | path: the path itself.
    source_file: Literal["hash", "path"] = "hash"
    # --- safe release
    risk: RiskSpec | None = None
    export: ExportSpec | None = None
    # --- key lifecycle
    retention_days: int | None = Field(default=None, ge=1)
    # --- monitoring
    alerts: AlertsSpec | None = None

    @property
    def quarantine_target(self) -> str:
        return self.quarantine or f"{self.bronze}_quarantine"

    @property
    def fingerprint_key_name(self) -> str | None:
        """``fingerprint_key``, else the key of the record key's hmac, else the first hmac key of the table."""
        if self.fingerprint_key:
            return self.fingerprint_key
        hmac_keys = [(name, rule.params.get("key")) for name, col in self.columns.items()
                     for rule in (*col.ingest_rules(), *col.derive.values()) if rule.strategy == "hmac"]
        for name, key in hmac_keys:
            if name in self.record_key and isinstance(key, str):
                return key
        return next((key for _, key in hmac_keys if isinstance(key, str)), None)


# ------------------------------------------------------------------------------------------------ governance
#: Renderings a mask may use, with the shape of their parameter.
RENDERINGS = ("raw", "hide", "redact", "partial", "generalize_date", "zip3", "age_cap", "decrypt")

#: Renderings that take an ingest strategy's parameters: name -> (that strategy's parameter model, the written
#: argument as the model's fields, an example). The parameter model is the one place they are validated.
_RENDERING_PARAMS: dict[str, tuple[type[BaseModel], Callable[[Any], Any], str]] = {
    "redact": (RedactParams, lambda arg: {"with": arg}, "{redact: '***'}"),
    "partial": (PartialParams, lambda arg: arg, "{partial: {keep_last: 4}}"),
    "generalize_date": (GeneralizeDateParams, lambda arg: {"to": arg} if isinstance(arg, str) else arg,
                        "{generalize_date: year} or {generalize_date: {to: year, top_code_age: 90}}"),
    "age_cap": (AgeCapParams, lambda arg: {} if arg is None else arg, "age_cap or {age_cap: {cap: 90}}"),
}


def _rendering_params(kind: str, arg: Any) -> BaseModel:
    """``arg`` validated (strictly: YAML gives native types) by the parameter model of rendering ``kind``."""
    model, as_fields, example = _RENDERING_PARAMS[kind]
    fields = as_fields(arg)
    if not isinstance(fields, dict):
        raise ValueError(f"found {arg!r}; {kind} takes a mapping, e.g. {example}")
    try:
        return model.model_validate(fields, strict=True)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            name = ".".join(str(part) for part in err["loc"])
            if err["type"] == "extra_forbidden":
                allowed = ", ".join(f.alias or n for n, f in model.model_fields.items())
                problems.append(f"unknown {kind} parameter {name!r}; allowed: {allowed}")
            else:
                problems.append(f"{kind}.{name}: {err['msg']} (found {err.get('input')!r}); e.g. {example}")
        raise ValueError("; ".join(problems)) from None


def _generalize_date_arg(arg: Any) -> Any:
    """``PERIOD`` or ``{to: PERIOD[, top_code_age: N|null]}``; top_code_age left out = decided by the compiler
    (90 on a column that is a date of birth in tables:)."""
    periods = ("year", "quarter", "month", "week", "day")
    if isinstance(arg, str):
        arg = {"to": arg}
    if not (isinstance(arg, dict) and set(arg) <= {"to", "top_code_age"} and arg.get("to") in periods):
        raise ValueError(f"found {arg!r}; generalize_date takes {', '.join(periods)} or {{to: PERIOD, "
                         "top_code_age: N}")
    age = arg.get("top_code_age")
    if "top_code_age" in arg and age is not None and (not isinstance(age, int) or isinstance(age, bool) or
                                                     not 1 <= age <= 150):
        raise ValueError("generalize_date.top_code_age is a whole number of years (1-150) or null")
    return arg if "top_code_age" in arg else arg["to"]


class Rendering(BaseModel):
    """``raw`` | ``hide`` | ``zip3`` | ``age_cap`` | ``{redact: CONST}`` | ``{partial: {...}}`` |
    ``{generalize_date: year|quarter|month|week|day}`` | ``{generalize_date: {to: ..., top_code_age: N|null}}`` |
    ``{age_cap: {cap: N}}`` | ``{decrypt: TABLE.COLUMN}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str
    arg: Any = None

    @model_validator(mode="before")
    @classmethod
    def _shape(cls, data: Any) -> Any:
        if isinstance(data, Rendering):
            return data
        if isinstance(data, str):
            kind, arg = data, None
        elif isinstance(data, dict) and len(data) == 1:
            kind, arg = next(iter(data.items()))
        else:
            raise ValueError(f"found {data!r}; a rendering is a name or a mapping with exactly one key "
                             f"({', '.join(RENDERINGS)})")
        if kind not in RENDERINGS:
            raise ValueError(f"found {kind!r}; allowed: {', '.join(RENDERINGS)}")
        if kind in _RENDERING_PARAMS:
            params = _rendering_params(kind, arg)
            if kind == "age_cap":  # stored with its default filled in: {cap: N}
                arg = {"cap": params.cap}  # type: ignore[attr-defined]
        elif kind == "decrypt":
            if not (isinstance(arg, str) and re.fullmatch(r"[^.\s]+\.[^.\s]+", arg)):
                raise ValueError(f"found {arg!r}; decrypt names the ingest column as TABLE.COLUMN")
        elif arg is not None:
            raise ValueError(f"'{kind}' takes no parameter")
        if kind == "generalize_date":
            arg = _generalize_date_arg(arg)
        return {"kind": kind, "arg": arg}

    @model_serializer
    def _as_written(self) -> str | dict[str, Any]:
        """Dump in the policy file's shape: ``NAME`` or ``{NAME: ARG}``."""
        return self.kind if self.arg is None else {self.kind: self.arg}


class MaskRule(Strict):
    to: list[str] = Field(min_length=1)
    show: Rendering

    @field_validator("to", mode="before")
    @classmethod
    def _one(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v


class LeafMaskSpec(Strict):
    """The mask of one leaf of a nested column: the same ``rules`` and ``otherwise`` as a flat column's mask."""

    type: str = "string"
    rules: list[MaskRule] = Field(default_factory=list)
    otherwise: Rendering = Field(default_factory=lambda: Rendering.model_validate("hide"))

    _type = field_validator("type")(classmethod(lambda cls, v: check_type(v, nested=False)))


class MaskSpec(LeafMaskSpec):
    """A column's mask. A nested column (``type`` written in Spark's DDL form,
    ``array<struct<system:string,value:string>>``) names the leaves it governs under ``fields`` by path
    (``[].value``); its other leaves pass unchanged, and the compiler rebuilds the column with ``transform`` /
    ``named_struct``."""

    fields: dict[str, LeafMaskSpec] = Field(default_factory=dict)

    @field_validator("type")
    @classmethod
    def _type(cls, v: str) -> str:
        if "<" in v:
            return types.ddl(types.parse_ddl(v))  # ValueError naming what does not parse
        return check_type(v, nested=False)

    @model_validator(mode="after")
    def _nested(self) -> MaskSpec:
        nested_type = "<" in self.type
        if nested_type and not self.fields:
            raise ValueError(f"a {self.type} column's mask names the leaves it governs under fields: (path -> "
                             "{type, rules, otherwise}), e.g. fields: {'[].value': {otherwise: hide}}")
        if self.fields and not nested_type:
            raise ValueError("fields: is for a nested column; write its whole type, e.g. "
                             "type: 'array<struct<system:string,value:string>>'")
        if self.fields and ({"rules", "otherwise"} & self.model_fields_set):
            raise ValueError("rules and otherwise of a nested column are written per leaf, under fields:")
        if self.fields:
            from lakehouse_phi.policy.nested import leaf_type

            tree = types.parse_ddl(self.type)
            for path, leaf in self.fields.items():
                found = leaf_type(tree, path)  # ValueError naming the path
                if found != leaf.type:
                    raise ValueError(f"fields.{path}: the column's type gives this leaf type {found}, the leaf "
                                     f"declares {leaf.type}")
        return self


class FilterRule(Strict):
    to: list[str] = Field(min_length=1)
    where: str = Field(min_length=1)

    @field_validator("to", mode="before")
    @classmethod
    def _one(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("where", mode="before")
    @classmethod
    def _bool(cls, v: Any) -> Any:
        return ("true" if v else "false") if isinstance(v, bool) else v


class RowFilterSpec(Strict):
    columns: list[str] = Field(min_length=1)
    #: Optional types of the filter columns (default string), for the generated function signature.
    types: dict[str, str] = Field(default_factory=dict)
    rules: list[FilterRule] = Field(default_factory=list)
    otherwise: str = "false"

    @field_validator("otherwise", mode="before")
    @classmethod
    def _bool(cls, v: Any) -> Any:
        return ("true" if v else "false") if isinstance(v, bool) else v

    @field_validator("types")
    @classmethod
    def _types(cls, v: dict[str, str]) -> dict[str, str]:
        return {k: check_type(t, nested=False) for k, t in v.items()}


class GovernedTable(Strict):
    masks: dict[str, MaskSpec] = Field(default_factory=dict)
    row_filter: RowFilterSpec | None = None
    #: What the governed relation is: each kind has its own ``ALTER`` form (a materialized view or streaming table
    #: is altered with ``ALTER MATERIALIZED VIEW`` / ``ALTER STREAMING TABLE``).
    kind: Literal["table", "materialized_view", "streaming_table"] = "table"


class GrantSpec(Strict):
    """``{to: [GROUP, ...], select: [TABLE, ...], modify: [TABLE, ...]}``: who may read (``select``) and who may
    also write (``modify``: SELECT and MODIFY) which tables. For ``dynamic-views`` a ``select`` on a governed table
    becomes SELECT on its ``_governed`` view and a REVOKE on the table."""

    to: list[str] = Field(min_length=1)
    select: list[str] = Field(default_factory=list)
    modify: list[str] = Field(default_factory=list)

    @field_validator("to", mode="before")
    @classmethod
    def _one(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @model_validator(mode="after")
    def _something(self) -> GrantSpec:
        if not self.select and not self.modify:
            raise ValueError("a grant needs select: or modify: (the tables it grants)")
        return self


class Governance(Strict):
    function_schema: str
    tables: dict[str, GovernedTable] = Field(default_factory=dict)
    #: Unity Catalog privileges, granted after the masks and filters are in place (see :class:`GrantSpec`).
    grants: list[GrantSpec] = Field(default_factory=list)
    #: Groups (logical names) that the ABAC target's policies exempt (``EXCEPT``): the run-as identities of the
    #: pipelines that build downstream tables, which must not bake masked values into them.
    except_: list[str] = Field(default_factory=list, alias="except")


# ------------------------------------------------------------------------------------------------------ root
#: HIPAA keeps audit records six years (45 CFR 164.316(b)(2)(i)): the default retention of the Delta trail.
DEFAULT_AUDIT_RETENTION_DAYS = 2190


class AuditSpec(Strict):
    """``audit: {key: NAME, table: CATALOG.SCHEMA.TABLE | path: PATH, retention_days: N}``.

    ``key``: events are sealed with HMAC-SHA256 under that key (without one, a rewritten trail with recomputed hashes
    still verifies: ``validate`` and every run warn). ``table``/``path``: where the trail is (default: beside
    bronze), e.g. a schema of its own that ingest may only append to and auditors may only read.
    ``retention_days``: the Delta trail is created with ``delta.logRetentionDuration`` and
    ``delta.deletedFileRetentionDuration`` of at least this many days, and ``audit verify`` reports a shorter one.
    """

    key: str | None = Field(default=None, min_length=1)
    table: str | None = Field(default=None, min_length=1)
    path: str | None = Field(default=None, min_length=1)
    retention_days: int = Field(default=DEFAULT_AUDIT_RETENTION_DAYS, ge=1)

    @model_validator(mode="after")
    def _one_location(self) -> AuditSpec:
        if self.table is not None and self.path is not None:
            raise ValueError("give the trail's location once: audit.table (a table name) or audit.path (a path)")
        if self.table is not None and ("/" in self.table or not all(IDENT_RE.fullmatch(p)
                                                                     for p in self.table.split("."))):
            raise ValueError(f"audit.table: found {self.table!r}; a table name is CATALOG.SCHEMA.TABLE (a path "
                             "goes under audit.path)")
        return self

    @property
    def location(self) -> str | None:
        """``table`` or ``path``, or None (beside bronze)."""
        return self.table or self.path


#: A policy name: it reaches table properties, SQL headers and audit events, so only a safe charset.
POLICY_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


class Policy(Strict):
    version: Literal[1]
    name: str = Field(min_length=1)
    audit: AuditSpec | None = None
    #: thresholds every table's ingest runs are checked against (a table's own ``alerts`` win per alert)
    alerts: AlertsSpec | None = None
    keys: dict[str, KeySpec] = Field(default_factory=dict)
    groups: dict[str, str] = Field(default_factory=dict)
    tables: dict[str, TableSpec] = Field(default_factory=dict)
    governance: Governance | None = None

    @property
    def audit_key(self) -> str | None:
        """The key that seals the trail (``audit.key``), or None: an unkeyed trail."""
        return self.audit.key if self.audit is not None else None

    def alerts_for(self, table: str) -> AlertsSpec:
        """The alerts of ``tables.<table>``: its own, else the top-level ones, alert by alert."""
        own = self.tables[table].alerts if table in self.tables else None
        return (self.alerts or AlertsSpec()).merged(own)

    @property
    def audit_retention_days(self) -> int:
        return self.audit.retention_days if self.audit is not None else DEFAULT_AUDIT_RETENTION_DAYS

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not POLICY_NAME_RE.fullmatch(v):
            raise ValueError(f"found {v!r}; a policy name is 1-128 of A-Z a-z 0-9 _ . - (starting with a letter or "
                             "digit)")
        return v

    def ingest_rule_of(self, ref: str) -> tuple[ColumnSpec, IngestRule] | None:
        """The input column and ingest rule that write bronze column ``TABLE.COLUMN`` (an ingest column or a derived
        output), or ``None`` when no table writes it."""
        table, _, column = ref.partition(".")
        spec = self.tables.get(table)
        if spec is None:
            return None
        if column in spec.columns:
            return spec.columns[column], spec.columns[column].effective_ingest
        for col in spec.columns.values():
            if column in col.derive:
                return col, col.derive[column]
        return None
