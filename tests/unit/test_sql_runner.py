"""The notebook apply path (:mod:`lakehouse_phi.sql.runner`) behaves like ``lakehouse-phi apply``: the same plan
(:mod:`lakehouse_phi.sql.plan`), so the same statements in the same order, and the same failure rule. The session
here is a thin ``spark.sql`` over the Unity Catalog model of the loopback warehouse
(:class:`tests.ucwarehouse.Catalog`),
which answers ``information_schema`` as a Databricks notebook's session would."""

from __future__ import annotations

import pytest

pytest.importorskip("databricks.sdk")

from lakehouse_phi.policy import load_policy
from lakehouse_phi.sql import compile_policy, runner
from lakehouse_phi.sql.plan import ApplyFailed
from tests.helpers import run_cli
from tests.ucwarehouse import Catalog, SqlError, Warehouse, example_catalog, serve

POLICY = "conf/policy.yaml"


class _Rows:
    def __init__(self, rows: list[list]) -> None:
        self.rows = rows

    def collect(self) -> list[list]:
        return self.rows


class Session:
    """``spark.sql`` and ``spark.catalog.tableExists`` over a :class:`Catalog`; an engine error is an exception
    whose message starts with ``[CODE]``, as PySpark's are."""

    def __init__(self, catalog: Catalog) -> None:
        self.uc, self.sent = catalog, []
        self.fail_on: str | None = None
        self.catalog = self

    def tableExists(self, name: str) -> bool:
        return ".information_schema." in f".{name}"

    def sql(self, text: str) -> _Rows:
        self.sent.append(text)
        if text == self.fail_on:
            raise RuntimeError("[INSUFFICIENT_PERMISSIONS] chosen failure")
        try:
            return _Rows(self.uc.execute(text))
        except SqlError as exc:
            raise RuntimeError(exc.message) from None


def test_notebook_and_cli_run_the_same_statements(tmp_path, monkeypatch):
    compiled = compile_policy(load_policy(POLICY), "databricks")
    session = Session(example_catalog())
    assert runner.apply(session, compiled) > 0
    wh = Warehouse(example_catalog())
    server = serve(wh)
    try:
        monkeypatch.setattr("lakehouse_phi.databricks.apply.POLL_SECONDS", 0.01)
        done = run_cli("apply", POLICY, "--warehouse-id", "wh-123",
                       env={"DATABRICKS_HOST": wh.url, "DATABRICKS_TOKEN": "t", "HOME": str(tmp_path),
                            "DATABRICKS_CONFIG_FILE": str(tmp_path / "none")})
    finally:
        server.shutdown()
        server.server_close()
    assert done.returncode == 0, done.stderr
    assert session.sent == wh.statements  # state queries, then the same statements in the same order
    assert session.uc.masks == wh.catalog.masks and session.uc.privileges == wh.catalog.privileges


def test_notebook_failure_keeps_protections_and_revokes_only_its_grants():
    compiled = compile_policy(load_policy(POLICY), "databricks")
    session = Session(example_catalog())
    runner.apply(session, compiled)
    masks, filters, privileges = dict(session.uc.masks), dict(session.uc.filters), set(session.uc.privileges)
    last = [s for s in compiled.apply if s.kind == "grant" and s.requires is None][-1]
    session.fail_on = last.sql
    with pytest.raises(ApplyFailed, match=r"\(grant .*\) failed: \[INSUFFICIENT_PERMISSIONS\]"):
        runner.apply(session, compiled)
    assert session.uc.masks == masks and session.uc.filters == filters and session.uc.privileges == privileges
    # a first apply failing late: the grants it made are revoked, its masks stay
    fresh = Session(example_catalog())
    fresh.fail_on = last.sql
    with pytest.raises(ApplyFailed) as info:
        runner.apply(fresh, compiled)
    assert fresh.uc.privileges == set() and len(fresh.uc.masks) == 7 and info.value.revoked


def test_notebook_rollback_twice():
    compiled = compile_policy(load_policy(POLICY), "databricks-abac")
    session = Session(example_catalog())
    runner.apply(session, compiled)
    assert session.uc.policies
    runner.rollback(session, compiled)
    runner.rollback(session, compiled)
    assert not session.uc.policies and not session.uc.masks


def test_unreadable_privileges_mean_nothing_is_revoked():
    """Without ``*_privileges`` views nothing tells a grant held before the run from one it added: a failure then
    revokes none (every GRANT runs after the protections), so a grant given by hand before the run survives."""

    class NoPrivilegeViews(Catalog):
        def info(self, view: str) -> list[dict]:
            if view.endswith("_privileges"):
                raise SqlError("TABLE_OR_VIEW_NOT_FOUND", f"[TABLE_OR_VIEW_NOT_FOUND] {view}")
            return super().info(view)

    compiled = compile_policy(load_policy(POLICY), "databricks")
    uc = NoPrivilegeViews(**vars(example_catalog()))
    by_hand = ("TABLE", "main", "silver", "patients", "research-analysts", "SELECT")
    uc.privileges.add(by_hand)
    session = Session(uc)
    lines: list[str] = []
    session.fail_on = [s for s in compiled.apply if s.kind == "grant" and s.requires is None][-1].sql
    with pytest.raises(ApplyFailed) as info:
        runner.apply(session, compiled, progress=lines.append)
    assert info.value.revoked == [] and by_hand in uc.privileges
    assert not any(s.startswith("REVOKE") for s in session.sent)
    assert any("a failure would revoke none of those grants" in line for line in lines)
