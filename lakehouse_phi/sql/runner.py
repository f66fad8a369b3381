"""Run compiled governance statements on a Spark session (a Databricks notebook, or local Spark in tests); the
same statements run over a SQL warehouse with :mod:`lakehouse_phi.databricks.apply`. Both go through
:mod:`lakehouse_phi.sql.plan`: the same state reading, ordering, signature moves and failure rule (protections stay,
only the privileges the run added are revoked, :class:`~lakehouse_phi.sql.plan.ApplyFailed` names the statement).

No PySpark import here: ``spark`` is whatever session the caller has. ``progress`` receives one line per step
(statement kinds and the governed object, never data).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lakehouse_phi.sql import plan as planning
from lakehouse_phi.sql.compile import Compiled
from lakehouse_phi.sql.dialects import TARGETS
from lakehouse_phi.sql.verify import verify

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


def dry_run(spark: Any, compiled: Compiled, progress: Progress = _quiet) -> list[str]:
    """Everything that can be checked without changing the catalog; the problems found (empty: ready to apply).

    1. every statement, statically (:func:`lakehouse_phi.sql.verify.verify`);
    2. every function body, by the engine: created as a session-scoped temporary function and dropped again (this
       resolves every built-in, ``is_account_group_member`` and ``secret``, and checks the return type);
    3. every governed table exists, with each masked and row-filter column of the type the policy declares.
    """
    problems = [f"{st.about}: {msg}" for st in compiled.apply + compiled.rollback if (msg := verify(st))]
    progress(f"static check: {len(compiled.apply) + len(compiled.rollback)} statements, {len(problems)} problems")
    gen = TARGETS[compiled.target]()
    for fn in compiled.ir.functions:
        try:
            spark.sql(gen.create_function(fn, temporary=True).sql)
            spark.sql(f"DROP TEMPORARY FUNCTION IF EXISTS `{fn.name.leaf}`")
        except Exception as exc:  # noqa: BLE001 - the engine's own message, which names no data
            problems.append(f"{fn.name}: the engine refuses the function: {str(exc).splitlines()[0][:300]}")
    progress(f"function bodies: {sum(1 for _ in compiled.ir.functions)} checked by the engine")
    for table in compiled.ir.tables:
        try:
            schema = {f.name.lower(): f.dataType.simpleString() for f in spark.table(table.name.sql()).schema.fields}
        except Exception as exc:  # noqa: BLE001
            problems.append(f"{table.name}: cannot read the table ({str(exc).splitlines()[0][:200]})")
            continue
        wanted = [param for m in table.masks for param in m.params]  # _key_versions too, where read
        if table.row_filter is not None:
            wanted += list(table.row_filter.params)
        for col, policy_type in wanted:
            found = schema.get(col.lower())
            if found is None:
                problems.append(f"{table.name}.{col}: no such column")
            elif found.replace(" ", "").lower() != (wanted_type := gen.type_name(policy_type).lower()):
                problems.append(f"{table.name}.{col}: the table has {found}, the policy says {wanted_type}")
    progress(f"tables: {len(compiled.ir.tables)} checked; {len(problems)} problems in all")
    return problems


def _runner(spark: Any) -> planning.Run:
    """One statement through ``spark.sql``, its rows as lists."""
    def run(sql: str) -> list[list[Any]]:
        return [list(row) for row in spark.sql(sql).collect()]
    return run


def _has_view(spark: Any) -> Callable[[str, str], bool]:
    """Whether the session's catalog has ``information_schema.<view>`` (Unity Catalog does; open-source Spark not)."""
    def has(catalog: str, view: str) -> bool:
        try:
            return bool(spark.catalog.tableExists(f"{catalog + '.' if catalog else ''}information_schema.{view}"))
        except Exception:  # noqa: BLE001 - an engine that cannot even answer has no such view
            return False
    return has


def apply(spark: Any, compiled: Compiled, progress: Progress = _quiet) -> int:
    """Read the state, then create the functions, bind them, grant last (idempotent: applying twice gives the same
    state). Raises :class:`~lakehouse_phi.sql.plan.ApplyFailed` on a failure, with every protection kept."""
    return planning.apply(_runner(spark), compiled, progress, has_view=_has_view(spark))[1]


def rollback(spark: Any, compiled: Compiled, progress: Progress = _quiet) -> int:
    """Revoke, unbind, then drop the functions (``IF EXISTS`` and "not found" tolerated: harmless when already rolled
    back)."""
    return planning.apply(_runner(spark), compiled, progress, rollback=True, has_view=_has_view(spark))[1]
