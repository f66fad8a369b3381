"""How compiled governance statements are applied, for every engine: the SQL warehouse of ``lakehouse-phi apply``
(:mod:`lakehouse_phi.databricks.apply`) and the notebook's Spark session (:mod:`lakehouse_phi.sql.runner`) share
this module, so both order, skip and fail alike.

The rule is *fail toward protection*:

1. **Read the current state first** (the documented ``information_schema`` views, each a plain ``SELECT``):
   ``parameters`` (signatures of the policy's functions), ``column_masks`` and ``row_filters`` (what protects the
   governed tables now), ``tables`` (which tables ingest has created), ``table_privileges`` /
   ``schema_privileges`` / ``catalog_privileges`` (which of the policy's privileges are already held).
2. **Protections first, loosening last.** The compiled order already puts every GRANT last
   (:data:`lakehouse_phi.sql.generator.LOOSENING_KINDS`). A statement that needs a table ingest has not created yet
   (grants on and metadata of bronze, quarantine, the audit trail) is skipped and reported: re-run after the first
   ingest.
3. **A changed signature never unmasks.** ``CREATE OR REPLACE FUNCTION`` cannot change a signature, so the function
   is first created under a versioned name (``<name>__v<n>``), every binding is pointed at it (one ``SET MASK`` /
   ``SET ROW FILTER`` / ``CREATE OR REPLACE POLICY`` / ``CREATE OR REPLACE VIEW`` each, which replaces the old
   binding in place), the old function is dropped and recreated, the bindings are pointed back, and the versioned
   function is dropped. At every step every column that had a mask has one.
4. **On a failure nothing protective is undone**: masks, row filters, policies, protective REVOKEs, functions and
   tags stay as they are (each only restricts). Only the privileges this run *added* (not held before it) are
   revoked, and the run raises :class:`ApplyFailed` naming the statement. Where the privileges held before could
   not be read, nothing is revoked (a GRANT only ever runs once every protection is in place).
5. **Rollback is idempotent**: every undo is an ``IF EXISTS`` form where the grammar has one; ``DROP POLICY`` has
   none (its documented error is ``POLICY_NOT_FOUND``), so a policy that the state shows absent is not dropped, and a
   not-found answer to an undo counts as already undone.

``run`` is any callable that executes one SQL statement and returns its rows (lists of values); it raises
:class:`StatementFailed` (the warehouse) or any exception (a Spark session). Messages carry statement kinds,
governed objects and the engine's error code and first message line, never data.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from lakehouse_phi.errors import JobRefused
from lakehouse_phi.sql.compile import Compiled, generator
from lakehouse_phi.sql.generator import LOOSENING_KINDS, Privileges, Statement
from lakehouse_phi.sql.ir import MaskFunction, Name, RowFilterFunction
from lakehouse_phi.sql.quoting import ident, string

log = logging.getLogger(__name__)
Progress = Callable[[str], None]
Run = Callable[[str], Any]

#: statement kinds that bind a function to a table (their undo unbinds it)
BINDING_KINDS = ("set_mask", "set_row_filter", "create_policy", "create_view")
#: statement kinds whose "not found" answer means "already undone" (rollback idempotence)
UNDO_KINDS = ("drop_policy", "drop_mask", "drop_row_filter", "drop_function", "drop_view", "unset_tags", "comment",
              "revoke")
#: error codes / message markers that mean the object is not there (any engine)
NOT_FOUND = re.compile(r"NOT_FOUND|DOES_NOT_EXIST|NOT_EXIST|no such", re.IGNORECASE)
ALREADY_EXISTS = re.compile(r"ALREADY_EXISTS|already exists", re.IGNORECASE)
#: securable -> the information_schema view listing its privileges
PRIVILEGE_VIEWS = {"TABLE": "table_privileges", "VIEW": "table_privileges", "SCHEMA": "schema_privileges",
                   "CATALOG": "catalog_privileges"}
#: the suffix of the versioned name a function takes while its signature changes
VERSION_SUFFIX = "__v"


class StatementFailed(Exception):
    """A statement ended FAILED, CANCELED or CLOSED (or the engine raised). ``code`` is the error code, ``message``
    the first line of the message."""

    def __init__(self, code: str, message: str, statement_id: str | None = None) -> None:
        super().__init__(f"[{code}] {message}")
        self.code, self.message, self.statement_id = code, message, statement_id


class ApplyFailed(JobRefused):
    """Statement ``index`` (1-based) of the plan failed. Protections stay; ``revoked`` privileges this run had added
    were revoked again, except those in ``revoke_failures``."""

    def __init__(self, index: int, total: int, statement: Statement, error: StatementFailed, revoked: list[str],
                 revoke_failures: list[str], *, rollback: bool = False) -> None:
        self.index, self.statement, self.error = index, statement, error
        self.revoked, self.revoke_failures = revoked, revoke_failures
        if rollback:
            text = (f"rollback statement {index}/{total} ({statement.kind} {statement.about}) failed: {error}; the "
                    f"{index - 1} before it were undone; fix the cause and run --rollback again (it is idempotent)")
        else:
            text = (f"statement {index}/{total} ({statement.kind} {statement.about}) failed: {error}; every "
                    f"protection in place stays (masks, row filters, policies, functions, tags); revoked the "
                    f"{len(revoked)} privilege(s) this run had added")
        if revoke_failures:
            text += f"; {len(revoke_failures)} revoke(s) failed too: " + "; ".join(revoke_failures)
        super().__init__(text)

    @property
    def rolled_back(self) -> int:
        return len(self.revoked)


# ------------------------------------------------------------------------------------------------------ state
@dataclass
class State:
    """What the catalog holds before the run (lower-case names throughout)."""

    #: function leaf name -> ((parameter, TYPE), ...)
    signatures: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    #: (catalog, schema, table, column) -> mask function (catalog.schema.name)
    masks: dict[tuple[str, ...], str] = field(default_factory=dict)
    #: (catalog, schema, table) -> row filter function
    filters: dict[tuple[str, ...], str] = field(default_factory=dict)
    #: (catalog, schema, policy name) of the ABAC policies on schemas
    policies: set[tuple[str, ...]] = field(default_factory=set)
    #: (catalog, schema, table) that exist, among those asked about
    tables: set[tuple[str, ...]] = field(default_factory=set)
    #: (securable, name parts..., principal, privilege) held now
    privileges: set[tuple[str, ...]] = field(default_factory=set)
    #: which views could be read (a view missing on the engine leaves its part unknown: treated as empty)
    read: list[str] = field(default_factory=list)


def _lit_list(values: Iterable[str]) -> str:
    return ", ".join(string(v.lower()) for v in dict.fromkeys(values)) or "NULL"


def _info(catalog: str | None, view: str) -> str:
    return f"{ident(catalog)}.information_schema.{view}" if catalog else f"information_schema.{view}"


def _catalogs(compiled: Compiled) -> list[str | None]:
    """The catalogs whose ``information_schema`` is read (``None``: the current one, for unqualified names)."""
    names = [t.name for t in compiled.ir.tables] + [b.name for b in compiled.ir.bronze]
    out = [n.parts[0].lower() if len(n.parts) == 3 else None for n in names]
    out += [g.table.parts[0].lower() for g in compiled.ir.grants]  # grants name CATALOG.SCHEMA[.TABLE]
    return list(dict.fromkeys(out)) or [None]


def signature_query(schema: Name, names: Iterable[str]) -> str:
    """The parameters of the named functions of ``schema`` (``CATALOG.SCHEMA`` or ``SCHEMA``), in order."""
    info = _info(schema.parts[0] if len(schema.parts) == 2 else None, "parameters")
    return (f"SELECT specific_name, ordinal_position, parameter_name, full_data_type FROM {info} "
            f"WHERE specific_schema = {string(schema.leaf.lower())} AND specific_name IN ({_lit_list(names)}) "
            "ORDER BY specific_name, ordinal_position")


def state_queries(compiled: Compiled) -> list[tuple[str, str]]:
    """(what, SELECT) pairs that :func:`read_state` runs, in order."""
    ir = compiled.ir
    names = [fn.name.leaf for fn in ir.functions]
    names += [versioned(fn.name, 1).leaf for fn in ir.functions]
    out = [("parameters", signature_query(ir.function_schema, names))] if names else []
    governed = [t.name for t in ir.tables]
    needed = {st.requires for st in compiled.apply if st.requires is not None}
    grants = [st.grant for st in compiled.apply if st.grant is not None]
    for cat in _catalogs(compiled):
        def mine(names: Iterable[Name], cat: str | None = cat) -> list[Name]:
            return [n for n in names if (n.parts[0].lower() if len(n.parts) == 3 else None) == cat]

        tables = mine(governed)
        if tables:
            where = f"table_name IN ({_lit_list(t.leaf for t in tables)})"
            out.append(("column_masks", "SELECT schema_name, table_name, column_name, mask_catalog, mask_schema, "
                        f"mask_name FROM {_info(cat, 'column_masks')} WHERE {where}"))
            out.append(("row_filters", "SELECT schema_name, table_name, filter_catalog, filter_schema, filter_name "
                        f"FROM {_info(cat, 'row_filters')} WHERE {where}"))
            if compiled.target == "databricks-abac":
                schemas = {t.parts[-2].lower() for t in tables if len(t.parts) >= 2}
                out.append(("abac_policy_definitions", "SELECT schema_name, policy_name FROM "
                            f"{_info(cat, 'abac_policy_definitions')} WHERE schema_name IN ({_lit_list(schemas)})"))
        wanted = mine(n for n in needed if n is not None)
        if wanted:
            out.append(("tables", f"SELECT table_schema, table_name FROM {_info(cat, 'tables')} "
                                  f"WHERE table_name IN ({_lit_list(t.leaf for t in wanted)})"))
        mine_grants = [g for g in grants if g.name.parts[0].lower() == cat]
        if mine_grants and cat is not None:
            who = _lit_list(g.principal for g in mine_grants)
            out.append(("table_privileges", "SELECT grantee, table_schema, table_name, privilege_type FROM "
                        f"{_info(cat, 'table_privileges')} WHERE grantee IN ({who})"))
            out.append(("schema_privileges", "SELECT grantee, schema_name, privilege_type FROM "
                        f"{_info(cat, 'schema_privileges')} WHERE grantee IN ({who})"))
            out.append(("catalog_privileges", "SELECT grantee, catalog_name, privilege_type FROM "
                        f"{_info(cat, 'catalog_privileges')} WHERE grantee IN ({who})"))
    return out


def _catalog_of(sql: str) -> str:
    m = re.search(r"FROM `([^`]+)`\.information_schema", sql)
    return m.group(1).lower() if m else ""


def read_state(run: Run, compiled: Compiled, has_view: Callable[[str, str], bool] | None = None) -> State:
    """Run :func:`state_queries` and gather their rows. A query the engine refuses (a view it does not have, e.g.
    open-source Spark) leaves that part empty: the plan then assumes nothing is held, which only ever means it
    revokes on failure what it granted. ``has_view(catalog, view)``, when given, is asked first (a Spark session
    answers it without an error in its log)."""
    st = State()
    for what, sql in state_queries(compiled):
        if has_view is not None and not has_view(_catalog_of(sql), what):
            continue
        try:
            rows = [list(r) for r in (run(sql) or [])]
        except Exception as exc:  # noqa: BLE001 - the engine's own error; the part stays unknown
            log.info("reading %s failed (%s); assumed empty", what, str(exc).splitlines()[0][:200] if str(exc) else "")
            continue
        st.read.append(what)
        cat = _catalog_of(sql)
        low = [[str(v).lower() if v is not None else "" for v in r] for r in rows]
        if what == "parameters":
            found: dict[str, list[tuple[str, str]]] = {}
            for r in rows:
                found.setdefault(str(r[0]).lower(), []).append((str(r[2]).lower(), norm_type(str(r[3]))))
            st.signatures.update({k: tuple(v) for k, v in found.items()})
        elif what == "column_masks":
            st.masks.update({(cat, r[0], r[1], r[2]): ".".join(r[3:6]) for r in low})
        elif what == "row_filters":
            st.filters.update({(cat, r[0], r[1]): ".".join(r[2:5]) for r in low})
        elif what == "abac_policy_definitions":
            st.policies.update((cat, r[0], r[1]) for r in low)
        elif what == "tables":
            st.tables.update((cat, r[0], r[1]) for r in low)
        elif what == "table_privileges":
            st.privileges.update(("TABLE", cat, r[1], r[2], r[0], r[3].upper()) for r in low)
        elif what == "schema_privileges":
            st.privileges.update(("SCHEMA", cat, r[1], r[0], r[2].upper()) for r in low)
        elif what == "catalog_privileges":
            st.privileges.update(("CATALOG", r[1], r[0], r[2].upper()) for r in low)
    return st


def norm_type(text: str) -> str:
    return "".join(str(text).split()).upper()


def _key(name: Name) -> tuple[str, ...]:
    return tuple(p.lower() for p in name.parts)


def held(state: State, p: Privileges) -> set[str]:
    """The privileges of ``p`` that ``state`` shows its principal holds (directly) on its securable."""
    who = p.principal.lower()
    securable = "TABLE" if p.securable == "VIEW" else p.securable
    out = set()
    for priv in p.privileges:
        if (securable, *_key(p.name), who, priv.upper()) in state.privileges:
            out.add(priv)
    return out


# ------------------------------------------------------------------------------------------------------- plan
@dataclass(frozen=True)
class Plan:
    """What a run executes, in order, and what it decided beforehand."""

    statements: tuple[Statement, ...] = ()
    #: functions whose signature changed (moved through a versioned name)
    changed: tuple[str, ...] = ()
    #: statements skipped because a table they need does not exist yet
    skipped: tuple[Statement, ...] = ()
    #: per GRANT statement (by position in ``statements``): the privileges it adds (not held before)
    adds: dict[int, tuple[str, ...]] = field(default_factory=dict)
    rollback: bool = False
    #: privilege views that could not be read: a failure revokes none of those grants (they may have been held
    #: before the run, and every GRANT runs after the protections, so keeping them exposes nothing unprotected)
    unknown_privileges: tuple[str, ...] = ()
    #: what the admin should know before (or after) this run; never a reason to remove a protection
    warnings: tuple[str, ...] = ()

    @property
    def all(self) -> list[Statement]:
        return list(self.statements)


def versioned(name: Name, n: int = 1) -> Name:
    return Name(name.parts[:-1] + (f"{name.leaf}{VERSION_SUFFIX}{n}",))


def _renamed(st: Statement, old: Name, new: Name) -> Statement:
    return replace(st, sql=st.sql.replace(old.sql(), new.sql()), undo=None, about=f"{st.about} (via {new.leaf})")


def _signature_moves(compiled: Compiled, fn: MaskFunction | RowFilterFunction) -> tuple[list[Statement],
                                                                                          list[Statement]]:
    """For a function whose signature changed: (before the compiled statements, after them). Before: create the
    versioned function, bind every use to it, drop the old function. The compiled statements then recreate the
    function under its own name and bind it again (each binding replaces the versioned one in place); after: drop
    the versioned function."""
    gen = generator(compiled.target)
    gen.ir = compiled.ir
    temp = versioned(fn.name)
    create = gen.create_function(fn)
    before = [_renamed(replace(create, about=f"{fn.name} (signature changed)"), fn.name, temp)]
    before += [_renamed(st, fn.name, temp) for st in compiled.apply
               if st.kind in BINDING_KINDS and fn.name.sql() in st.sql]
    before.append(Statement(f"DROP FUNCTION IF EXISTS {fn.name.sql()}", "drop_function",
                            f"{fn.name} (old signature, now unbound)"))
    after = [Statement(f"DROP FUNCTION IF EXISTS {temp.sql()}", "drop_function", f"{temp} (no longer bound)")]
    return before, after


def make_plan(compiled: Compiled, state: State | None = None, *, rollback: bool = False) -> Plan:
    """The statements to run given ``state`` (``None``: nothing known, every compiled statement runs)."""
    state = state or State()
    if rollback:
        return _rollback_plan(compiled, state)
    gen = generator(compiled.target)
    before: list[Statement] = []
    after: list[Statement] = []
    changed: list[str] = []
    for fn in compiled.ir.functions:
        wanted = tuple((col.lower(), norm_type(gen.type_name(t))) for col, t in fn.params)
        have = state.signatures.get(fn.name.leaf.lower())
        if have is not None and have != wanted:
            changed.append(str(fn.name))
            b, a = _signature_moves(compiled, fn)
            before += b
            after += a
        elif versioned(fn.name).leaf.lower() in state.signatures:  # left over by an interrupted run: unbound below
            after.append(Statement(f"DROP FUNCTION IF EXISTS {versioned(fn.name).sql()}", "drop_function",
                                   f"{versioned(fn.name)} (left by an earlier run)"))
    statements: list[Statement] = []
    skipped: list[Statement] = []
    known_tables = "tables" in state.read
    for st in compiled.apply:
        if st.requires is not None and known_tables and _key3(st.requires) not in state.tables:
            skipped.append(st)
            continue
        statements.append(st)
    protective = [s for s in statements if s.kind not in LOOSENING_KINDS]
    loosening = [s for s in statements if s.kind in LOOSENING_KINDS]
    ordered = [*before, *protective, *after, *loosening]
    adds: dict[int, tuple[str, ...]] = {}
    unknown: set[str] = set()
    for i, st in enumerate(ordered):
        if st.grant is not None:
            view = PRIVILEGE_VIEWS[st.grant.securable]
            if view not in state.read:  # what was held before cannot be told from what this run adds
                unknown.add(view)
                adds[i] = ()
                continue
            have_now = held(state, st.grant)
            adds[i] = tuple(p for p in st.grant.privileges if p not in have_now)
    return Plan(tuple(ordered), tuple(changed), tuple(skipped), adds, unknown_privileges=tuple(sorted(unknown)),
                warnings=tuple(_mixed_targets(compiled, state)))


def _mixed_targets(compiled: Compiled, state: State) -> list[str]:
    """Table-level masks and row filters left on tables the ABAC target governs (a ``databricks`` apply without its
    rollback): beside a tag-matched policy they can make queries fail with ``MULTIPLE_MASKS``. Kept (they protect),
    reported."""
    if compiled.target != "databricks-abac":
        return []
    out = []
    for table in compiled.ir.tables:
        key = _key3(table.name)
        for m in table.masks:
            if (*key, m.column.lower()) in state.masks:
                out.append(f"{table.name}.{m.column} has a table-level mask beside the ABAC policy (MULTIPLE_MASKS); "
                           "run --target databricks --rollback once the policies are in place")
        if table.row_filter is not None and key in state.filters:
            out.append(f"{table.name} has a table-level row filter beside the ABAC policy; run --target databricks "
                       "--rollback once the policies are in place")
    return out


def _key3(name: Name) -> tuple[str, ...]:
    parts = _key(name)
    return parts if len(parts) == 3 else ("",) * (3 - len(parts)) + parts


_QUOTED = r"`((?:[^`]|``)+)`"


def _parts(text: str) -> tuple[str, ...]:
    return tuple(p.replace("``", "`").lower() for p in re.findall(_QUOTED, text))


def _absent(st: Statement, state: State) -> bool:
    """A ``DROP MASK`` / ``DROP ROW FILTER`` the state shows has nothing to drop."""
    m = re.match(rf"ALTER (?:TABLE|MATERIALIZED VIEW|STREAMING TABLE) ((?:{_QUOTED}\.?)+)"
                 rf"(?: ALTER COLUMN ({_QUOTED}))? DROP (MASK|ROW FILTER)$", st.sql)
    if m is None:
        return False
    table = _key3(Name(_parts(m.group(1))))
    if m.group(m.lastindex or 0) == "MASK" and "column_masks" in state.read:
        return (*table, _parts(m.group(3) or "")[0]) not in state.masks
    if m.group(m.lastindex or 0) == "ROW FILTER" and "row_filters" in state.read:
        return table not in state.filters
    return False


def _rollback_plan(compiled: Compiled, state: State) -> Plan:
    """The rollback statements, without a ``DROP POLICY`` (no IF EXISTS form), ``DROP MASK`` or ``DROP ROW FILTER``
    that the state shows has nothing to drop."""
    out = []
    known = "abac_policy_definitions" in state.read
    for st in compiled.rollback:
        if st.kind in ("drop_mask", "drop_row_filter") and _absent(st, state):
            continue
        if st.kind == "drop_policy" and known:
            m = re.match(r"DROP POLICY `((?:[^`]|``)+)` ON SCHEMA (.+)$", st.sql)
            if m:
                parts = [p.replace("``", "`").lower() for p in re.findall(r"`((?:[^`]|``)+)`", m.group(2))]
                cat = parts[0] if len(parts) == 2 else ""
                if (cat, parts[-1], m.group(1).replace("``", "`").lower()) not in state.policies:
                    continue
        out.append(st)
    return Plan(tuple(out), rollback=True)


# -------------------------------------------------------------------------------------------------------- run
def _failure(exc: BaseException) -> StatementFailed:
    if isinstance(exc, StatementFailed):
        return exc
    first = (str(exc).splitlines() or [""])[0][:300]
    m = re.search(r"\[([A-Z][A-Z0-9_.]+)\]", first)
    return StatementFailed(m.group(1) if m else type(exc).__name__, first)


def _revoke_sql(st: Statement, privileges: tuple[str, ...]) -> str:
    p = st.grant
    assert p is not None
    return f"REVOKE {', '.join(privileges)} ON {p.securable} {p.name.sql()} FROM {ident(p.principal)}"


def execute(run: Run, plan: Plan, progress: Progress = log.info) -> int:
    """Run the plan in order. On a failure: revoke what this run's GRANTs added (last first), keep everything else,
    raise :class:`ApplyFailed`. A rollback also tolerates "not found" answers to its undo statements. Returns how
    many statements ran."""
    total = len(plan.statements)
    added: list[tuple[Statement, tuple[str, ...]]] = []
    for i, st in enumerate(plan.statements):
        progress(f"[{i + 1}/{total}] {st.kind} {st.about}")
        try:
            try:
                run(st.sql)
            except BaseException as exc:
                if st.if_exists is not None and ALREADY_EXISTS.search(str(exc) + getattr(exc, "code", "")):
                    progress(f"  {st.about} exists; {st.if_exists.sql.split(' (', 1)[0]}")
                    run(st.if_exists.sql)
                elif plan.rollback and st.kind in UNDO_KINDS and NOT_FOUND.search(
                        f"{getattr(exc, 'code', '')} {exc}"):
                    progress(f"  already undone ({_failure(exc).code})")
                else:
                    raise
        except BaseException as exc:  # KeyboardInterrupt too: the same rule, then re-raised by the caller's code
            error = _failure(exc) if isinstance(exc, Exception) else StatementFailed("INTERRUPTED", "interrupted")
            if not plan.rollback:
                progress(f"statement {i + 1} failed ({error.code}); protections stay, revoking {len(added)} grant(s) "
                         "this run added")
            revoked, failures = _revoke_added(run, added)
            failed = ApplyFailed(i + 1, total, st, error, revoked, failures, rollback=plan.rollback)
            if not isinstance(exc, Exception):
                raise failed from exc
            raise failed from None
        new = plan.adds.get(i, ())
        if new:
            added.append((st, new))
    return total


def _revoke_added(run: Run, added: list[tuple[Statement, tuple[str, ...]]]) -> tuple[list[str], list[str]]:
    revoked, failures = [], []
    for st, privileges in reversed(added):
        sql = _revoke_sql(st, privileges)
        try:
            run(sql)
            revoked.append(f"{', '.join(privileges)} {st.about}")
        except Exception as exc:  # noqa: BLE001 - named in the report
            failures.append(f"revoke {st.about}: {_failure(exc)}")
    return revoked, failures


def apply(run: Run, compiled: Compiled, progress: Progress = log.info, *, rollback: bool = False,
          has_view: Callable[[str, str], bool] | None = None) -> tuple[Plan, int]:
    """Read the state, plan, execute: what both the CLI and the notebook call."""
    state = read_state(run, compiled, has_view)
    plan = make_plan(compiled, state, rollback=rollback)
    for name in plan.changed:
        progress(f"{name}: its signature changed; moved through {versioned(Name(tuple(name.split('.')))).leaf} so "
                 "no column is ever unmasked")
    for st in plan.skipped:
        progress(f"skipped {st.kind} {st.about}: {st.requires} does not exist yet (ingest creates it); re-run "
                 "apply after the first ingest")
    for text in plan.warnings:
        progress(f"warning: {text}")
    if plan.unknown_privileges:
        progress(f"could not read {', '.join(plan.unknown_privileges)}: a failure would revoke none of those grants")
    return plan, execute(run, plan, progress)
