"""Load a policy file: YAML -> typed model -> cross-reference checks, every problem of a file reported at once."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import UnionType
from typing import Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from lakehouse_phi.errors import PolicyError, Problem
from lakehouse_phi.policy import columns, nested
from lakehouse_phi.policy.model import (
    DIRECT_IDENTIFIER_PHI,
    EXPORTABLE_DIRECT,
    AuditSpec,
    ColumnSpec,
    Governance,
    IngestRule,
    KeySpec,
    LeafSpec,
    Policy,
    Rendering,
    TableSpec,
)
from lakehouse_phi.transforms import registry

_RESERVED_TEXT = ", ".join(columns.RESERVED) + ", or a name starting " + " or ".join(columns.RESERVED_PREFIXES)


@dataclass(frozen=True)
class LoadedPolicy:
    """A checked policy with the SHA-256 of its bytes (recorded in audit events, table properties and SQL)."""

    policy: Policy
    sha256: str
    path: str

    @property
    def name(self) -> str:
        return self.policy.name


# ------------------------------------------------------------------------------------------------------ YAML
class _UniqueKeyLoader(yaml.SafeLoader):  # type: ignore[misc]  # PyYAML ships no types
    """SafeLoader that reports a key written twice in one mapping instead of silently keeping the last."""

    duplicates: list[Problem]


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            mark = key_node.start_mark
            loader.duplicates.append(Problem(f"line {mark.line + 1}", f"key {key!r} appears twice in one mapping; "
                                                                        "keep one"))
        seen.add(key)
    mapping: dict[Any, Any] = yaml.SafeLoader.construct_mapping(loader, node, deep=deep)
    return mapping


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def parse_yaml(text: str, source: str) -> Any:
    loader = _UniqueKeyLoader(text)
    loader.duplicates = []
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        place = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise PolicyError([Problem(place, f"not valid YAML: {getattr(exc, 'problem', exc)}")], source) from None
    finally:
        loader.dispose()
    if loader.duplicates:
        raise PolicyError(loader.duplicates, source)
    return data


# ------------------------------------------------------------------------------------------- pydantic errors
def _unwrap(annotation: Any) -> Any:
    """dict[str, X] -> X, list[X] -> X, X | None -> X."""
    origin = get_origin(annotation)
    if origin in (Union, UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else annotation
    if origin in (dict, list):
        return get_args(annotation)[-1]
    return annotation


def _model_at(root: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    current: Any = root
    for part in loc:
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return None
            current = field.annotation
        else:
            current = _unwrap(current)  # a dict key or list index
        while get_origin(current) in (Union, UnionType):
            current = _unwrap(current)
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def place_of(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc if not (isinstance(p, str) and p.startswith("function-")))


def _problems_from(exc: ValidationError, root: type[BaseModel], prefix: tuple[Any, ...] = ()) -> list[Problem]:
    out = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        place = place_of(prefix + loc)
        if err["type"] == "extra_forbidden":
            owner = _model_at(root, loc[:-1])
            allowed = ", ".join(owner.model_fields) if owner else "see shared/design/policy.md"
            out.append(Problem(place, f"unknown key {loc[-1]!r}; allowed: {allowed}"))
        elif err["type"] == "missing":
            out.append(Problem(place, "required, not found"))
        elif err["type"] == "literal_error":
            out.append(Problem(place, f"found {err.get('input')!r}; allowed: {err['ctx']['expected']}"))
        else:
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] not in ("value_error", "assertion_error") and "input" in err:
                msg = f"{msg} (found {type(err['input']).__name__} {err['input']!r})"
            out.append(Problem(place, msg))
    return out


# ----------------------------------------------------------------------------------------- cross-references
def _check_rule(policy: Policy, table: str, out_col: str, col: LeafSpec, rule: IngestRule, place: str,
                problems: list[Problem], *, leaf: bool = False) -> None:
    try:
        cls = registry.get(rule.strategy)
    except KeyError as exc:
        problems.append(Problem(f"{place}.strategy", str(exc.args[0])))
        return
    try:
        params = cls.params_model.model_validate(rule.params)
    except ValidationError as exc:
        problems.extend(_problems_from(exc, cls.params_model, tuple(place.split("."))))
        return
    if cls.accepts is not None and col.value_type not in cls.accepts:
        problems.append(Problem(f"{place}.strategy", f"{rule.strategy} does not take a {col.type} column; it takes "
                                                     f"{', '.join(cls.accepts)}"))
    key = getattr(params, "key", None)
    if cls.key_kind and key is not None and key not in policy.keys:
        declared = ", ".join(policy.keys) or "none"
        problems.append(Problem(f"{place}.key", f"found {key!r}, which is not declared under keys: "
                                                f"(declared: {declared})"))
    for i, ref in enumerate(getattr(params, "known", None) or ()):
        other_table, _, other_col = ref.rpartition(".")
        if not other_table or other_table not in policy.tables or other_col not in policy.tables[other_table].columns:
            problems.append(Problem(f"{place}.known[{i}]", f"found {ref!r}; a roster is <table>.<column> of a table "
                                                          f"and column declared in this policy (tables: "
                                                          f"{', '.join(policy.tables)})"))
    for other in cls.needs_columns(params):
        if other not in policy.tables[table].columns:
            problems.append(Problem(place, f"{rule.strategy} reads column {other!r}, which is not declared in "
                                           f"tables.{table}.columns"))
    _check_justification(policy.tables[table], out_col, col, rule, place, problems, leaf=leaf)


def _check_justification(table: TableSpec, out_col: str, col: LeafSpec, rule: IngestRule, place: str,
                         problems: list[Problem], *, leaf: bool = False) -> None:
    """Where PHI may stay (partly) raw: ``keep`` needs a justification and a pattern, ``generalize_date`` without
    the 90+ top code a justification; a justification anywhere else is a mistake."""
    if rule.strategy == "keep" and col.phi and not rule.justification:
        problems.append(Problem(place, "strategy keep on a PHI column needs justification: (why it may stay raw)"))
    if rule.strategy == "keep" and col.phi and not col.pattern and (leaf or out_col in table.columns):
        problems.append(Problem(place.rsplit(".", 1)[0] + ".pattern",
                                "strategy keep on a PHI column needs a pattern: so that a value shifted in from "
                                "another column cannot pass raw (e.g. pattern: '^\\d{3}-\\d{3}-\\d{4}$')"))
    top_code_off = (rule.strategy == "generalize_date" and col.phi == "date_of_birth"
                    and "top_code_age" in rule.params and rule.params["top_code_age"] is None)
    if top_code_off and not rule.justification:
        problems.append(Problem(f"{place}.top_code_age", "top_code_age: null keeps ages over 89 apart (HIPAA Safe "
                                                         "Harbor aggregates them into 90+); add a justification:"))
    if rule.justification is not None and rule.strategy != "keep" and not top_code_off:
        problems.append(Problem(f"{place}.justification", "justification is only for strategy keep, or for "
                                                          "generalize_date with top_code_age: null"))


def _check_table(policy: Policy, name: str, table: TableSpec, problems: list[Problem]) -> None:
    base = f"tables.{name}"
    outputs: dict[str, str] = {}
    for cname, col in table.columns.items():
        cplace = f"{base}.columns.{cname}"
        for leaf, lplace in _declared_leaves(cname, col, cplace):
            if leaf.phi and leaf.ingest is None:
                problems.append(Problem(f"{lplace}.ingest", f"{'leaf' if leaf is not col else 'column'} is PHI "
                                                            f"({leaf.phi}) but has no ingest strategy; add one (e.g. "
                                                            "hmac, encrypt, suppress)"))
            _check_rule(policy, name, cname, leaf, leaf.effective_ingest, f"{lplace}.ingest", problems,
                        leaf=leaf is not col)
        outputs.setdefault(cname, cplace)
        for dname, drule in col.derive.items():
            dplace = f"{cplace}.derive.{dname}"
            if dname in outputs or dname in table.columns:
                problems.append(Problem(dplace, f"output column {dname!r} is already produced elsewhere in {base}"))
            outputs.setdefault(dname, dplace)
            source = _derive_source(cname, col, drule, dplace, problems)
            if source is not None:
                _check_rule(policy, name, dname, source, drule, dplace, problems)
    for cname in table.columns:
        if columns.is_reserved(cname):
            problems.append(Problem(f"{base}.columns.{cname}", f"{cname!r} is reserved for a column the package adds "
                                                               f"({_RESERVED_TEXT}); rename it"))
    for cname, col in table.columns.items():
        for dname in col.derive:
            if columns.is_reserved(dname):
                problems.append(Problem(f"{base}.columns.{cname}.derive.{dname}",
                                        f"{dname!r} is reserved for a column the package adds ({_RESERVED_TEXT}); "
                                        "rename it"))
    _check_incremental(policy, name, table, problems)
    if table.source.format == "csv":
        for cname, col in table.columns.items():
            if col.nested:
                problems.append(Problem(f"{base}.columns.{cname}.type", f"found {col.type} on a csv source; CSV is "
                                                                        "flat: nested columns need a json or parquet "
                                                                        "source (or declare the column as json or "
                                                                        "string)"))
    for i, key_col in enumerate(table.record_key):
        if key_col not in table.columns:
            problems.append(Problem(f"{base}.record_key.{i}", f"found {key_col!r}, not a declared column"))
            continue
        if table.columns[key_col].nested or table.columns[key_col].type == "json":
            problems.append(Problem(f"{base}.record_key.{i}", f"column {key_col!r} is {table.columns[key_col].type}; "
                                                              "a record key is a scalar column"))
            continue
        strategy = table.columns[key_col].effective_ingest.strategy
        cls = registry.STRATEGIES.get(strategy)
        if cls is not None and (not cls.deterministic or strategy in ("suppress", "redact")):
            problems.append(Problem(f"{base}.record_key.{i}", f"column {key_col!r} is masked with {strategy}, which "
                                                              "does not give one stable value per record; use hmac, "
                                                              "fpe or keep for a merge key"))


def _declared_leaves(cname: str, col: ColumnSpec, cplace: str) -> list[tuple[LeafSpec, str]]:
    """A flat or ``array<SCALAR>`` column itself, or each leaf of a struct column with its place."""
    if not col.fields:
        return [(col, cplace)]
    return [(leaf, f"{cplace}.fields.{path}") for path, leaf in col.fields.items()]


def _derive_source(cname: str, col: ColumnSpec, rule: IngestRule, place: str,
                   problems: list[Problem]) -> LeafSpec | None:
    """What a derived output reads: the column itself, or (``from:``) the declared leaf its reference reaches."""
    if rule.source is None:
        return col
    try:
        column, steps = nested.split_reference(rule.source)
    except ValueError as exc:
        problems.append(Problem(f"{place}.from", str(exc)))
        return None
    if column != cname:
        problems.append(Problem(f"{place}.from", f"found {rule.source!r}; a derive under column {cname!r} reads a "
                                                 f"leaf of {cname} ({cname}[0].field)"))
        return None
    return _reference_leaf(rule.source, steps, cname, col, f"{place}.from", "a derived column", problems)


def _reference_leaf(ref: str, steps: tuple[nested.Step, ...], cname: str, col: ColumnSpec, place: str, what: str,
                    problems: list[Problem]) -> LeafSpec | None:
    """The declared leaf of ``col`` a one-value-per-row reference (``address[0].postalCode``) reaches."""
    if any(isinstance(s, nested.Each) for s in steps):
        problems.append(Problem(place, f"found {ref!r}; {what} holds one value per row: pick one element by index "
                                       "([0]) instead of []"))
        return None
    found = nested.leaf_at(nested.column_tree(cname, col), steps)
    if found is None:
        problems.append(Problem(place, f"found {ref!r}, which reaches no declared leaf of {cname} (declared: "
                                       f"{', '.join(col.fields) or '[]'})"))
        return None
    return found.spec


def _check_incremental(policy: Policy, name: str, table: TableSpec, problems: list[Problem]) -> None:
    """The second wave's table keys: incremental bronze, safe release, retention."""
    base = f"tables.{name}"
    if table.sequence_by is not None:
        if table.bronze_mode != "latest":
            problems.append(Problem(f"{base}.sequence_by", "sequence_by orders versions of a key for bronze_mode: "
                                                           "latest; remove it or set bronze_mode: latest"))
        if table.sequence_by not in table.columns:
            problems.append(Problem(f"{base}.sequence_by", f"found {table.sequence_by!r}, not a declared column"))
        elif table.columns[table.sequence_by].nested:
            problems.append(Problem(f"{base}.sequence_by", f"found {table.sequence_by!r}, a nested column; versions "
                                                           "are ordered by a scalar column"))
    if table.bronze_mode == "latest" and not table.record_key:
        problems.append(Problem(f"{base}.bronze_mode", "bronze_mode: latest keeps one row per record key; declare "
                                                       f"{base}.record_key"))
    fp = table.fingerprint_key_name
    if fp is None:
        problems.append(Problem(f"{base}.fingerprint_key", "no key for _row_fingerprint: the table has no hmac to "
                                                           "take it from; name an HMAC key (fingerprint_key: NAME)"))
    elif fp not in policy.keys:
        problems.append(Problem(f"{base}.fingerprint_key", f"found {fp!r}, which is not declared under keys: "
                                                           f"(declared: {', '.join(policy.keys) or 'none'})"))
    _check_release(policy, base, table, problems)


def _check_release(policy: Policy, base: str, table: TableSpec, problems: list[Problem]) -> None:
    """``quasi_identifier``/``sensitive`` columns, ``risk`` and ``export``."""
    declared = [lf for c, s in table.columns.items() for lf in _declared_leaves(c, s, f"{base}.columns.{c}")]
    read = _read_leaves(table)  # a leaf's flag counts where it is measured: through a derive or an export column
    read |= {id(s) for s in table.columns.values()}
    flagged = [(s, place) for s, place in declared if id(s) in read]
    qi = [place for s, place in flagged if s.quasi_identifier]
    sensitive = [place for s, place in flagged if s.sensitive]
    for s, place in declared:
        if s.quasi_identifier and s.sensitive:
            problems.append(Problem(place, "a column is a quasi_identifier or sensitive, not both"))
    if table.risk is not None:
        if not qi:
            problems.append(Problem(f"{base}.risk", "risk needs at least one column with quasi_identifier: true"))
        if table.risk.l > 1 and not sensitive:
            problems.append(Problem(f"{base}.risk.l", "l > 1 needs at least one column with sensitive: true"))
    if table.export is None:
        return
    outputs = {o: (s, r) for c, s in table.columns.items() for o, r in ((c, s.effective_ingest), *s.derive.items())}
    for i, c in enumerate(table.export.columns):
        place = f"{base}.export.columns.{i}"
        if c not in outputs:
            leaf = _export_leaf(base, table, c, place, set(outputs), problems)
            if leaf is not None:
                problem = _export_problem(c, leaf, leaf.effective_ingest)
                if problem:
                    problems.append(Problem(place, problem))
            continue
        problem = _export_problem(c, *outputs[c])
        if problem:
            problems.append(Problem(f"{base}.export.columns.{i}", problem))
    if table.export.signing_key not in policy.keys:
        problems.append(Problem(f"{base}.export.signing_key", f"found {table.export.signing_key!r}, which is not "
                                                              f"declared under keys: (declared: "
                                                              f"{', '.join(policy.keys) or 'none'})"))


def _read_leaves(table: TableSpec) -> set[int]:
    """The ids of the declared leaves a ``derive`` (``from:``) or an export column reads (unresolvable references
    are reported where they are written)."""
    refs = [r.source for s in table.columns.values() for r in s.derive.values() if r.source is not None]
    refs += table.export.columns if table.export else []
    out: set[int] = set()
    for ref in refs:
        try:
            cname, steps = nested.split_reference(ref)
        except ValueError:
            continue
        col = table.columns.get(cname)
        try:
            found = nested.leaf_at(nested.column_tree(cname, col), steps) if col is not None and steps else None
        except ValueError:  # a contradictory declaration, reported under its fields
            continue
        if found is not None:
            out.add(id(found.spec))
    return out


def _export_leaf(base: str, table: TableSpec, ref: str, place: str, outputs: set[str],
                 problems: list[Problem]) -> LeafSpec | None:
    """The declared leaf an export column naming a leaf of a nested column (``address[0].postalCode``) reaches;
    it is released as :func:`nested.release_name` (``address_0_postalCode``), which must not be taken."""
    try:
        cname, steps = nested.split_reference(ref)
    except ValueError as exc:
        problems.append(Problem(place, f"found {ref!r}, not a bronze output column of {base}: {exc}"))
        return None
    col = table.columns.get(cname)
    if not steps or col is None or not (col.fields or col.nested):
        problems.append(Problem(place, f"found {ref!r}, not a bronze output column of {base} nor a leaf of one of "
                                       "its nested columns (address[0].postalCode)"))
        return None
    leaf = _reference_leaf(ref, steps, cname, col, place, "an export column", problems)
    name = nested.release_name(ref)
    if leaf is not None and name in outputs:
        problems.append(Problem(place, f"{ref!r} is exported as {name!r}, which is already an output column of "
                                       f"{base}; rename that column"))
        return None
    return leaf


def _export_problem(output: str, col: LeafSpec, rule: IngestRule) -> str | None:
    """Why ``output`` may not be released in an export: a PHI column kept raw, or a direct identifier in any form
    but a one-way pseudonym (hmac) or removed (redact, suppress)."""
    if col.phi is None:
        return None
    if rule.strategy == "keep":
        return (f"{output!r} is PHI (phi: {col.phi}) kept raw in bronze: an export would release the raw values. "
                "Export a generalized or pseudonymized output instead (derive: {..._year: {strategy: "
                "generalize_date, to: year}}, {..._token: {strategy: hmac, key: ...}}), or drop it from export.columns")
    if col.phi in DIRECT_IDENTIFIER_PHI and rule.strategy not in EXPORTABLE_DIRECT:
        return (f"{output!r} is a direct identifier (phi: {col.phi}) written with strategy {rule.strategy}, which "
                f"keeps it readable or reversible; an export may carry a direct identifier only as "
                f"{', '.join(EXPORTABLE_DIRECT)}: export its hmac pseudonym, or drop it from export.columns")
    return None


_RENDER_TYPES = {
    "redact": ("string",), "partial": ("string",), "zip3": ("string",), "decrypt": ("string",),
    "generalize_date": ("date", "timestamp"), "age_cap": ("int", "long", "double", "date", "timestamp"),
}


def _check_rendering(policy: Policy, mask_type: str, r: Rendering, place: str, problems: list[Problem]) -> None:
    allowed = _RENDER_TYPES.get(r.kind)
    if allowed and not (mask_type in allowed or (r.kind == "age_cap" and mask_type.startswith("decimal"))):
        problems.append(Problem(place, f"{r.kind} does not return a {mask_type}; it applies to {', '.join(allowed)} "
                                       "columns"))
    if r.kind != "decrypt":
        return
    found = policy.ingest_rule_of(r.arg)
    if found is None:
        problems.append(Problem(place, f"decrypt names {r.arg!r}, which is no ingest column (TABLE.COLUMN under "
                                       "tables:)"))
        return
    _, rule = found
    if rule.strategy != "encrypt":
        problems.append(Problem(place, f"decrypt names {r.arg!r}, whose ingest strategy is {rule.strategy}, not "
                                       "encrypt: there is no ciphertext to open"))
        return
    key = rule.params.get("key")
    spec = policy.keys.get(key) if isinstance(key, str) else None
    if spec is not None and spec.provider != "databricks":
        problems.append(Problem(place, f"decrypt needs the key of {r.arg!r} ({key!r}) in a databricks secret scope "
                                       f"so SQL can read it with secret(); its provider is {spec.provider}"))


def _check_governance(policy: Policy, problems: list[Problem]) -> None:
    gov = policy.governance
    if gov is None:
        return
    groups = set(policy.groups)

    def check_groups(names: list[str], place: str) -> None:
        for i, g in enumerate(names):
            if g not in groups:
                problems.append(Problem(f"{place}.{i}", f"found group {g!r}, not declared under groups: "
                                                        f"(declared: {', '.join(sorted(groups)) or 'none'})"))

    for tname, table in gov.tables.items():
        tplace = f"governance.tables.{tname}"
        for cname, mask in table.masks.items():
            mplace = f"{tplace}.masks.{cname}"
            leaves = [(mplace, mask)] if not mask.fields else \
                [(f"{mplace}.fields.{path}", leaf) for path, leaf in mask.fields.items()]
            for lplace, leaf in leaves:
                for i, rule in enumerate(leaf.rules):
                    check_groups(rule.to, f"{lplace}.rules.{i}.to")
                    _check_rendering(policy, leaf.type, rule.show, f"{lplace}.rules.{i}.show", problems)
                _check_rendering(policy, leaf.type, leaf.otherwise, f"{lplace}.otherwise", problems)
                if mask.fields and any(r.kind == "decrypt" for r in (leaf.otherwise, *(x.show for x in leaf.rules))):
                    problems.append(Problem(lplace, "decrypt reads a flat encrypted column; on a leaf use raw, "
                                                    "hide, redact, partial, generalize_date, zip3 or age_cap"))
        if table.row_filter is not None:
            for i, filter_rule in enumerate(table.row_filter.rules):
                check_groups(filter_rule.to, f"{tplace}.row_filter.rules.{i}.to")
            for cname in table.row_filter.types:
                if cname not in table.row_filter.columns:
                    problems.append(Problem(f"{tplace}.row_filter.types.{cname}", "not one of row_filter.columns"))
    check_groups(gov.except_, "governance.except")
    for i, grant in enumerate(gov.grants):
        check_groups(grant.to, f"governance.grants.{i}.to")
        for key in ("select", "modify"):
            for j, name in enumerate(getattr(grant, key)):
                if len(name.split(".")) != 3:
                    problems.append(Problem(f"governance.grants.{i}.{key}.{j}", f"found {name!r}; a grant names a "
                                                                                  "table as CATALOG.SCHEMA.TABLE"))


def check_policy(policy: Policy) -> list[Problem]:
    """Cross-reference checks the schema alone cannot express."""
    problems: list[Problem] = []
    for name, table in policy.tables.items():
        _check_table(policy, name, table, problems)
    _check_governance(policy, problems)
    if policy.audit_key is not None and policy.audit_key not in policy.keys:
        problems.append(Problem("audit.key", f"found {policy.audit_key!r}, which is not declared under keys: "
                                             f"(declared: {', '.join(policy.keys) or 'none'})"))
    return problems


# ----------------------------------------------------------------------------------------------------- entry
def _salvage_table(table: Any, ok: Callable[[type[BaseModel], Any], bool]) -> dict[str, Any] | None:
    """A table with its unparseable columns and unknown keys left out, or None if even that does not parse."""
    if ok(TableSpec, table):
        return dict(table)
    if not isinstance(table, dict) or not isinstance(table.get("columns"), dict):
        return None
    kept = {k: v for k, v in table.items() if k in TableSpec.model_fields}
    kept["columns"] = {c: v for c, v in table["columns"].items() if ok(ColumnSpec, v)}
    return kept if kept["columns"] and ok(TableSpec, kept) else None


def _salvage(data: dict[str, Any]) -> Policy | None:
    """The sections of a policy that parse on their own, so cross-references are checked even when another part
    of the file has a shape error (all problems of a file are reported together)."""
    def ok(model: type[BaseModel], value: Any) -> bool:
        try:
            model.model_validate(value)
            return True
        except ValidationError:
            return False

    def section(name: str) -> dict[Any, Any]:
        value = data.get(name)
        return value if isinstance(value, dict) else {}

    keys, tables, groups = section("keys"), section("tables"), section("groups")
    salvaged = {
        "version": 1,
        "name": "salvaged",
        # a malformed key still counts as declared, so its users are not reported a second time
        "keys": {k: (v if ok(KeySpec, v) else {"provider": "env", "ref": "unparsed"}) for k, v in keys.items()},
        "groups": {k: str(v) for k, v in groups.items()},
        "tables": {k: t for k, t in ((k, _salvage_table(v, ok)) for k, v in tables.items()) if t is not None},
        "governance": data.get("governance") if ok(Governance, data.get("governance")) else None,
        "audit": data.get("audit") if ok(AuditSpec, data.get("audit")) else None,
    }
    try:
        return Policy.model_validate(salvaged)
    except ValidationError:
        return None


def policy_from_data(data: Any, source: str = "policy") -> Policy:
    if not isinstance(data, dict):
        raise PolicyError([Problem("", f"the file must hold a mapping at the top, found {type(data).__name__}")],
                          source)
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        problems = _problems_from(exc, Policy)
        salvaged = _salvage(data)
        if salvaged is not None:
            problems += check_policy(salvaged)
        raise PolicyError(problems, source) from None
    problems = check_policy(policy)
    if problems:
        raise PolicyError(problems, source)
    return policy


def load_policy(path: str | Path) -> LoadedPolicy:
    """Read, parse and check a policy file. Raises :class:`PolicyError` listing every problem with its place."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise PolicyError([Problem(str(p), f"cannot read the policy file ({exc.strerror or type(exc).__name__})")],
                          str(p)) from None
    data = parse_yaml(raw.decode("utf-8", errors="replace"), str(p))
    return LoadedPolicy(policy=policy_from_data(data, str(p)), sha256=hashlib.sha256(raw).hexdigest(), path=str(p))
