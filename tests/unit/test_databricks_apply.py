"""``lakehouse-phi apply`` with the real databricks-sdk client against a loopback Statement Execution API that keeps
Unity Catalog state across statements and runs (:mod:`tests.ucwarehouse`).

What is checked is what a governance admin relies on: a re-apply that fails late never removes a protection that was
in place (only the grants the run added are revoked), a changed signature never leaves a column unmasked, rollback is
idempotent, the first deploy works before ingest created bronze, the ABAC target creates its governed tags with
allowed values, the run has a deadline that cancels the running statement, and transient HTTP errors are retried.
The CLI runs in this process through :func:`tests.helpers.run_cli` (one case in its own process, as a job would).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("databricks.sdk")

from lakehouse_phi.policy import load_policy
from lakehouse_phi.sql import compile_policy
from lakehouse_phi.sql.plan import versioned
from tests.helpers import run_cli
from tests.ucwarehouse import Warehouse, example_catalog, serve

ROOT = Path(__file__).resolve().parents[2]
POLICY = ROOT / "conf" / "policy.yaml"
TOKEN = "dapi-loopback-test-token"
PROTECTING = ("create_schema", "governed_tag", "create_function", "set_row_filter", "set_mask", "create_policy",
              "create_view")


@pytest.fixture()
def warehouse():
    state = Warehouse(example_catalog())
    server = serve(state)
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture()
def apply(warehouse, tmp_path, monkeypatch):
    """``lakehouse-phi apply POLICY ARGS`` with unified-auth environment variables only; ``subprocess_=True`` runs
    it in its own process, as a job would."""
    env = {"DATABRICKS_HOST": warehouse.url, "DATABRICKS_TOKEN": TOKEN, "HOME": str(tmp_path),
           "DATABRICKS_CONFIG_FILE": str(tmp_path / "no.databrickscfg")}

    def run(*args: str, policy: Path = POLICY, subprocess_: bool = False) -> subprocess.CompletedProcess:
        if subprocess_:
            full = {k: v for k, v in os.environ.items() if not k.startswith(("DATABRICKS_", "ARM_", "AZURE_"))}
            return subprocess.run([sys.executable, "-m", "lakehouse_phi", "apply", str(policy), *args], check=False,
                                  capture_output=True, text=True, env={**full, **env, "PYTHONPATH": str(ROOT)},
                                  cwd=tmp_path, timeout=180)
        monkeypatch.setattr("lakehouse_phi.databricks.apply.POLL_SECONDS", 0.001)  # the fake answers at once
        monkeypatch.setattr("lakehouse_phi.databricks.apply.BACKOFF_SECONDS", 0.01)
        for k in [k for k in os.environ if k.startswith("DATABRICKS_")]:
            monkeypatch.delenv(k)
        return run_cli("apply", str(policy), *args, env=env)

    return run


def _compiled(target: str = "databricks", policy: Path = POLICY):
    return compile_policy(load_policy(policy), target)


def _protections(wh: Warehouse) -> dict:
    return wh.catalog.protections()


def _ok(done: subprocess.CompletedProcess) -> None:
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr


# ----------------------------------------------------------------------------------------------- happy path
@pytest.mark.parametrize("target", ["databricks", "databricks-abac", "dynamic-views"])
def test_applies_in_order_polls_and_governs(warehouse, apply, target):
    done = apply("--target", target, "--warehouse-id", "wh-123", "--format", "json")
    _ok(done)
    compiled = _compiled(target)
    skipped = {s.sql for s in compiled.apply if s.requires is not None}  # bronze does not exist yet
    assert warehouse.modifying() == [s.sql for s in compiled.apply if s.sql not in skipped]
    assert all(s.startswith("SELECT") for s in warehouse.statements[:len(warehouse.statements)
                                                                      - len(warehouse.modifying())])
    assert any(m == "GET" and p.startswith("/api/2.0/sql/statements/stmt-") for m, p in warehouse.requests)
    assert warehouse.auth == {f"Bearer {TOKEN}"}
    report = json.loads(done.stdout)
    assert report["ok"] is True and report["statements"] == len(warehouse.modifying())
    assert {s["about"] for s in report["skipped"]} == {s.about for s in compiled.apply if s.sql in skipped}
    cat = warehouse.catalog
    if target == "databricks":
        assert cat.masks[("main", "silver", "patients", "ssn")] == ("main", "governance", "mask_patients_ssn")
        assert cat.filters[("main", "gold", "claims")] == ("main", "governance", "filter_claims")
    if target == "databricks-abac":
        assert ("main", "silver", "lhp_mask_patients_ssn") in cat.policies
        assert "mask_patients_ssn" in cat.governed_tags["phi_mask"]  # created with values before the SET TAGS
        assert cat.tags[("main", "silver", "patients", "ssn")]["phi_mask"] == "mask_patients_ssn"
    # the ingest principal can create bronze on the first deploy; GRANTs came last
    assert ("SCHEMA", "main", "bronze", "lakehouse-phi-ingest", "CREATE TABLE") in cat.privileges
    kinds = [s.kind for s in compiled.apply if s.sql in set(warehouse.modifying())]
    assert max(i for i, k in enumerate(kinds) if k in PROTECTING) < kinds.index("grant")


def test_first_deploy_skips_what_ingest_creates_then_grants_it(warehouse, apply):
    """Before the first ingest the quarantine and audit-trail grants and the bronze tags wait; after it a re-apply
    grants the readers SELECT (never MODIFY) on them."""
    _ok(apply("--warehouse-id", "wh-123"))
    cat = warehouse.catalog
    audit = ("TABLE", "main", "bronze", "lakehouse_phi_audit", "phi-admins")
    assert not any(p[:5] == audit for p in cat.privileges)
    from tests.ucwarehouse import BRONZE_TABLES

    for name, cols in BRONZE_TABLES.items():  # the first ingest ran
        cat.add_table(name, cols)
    done = apply("--warehouse-id", "wh-123")
    _ok(done)
    assert (*audit, "SELECT") in cat.privileges and (*audit, "MODIFY") not in cat.privileges
    assert ("TABLE", "main", "bronze", "patients_quarantine", "phi-admins", "SELECT") in cat.privileges
    assert cat.tags[("main", "bronze", "patients", "ssn")]["phi"] == "ssn"


# ------------------------------------------------------------------------------------- fail toward protection
def _late(target: str) -> list[int]:
    """Indexes (in the compiled apply) of every statement after the last binding: tags, comments, grants."""
    c = _compiled(target)
    last = max(i for i, s in enumerate(c.apply) if s.kind in ("set_mask", "set_row_filter", "create_policy",
                                                               "create_view"))
    return [i for i, s in enumerate(c.apply) if i > last and s.requires is None]


@pytest.mark.parametrize("target", ["databricks", "databricks-abac", "dynamic-views"])
def test_reapply_failing_at_each_late_statement_keeps_every_protection(warehouse, apply, target):
    """An unchanged policy applied again, failing at each statement after the last binding in turn: every mask,
    filter, policy and view that was there before is still there, the privileges held before are still held, the
    exit code is 1 and the message names the statement."""
    _ok(apply("--target", target, "--warehouse-id", "wh-123"))
    before, privileges = _protections(warehouse), set(warehouse.catalog.privileges)
    compiled = _compiled(target)
    for i in _late(target):
        st = compiled.apply[i]
        warehouse.fail = [(lambda sql, s=st.sql: sql == s, True)]
        warehouse.history.clear()
        done = apply("--target", target, "--warehouse-id", "wh-123")
        assert done.returncode == 1, (i, done.stderr)
        assert f"({st.kind} {st.about}) failed: [BAD_REQUEST] [INSUFFICIENT_PERMISSIONS]" in done.stderr
        assert "second line never shown" not in done.stderr and "Traceback" not in done.stderr
        assert _protections(warehouse) == before, st.about
        for _, seen in warehouse.history:  # never, not even for a moment
            assert seen["masks"] == before["masks"] and seen["filters"] == before["filters"]
            assert seen["policies"] == before["policies"]
        assert warehouse.catalog.privileges == privileges, st.about
        assert not any(s.startswith(("DROP MASK", "DROP POLICY", "DROP FUNCTION")) or " DROP " in s
                       for s in warehouse.modifying()[-len(warehouse.history):])


def test_failed_first_apply_revokes_only_what_it_granted(warehouse, apply):
    """A privilege held before the run is kept even when the run re-grants it and then fails; privileges the run
    added are revoked; the masks it set stay."""
    cat = warehouse.catalog
    cat.privileges.add(("TABLE", "main", "silver", "patients", "research-analysts", "SELECT"))  # granted by hand
    compiled = _compiled()
    last_grant = [s for s in compiled.apply if s.kind == "grant" and s.requires is None][-1]
    warehouse.fail = [(lambda sql: sql == last_grant.sql, True)]
    done = apply("--warehouse-id", "wh-123", "--format", "json")
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert report["ok"] is False and report["kind"] == "grant" and report["about"] == last_grant.about
    assert cat.privileges == {("TABLE", "main", "silver", "patients", "research-analysts", "SELECT")}
    assert len(report["revoked"]) > 0 and report["revoke_failures"] == []
    assert len(cat.masks) == 7 and len(cat.filters) == 3  # protections stay


# --------------------------------------------------------------------------------------------- signatures
def _old_signature(cat, with_mask: bool = True) -> None:
    """``mask_patients_age(age BIGINT)`` from an earlier policy, bound to the column."""
    cat.schemas.add(("main", "governance"))
    cat.functions[("main", "governance", "mask_patients_age")] = (("age", "BIGINT"),)
    if with_mask:
        cat.masks[("main", "silver", "patients", "age")] = ("main", "governance", "mask_patients_age")


@pytest.mark.parametrize("target", ["databricks", "databricks-abac"])
def test_changed_signature_is_never_unmasked(warehouse, apply, target):
    cat = warehouse.catalog
    _old_signature(cat, with_mask=target == "databricks")
    if target == "databricks-abac":
        cat.policies[("main", "silver", "lhp_mask_patients_age")] = ("main", "governance", "mask_patients_age")
    done = apply("--target", target, "--warehouse-id", "wh-123")
    _ok(done)
    assert "main.governance.mask_patients_age: its signature changed" in done.stderr
    assert cat.functions[("main", "governance", "mask_patients_age")] == (("age", "INT"),)
    assert ("main", "governance", "mask_patients_age__v1") not in cat.functions
    bound = ("main", "governance", "mask_patients_age")
    for sql, seen in warehouse.history:
        if target == "databricks":
            assert ("main", "silver", "patients", "age") in seen["masks"], sql
        else:
            assert ("main", "silver", "lhp_mask_patients_age") in seen["policies"], sql
    final = cat.masks if target == "databricks" else cat.policies
    assert bound in final.values()


def test_changed_signature_failing_at_every_step_stays_masked_and_recovers(warehouse, apply):
    """Whichever statement of the move fails, the column keeps a mask; the next apply finishes the move."""
    cat = warehouse.catalog
    _old_signature(cat)
    temp = versioned(next(f.name for f in _compiled().ir.functions if f.name.leaf == "mask_patients_age"))
    steps = [f"CREATE OR REPLACE FUNCTION {temp.sql()}", f"SET MASK {temp.sql()}",
             "DROP FUNCTION IF EXISTS `main`.`governance`.`mask_patients_age`",
             "CREATE OR REPLACE FUNCTION `main`.`governance`.`mask_patients_age`",
             "ALTER COLUMN `age` SET MASK `main`.`governance`.`mask_patients_age`",
             f"DROP FUNCTION IF EXISTS {temp.sql()}"]
    for step in steps:
        warehouse.fail = [(lambda sql, s=step: s in sql, True)]
        done = apply("--warehouse-id", "wh-123")
        assert done.returncode == 1, step
        for sql, seen in warehouse.history:
            assert ("main", "silver", "patients", "age") in seen["masks"], (step, sql)
        _ok(apply("--warehouse-id", "wh-123"))  # and a re-run completes it
        assert cat.masks[("main", "silver", "patients", "age")] == ("main", "governance", "mask_patients_age")
        assert cat.functions[("main", "governance", "mask_patients_age")] == (("age", "INT"),)
        assert temp.parts not in cat.functions
        _old_signature(cat)  # back to the old signature for the next step
        cat.masks[("main", "silver", "patients", "age")] = ("main", "governance", "mask_patients_age")
        cat.functions[("main", "governance", "mask_patients_age")] = (("age", "BIGINT"),)


# ----------------------------------------------------------------------------------------------- rollback
@pytest.mark.parametrize("target", ["databricks", "databricks-abac", "dynamic-views"])
def test_rollback_twice_succeeds(warehouse, apply, target):
    _ok(apply("--target", target, "--warehouse-id", "wh-123"))
    _ok(apply("--target", target, "--warehouse-id", "wh-123", "--rollback"))
    cat = warehouse.catalog
    assert not cat.masks and not cat.filters and not cat.policies and not cat.views
    assert not [f for f in cat.functions if f[1] == "governance"]
    _ok(apply("--target", target, "--warehouse-id", "wh-123", "--rollback"))  # idempotent


def test_rollback_and_expected_sha(warehouse, apply):
    done = apply("--warehouse-id", "wh-123", "--expected-sha256", "0" * 64)
    assert done.returncode == 1 and "not the expected" in done.stderr and warehouse.requests == []
    sha = load_policy(POLICY).sha256
    _ok(apply("--warehouse-id", "wh-123", "--rollback", "--expected-sha256", sha))


# ---------------------------------------------------------------------------------- timeout, cancel, retry
def test_timeout_cancels_the_running_statement(warehouse, apply):
    warehouse.hang = lambda sql: sql.startswith("CREATE OR REPLACE FUNCTION")
    done = apply("--warehouse-id", "wh-123", "--timeout", "1.5")
    assert done.returncode == 1
    assert "[TIMEOUT]" in done.stderr and "create_function" in done.stderr
    assert warehouse.cancelled and ("POST", f"/api/2.0/sql/statements/{warehouse.cancelled[0]}/cancel") in \
        warehouse.requests


def test_ctrl_c_cancels_the_running_statement_and_keeps_protections(warehouse, apply, monkeypatch):
    """Ctrl-C while a GRANT runs: the statement is cancelled, the grants this run made are revoked, the masks stay,
    exit 1 naming the statement."""
    import lakehouse_phi.databricks.apply as wh_apply

    first_grant = [s for s in _compiled().apply if s.kind == "grant" and s.requires is None][-1]  # the last one
    warehouse.hang = lambda sql: sql == first_grant.sql
    real_sleep = wh_apply.time.sleep

    def sleep(seconds: float) -> None:
        if warehouse.running:
            raise KeyboardInterrupt
        real_sleep(seconds)

    monkeypatch.setattr(wh_apply.time, "sleep", sleep)
    done = apply("--warehouse-id", "wh-123")
    assert done.returncode == 1
    assert f"({first_grant.kind} {first_grant.about}) failed: [INTERRUPTED]" in done.stderr
    assert warehouse.cancelled and not warehouse.running
    assert len(warehouse.catalog.masks) == 7 and warehouse.catalog.privileges == set()  # earlier grants revoked
    assert any(sql.startswith("REVOKE") for sql in warehouse.modifying())


@pytest.mark.parametrize("status", [503, 502, 429])
def test_transient_http_errors_while_polling_are_retried(warehouse, apply, status):
    warehouse.http_errors[("GET", "/api/2.0/sql/statements/stmt-3")] = [status, status]
    warehouse.http_errors[("POST", "/api/2.0/sql/statements")] = [status]
    done = apply("--warehouse-id", "wh-123")
    _ok(done)
    assert len(warehouse.catalog.masks) == 7


def test_failure_in_its_own_process_is_one_message_exit_1(warehouse, apply):
    compiled = _compiled()
    st = next(s for s in compiled.apply if s.kind == "grant")
    warehouse.fail = [(lambda sql: sql == st.sql, False)]
    done = apply("--warehouse-id", "wh-123", subprocess_=True)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert f"({st.kind} {st.about}) failed: [BAD_REQUEST]" in done.stderr
    assert "every protection in place stays" in done.stderr


# ------------------------------------------------------------------------------------------------ dry run
def test_dry_run_contacts_nothing(warehouse, apply):
    done = apply("--target", "databricks-abac", "--dry-run")
    _ok(done)
    assert warehouse.requests == []
    assert "nothing was contacted" in done.stdout
    for st in _compiled("databricks-abac").apply:
        assert f"{st.sql};" in done.stdout


def test_dry_run_with_a_warehouse_reads_state_only(warehouse, apply):
    _old_signature(warehouse.catalog)
    warehouse.catalog.privileges.add(("CATALOG", "main", warehouse.me, "ALL PRIVILEGES"))
    done = apply("--dry-run", "--warehouse-id", "wh-123", "--format", "json")
    _ok(done)
    assert warehouse.statements and all(s.startswith("SELECT") for s in warehouse.statements)
    report = json.loads(done.stdout)
    assert report["changed_signatures"] == ["main.governance.mask_patients_age"]
    assert any(s["about"].startswith("main.bronze.patients") for s in report["skipped"])


def test_dry_run_checks_the_applying_principals_privileges(warehouse, apply):
    """Through the effective-permissions API: all privileges on the catalog pass; without MANAGE on a governed table
    (and not its owner) the dry run exits 1 naming it; ownership stands in for MANAGE."""
    cat, me = warehouse.catalog, warehouse.me
    cat.privileges.add(("CATALOG", "main", me, "ALL PRIVILEGES"))
    done = apply("--dry-run", "--warehouse-id", "wh-123", "--format", "json")
    _ok(done)
    report = json.loads(done.stdout)
    assert not [p for p in report["privileges"] if p["missing"]]
    assert {"securable_type": "table", "name": "main.bronze.patients", "missing": [],
            "note": "does not exist yet (statements on it wait until it does)"} in report["privileges"]
    assert all(s.startswith("SELECT") for s in warehouse.statements)  # nothing changed
    cat.privileges = {("CATALOG", "main", me, p) for p in ("USE CATALOG", "USE SCHEMA", "APPLY TAG", "MODIFY",
                                                            "CREATE FUNCTION")}
    cat.owners[("main", "gold", "claims")] = me
    done = apply("--dry-run", "--warehouse-id", "wh-123")
    assert done.returncode == 1
    assert "table main.silver.patients: missing MANAGE" in done.stderr
    assert "main.gold.claims: missing" not in done.stderr  # its owner
    assert "schema main.silver: missing MANAGE" in done.stderr  # the grants on it... and nothing else
    assert "APPLY_TAG" not in done.stderr and "CREATE_FUNCTION" not in done.stderr


def test_unknown_warehouse_is_a_clean_refusal(warehouse, apply):
    done = apply("--warehouse-id", "nope")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert warehouse.modifying() == []


def test_missing_warehouse_id_is_usage(apply):
    done = apply()
    assert done.returncode == 2 and "--warehouse-id" in done.stderr


def test_failed_rollback_says_so_and_a_second_one_finishes(warehouse, apply):
    _ok(apply("--target", "databricks-abac", "--warehouse-id", "wh-123"))
    st = next(s for s in _compiled("databricks-abac").rollback if s.kind == "drop_policy")
    warehouse.fail = [(lambda sql: sql == st.sql, True)]
    done = apply("--target", "databricks-abac", "--warehouse-id", "wh-123", "--rollback")
    assert done.returncode == 1 and "rollback statement" in done.stderr and "run --rollback again" in done.stderr
    _ok(apply("--target", "databricks-abac", "--warehouse-id", "wh-123", "--rollback"))
    assert not warehouse.catalog.policies and not [f for f in warehouse.catalog.functions if f[1] == "governance"]


def test_switching_to_abac_keeps_table_masks_and_warns(warehouse, apply):
    """Table-level masks from the databricks target stay (they protect) when the ABAC target is applied over them,
    and the run says they would clash with the policies."""
    _ok(apply("--warehouse-id", "wh-123"))
    masks = dict(warehouse.catalog.masks)
    done = apply("--target", "databricks-abac", "--warehouse-id", "wh-123")
    _ok(done)
    assert "warning: main.silver.patients.ssn has a table-level mask beside the ABAC policy" in done.stderr
    assert warehouse.catalog.masks == masks and warehouse.catalog.policies
