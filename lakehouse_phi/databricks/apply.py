"""Apply compiled governance statements on a Databricks SQL warehouse, one statement per request.

The statements are exactly those of the compiled ``apply.sql`` (:class:`lakehouse_phi.sql.Compiled`), run in order
through the Statement Execution API (``POST /api/2.0/sql/statements``, polled with ``GET`` while the warehouse
works). Before them, the *plan* reads the signatures of the functions that already exist
(``information_schema.parameters``): ``CREATE OR REPLACE FUNCTION`` cannot change a signature, so for every function
whose parameter types changed the plan first unbinds it (``DROP MASK`` / ``DROP ROW FILTER`` / ``DROP POLICY`` /
``DROP VIEW``, the undo of the statement that binds it) and drops it; the compiled statements then recreate and
rebind it.

On a failure the run stops, undoes the statements it applied, last first (each statement's ``undo``, as in
``rollback.sql``), and raises :class:`ApplyFailed` naming the failed statement. Messages carry statement kinds,
governed objects and the warehouse's error code and first message line, never data.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from lakehouse_phi.errors import JobRefused
from lakehouse_phi.sql.compile import Compiled, generator
from lakehouse_phi.sql.generator import Statement
from lakehouse_phi.sql.ir import MaskFunction, Name, RowFilterFunction
from lakehouse_phi.sql.quoting import ident, string

log = logging.getLogger(__name__)
Progress = Callable[[str], None]

#: statement kinds that bind a function to a table (their undo unbinds it)
BINDING_KINDS = ("set_mask", "set_row_filter", "create_policy", "create_view")
#: how long one request waits before the API answers PENDING/RUNNING, and the pause between polls
WAIT_TIMEOUT = "30s"
POLL_SECONDS = 1.0


class StatementFailed(Exception):
    """A statement ended FAILED, CANCELED or CLOSED. ``code`` is the warehouse's error code, ``message`` the first
    line of its message."""

    def __init__(self, code: str, message: str, statement_id: str | None = None) -> None:
        super().__init__(f"[{code}] {message}")
        self.code, self.message, self.statement_id = code, message, statement_id


class ApplyFailed(JobRefused):
    """Statement ``index`` (1-based) of the plan failed; the statements before it were undone (``rolled_back``),
    except those in ``rollback_failures``."""

    def __init__(self, index: int, total: int, statement: Statement, error: StatementFailed, rolled_back: int,
                 rollback_failures: list[str]) -> None:
        self.index, self.statement, self.error = index, statement, error
        self.rolled_back, self.rollback_failures = rolled_back, rollback_failures
        text = (f"statement {index}/{total} ({statement.kind} {statement.about}) failed: {error}; "
                f"rolled back the {rolled_back} statement(s) applied before it, last first")
        if rollback_failures:
            text += f"; {len(rollback_failures)} undo statement(s) failed too: " + "; ".join(rollback_failures)
        super().__init__(text)


class Warehouse:
    """Runs one statement at a time on a SQL warehouse with a ``databricks.sdk.WorkspaceClient`` (unified
    authentication: ``DATABRICKS_HOST``/``DATABRICKS_TOKEN``, a config profile, OAuth for a service principal)."""

    def __init__(self, client: Any, warehouse_id: str, poll_seconds: float | None = None) -> None:
        self.client, self.warehouse_id = client, warehouse_id
        self.poll_seconds = POLL_SECONDS if poll_seconds is None else poll_seconds
        self.statement_ids: list[str] = []

    def run(self, sql: str) -> list[list[Any]]:
        """Run ``sql``; its result rows (inline JSON arrays, first chunk). Raises :class:`StatementFailed`."""
        from databricks.sdk.errors import DatabricksError
        from databricks.sdk.service.sql import ExecuteStatementRequestOnWaitTimeout, StatementState

        api = self.client.statement_execution
        try:
            r = api.execute_statement(statement=sql, warehouse_id=self.warehouse_id, wait_timeout=WAIT_TIMEOUT,
                                      on_wait_timeout=ExecuteStatementRequestOnWaitTimeout.CONTINUE)
            while r.status is not None and r.status.state in (StatementState.PENDING, StatementState.RUNNING):
                time.sleep(self.poll_seconds)
                r = api.get_statement(r.statement_id)
        except DatabricksError as exc:  # HTTP-level: auth, unknown warehouse, throttling
            code = getattr(exc, "error_code", None) or type(exc).__name__
            raise StatementFailed(str(code), (str(exc).splitlines() or [""])[0][:300]) from None
        if r.statement_id:
            self.statement_ids.append(r.statement_id)
        state = r.status.state if r.status is not None else None
        if state != StatementState.SUCCEEDED:
            err = r.status.error if r.status is not None else None
            code = (err.error_code.value if hasattr(err.error_code, "value") else str(err.error_code)) \
                if err is not None and err.error_code is not None else (state.value if state else "UNKNOWN")
            message = (err.message or "").splitlines()[0][:300] if err is not None and err.message else \
                f"statement ended {state.value if state else 'without a state'}"
            raise StatementFailed(code, message, r.statement_id)
        return list(r.result.data_array or []) if r.result is not None else []


# ------------------------------------------------------------------------------------------------------ plan
@dataclass(frozen=True)
class Plan:
    """What ``apply`` runs: the statements that clear changed signatures, then the compiled ones."""

    prelude: tuple[Statement, ...] = ()
    statements: tuple[Statement, ...] = ()
    changed: tuple[str, ...] = field(default=())

    @property
    def all(self) -> list[Statement]:
        return [*self.prelude, *self.statements]


def signature_query(schema: Name, names: Iterable[str]) -> str:
    """The parameters of the named functions of ``schema`` (``CATALOG.SCHEMA`` or ``SCHEMA``), in order."""
    info = f"{ident(schema.parts[0])}.information_schema.parameters" if len(schema.parts) == 2 else \
        "information_schema.parameters"
    listed = ", ".join(string(n.lower()) for n in names)
    return (f"SELECT specific_name, ordinal_position, parameter_name, full_data_type FROM {info} "
            f"WHERE specific_schema = {string(schema.leaf.lower())} AND specific_name IN ({listed}) "
            "ORDER BY specific_name, ordinal_position")


def _norm_type(text: str) -> str:
    return "".join(str(text).split()).upper()


def live_signatures(run: Callable[[str], list[list[Any]]], compiled: Compiled
                    ) -> dict[str, tuple[tuple[str, str], ...]]:
    """Function leaf name (lower case) -> its existing ``(parameter, TYPE)`` list, for the compiled functions that
    exist."""
    names = [fn.name.leaf for fn in compiled.ir.functions]
    if not names:
        return {}
    found: dict[str, list[tuple[str, str]]] = {}
    for row in run(signature_query(compiled.ir.function_schema, names)):
        found.setdefault(str(row[0]).lower(), []).append((str(row[2]).lower(), _norm_type(row[3])))
    return {k: tuple(v) for k, v in found.items()}


def make_plan(compiled: Compiled, live: dict[str, tuple[tuple[str, str], ...]]) -> Plan:
    """Unbind and drop each existing function whose signature differs from the compiled one, then the compiled
    statements."""
    gen = generator(compiled.target)
    prelude: list[Statement] = []
    changed: list[str] = []
    for fn in compiled.ir.functions:
        wanted = tuple((col.lower(), _norm_type(gen.type_name(t))) for col, t in fn.params)
        have = live.get(fn.name.leaf.lower())
        if have is None or have == wanted:
            continue
        changed.append(str(fn.name))
        prelude.extend(_unbind(compiled, fn))
        prelude.append(Statement(f"DROP FUNCTION IF EXISTS {fn.name.sql()}", "drop_function",
                                 f"{fn.name} (its signature changed)"))
    return Plan(tuple(prelude), tuple(compiled.apply), tuple(changed))


def _unbind(compiled: Compiled, fn: MaskFunction | RowFilterFunction) -> list[Statement]:
    called = fn.name.sql()
    return [st.undo for st in compiled.apply
            if st.kind in BINDING_KINDS and st.undo is not None and called in st.sql]


# ------------------------------------------------------------------------------------------------------- run
def run_plan(run: Callable[[str], Any], statements: list[Statement], progress: Progress = log.info) -> int:
    """Run ``statements`` in order; on a failure undo the applied ones in reverse order and raise
    :class:`ApplyFailed`. Returns how many ran."""
    applied: list[Statement] = []
    total = len(statements)
    for i, st in enumerate(statements, 1):
        progress(f"[{i}/{total}] {st.kind} {st.about}")
        try:
            run(st.sql)
        except StatementFailed as exc:
            progress(f"statement {i} failed ({exc.code}); undoing {len(applied)} applied statement(s)")
            failures: list[str] = []
            undone = 0
            for done in reversed(applied):
                if done.undo is None:
                    continue
                try:
                    run(done.undo.sql)
                    undone += 1
                except StatementFailed as undo_exc:
                    failures.append(f"{done.undo.kind} {done.undo.about}: {undo_exc}")
            raise ApplyFailed(i, total, st, exc, undone, failures) from None
        applied.append(st)
    return total
