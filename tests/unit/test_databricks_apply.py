"""``lakehouse-phi apply`` with the real databricks-sdk client against a loopback Statement Execution API.

A small ``http.server`` on 127.0.0.1 (port 0) implements ``POST /api/2.0/sql/statements`` and
``GET /api/2.0/sql/statements/{id}``: it records every statement, answers SUCCEEDED (some first PENDING, so the
client must poll), FAILED for a chosen statement, and rows for the signature query. The CLI runs in a subprocess with
unified-auth environment variables only (``DATABRICKS_HOST``, ``DATABRICKS_TOKEN``), as a job would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

pytest.importorskip("databricks.sdk")

from lakehouse_phi.databricks.apply import make_plan, signature_query
from lakehouse_phi.policy import load_policy
from lakehouse_phi.sql import compile_policy
from tests.helpers import run_cli

ROOT = Path(__file__).resolve().parents[2]
POLICY = ROOT / "conf" / "policy.yaml"
TOKEN = "dapi-loopback-test-token"


class Warehouse:
    """The fake warehouse's behaviour and what it saw."""

    def __init__(self) -> None:
        self.statements: list[str] = []
        self.requests: list[tuple[str, str]] = []
        self.fail_on: str | None = None
        self.signature_rows: list[list[str]] = []
        self.pending: dict[str, dict] = {}
        self.auth: set[str] = set()
        self.lock = threading.Lock()

    def answer(self, sql: str) -> dict:
        with self.lock:
            self.statements.append(sql)
            sid = f"stmt-{len(self.statements)}"
        if self.fail_on is not None and sql == self.fail_on:
            return {"statement_id": sid, "status": {"state": "FAILED", "error": {
                "error_code": "BAD_REQUEST", "message": "[INSUFFICIENT_PERMISSIONS] Insufficient privileges: User does "
                                                        "not have MANAGE on Table 'main.silver.patients'.\n"
                                                        "second line never shown"}}}
        if sql.startswith("SELECT specific_name"):
            return {"statement_id": sid, "status": {"state": "SUCCEEDED"},
                    "manifest": {"schema": {"column_count": 4}},
                    "result": {"data_array": self.signature_rows, "row_count": len(self.signature_rows)}}
        done = {"statement_id": sid, "status": {"state": "SUCCEEDED"}}
        if len(self.statements) == 3:  # the third statement is still running when the POST returns
            self.pending[sid] = done
            return {"statement_id": sid, "status": {"state": "PENDING"}}
        return done


@pytest.fixture()
def warehouse():
    state = Warehouse()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

        def _send(self, code: int, doc: dict) -> None:
            body = json.dumps(doc).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            state.requests.append(("POST", self.path))
            state.auth.add(self.headers.get("Authorization", ""))
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if self.path != "/api/2.0/sql/statements" or body.get("warehouse_id") != "wh-123":
                return self._send(404, {"error_code": "NOT_FOUND", "message": "no such endpoint or warehouse"})
            self._send(200, state.answer(body["statement"]))

        def do_GET(self):
            state.requests.append(("GET", self.path))
            if self.path == "/.well-known/databricks-config":  # the SDK's host-metadata discovery, as a workspace
                return self._send(200, {"oidc_endpoint": f"{state.url}/oidc", "workspace_id": "1234567890"})
            sid = self.path.rsplit("/", 1)[-1]
            if self.path.startswith("/api/2.0/sql/statements/") and sid in state.pending:
                return self._send(200, state.pending.pop(sid))
            self._send(404, {"error_code": "NOT_FOUND", "message": "unknown"})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture()
def apply(warehouse, tmp_path, monkeypatch):
    """``lakehouse-phi apply POLICY ARGS`` in this process (the SDK imported once), with unified-auth environment
    variables only; ``subprocess=True`` runs it as a job would, in its own process."""
    env = {"DATABRICKS_HOST": warehouse.url, "DATABRICKS_TOKEN": TOKEN, "HOME": str(tmp_path),
           "DATABRICKS_CONFIG_FILE": str(tmp_path / "no.databrickscfg")}

    def run(*args: str, subprocess_: bool = False) -> subprocess.CompletedProcess:
        if subprocess_:
            full = {k: v for k, v in os.environ.items() if not k.startswith(("DATABRICKS_", "ARM_", "AZURE_"))}
            return subprocess.run([sys.executable, "-m", "lakehouse_phi", "apply", str(POLICY), *args], check=False,
                                  capture_output=True, text=True, env={**full, **env, "PYTHONPATH": str(ROOT)},
                                  cwd=tmp_path, timeout=180)
        monkeypatch.setattr("lakehouse_phi.databricks.apply.POLL_SECONDS", 0.01)  # the fake answers at once
        for k in [k for k in os.environ if k.startswith("DATABRICKS_")]:
            monkeypatch.delenv(k)
        return run_cli("apply", str(POLICY), *args, env=env)

    return run


def _compiled(target: str = "databricks"):
    return compile_policy(load_policy(POLICY), target)


@pytest.mark.parametrize("target", ["databricks", "databricks-abac"])
def test_applies_every_statement_in_order_and_polls(warehouse, apply, target):
    done = apply("--target", target, "--warehouse-id", "wh-123", "--format", "json")
    assert done.returncode == 0, done.stderr
    compiled = _compiled(target)
    assert warehouse.statements[0] == signature_query(compiled.ir.function_schema,
                                                      [f.name.leaf for f in compiled.ir.functions])
    assert warehouse.statements[1:] == [s.sql for s in compiled.apply]
    assert ("GET", "/api/2.0/sql/statements/stmt-3") in warehouse.requests  # a PENDING answer was polled
    assert warehouse.auth == {f"Bearer {TOKEN}"}
    assert "Traceback" not in done.stderr and "WARNING" not in done.stderr.upper()
    report = json.loads(done.stdout)
    assert report["ok"] is True and report["statements"] == len(compiled.apply)
    assert len(report["statement_ids"]) == len(compiled.apply) + 1


def test_failure_rolls_back_in_reverse_and_exits_1_naming_the_statement(warehouse, apply):
    """In its own process, as a wheel task runs it: exit code 1, one message, no traceback."""
    compiled = _compiled()
    failing = next(i for i, s in enumerate(compiled.apply) if s.kind == "set_mask")
    warehouse.fail_on = compiled.apply[failing].sql
    done = apply("--warehouse-id", "wh-123", subprocess_=True)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    st = compiled.apply[failing]
    assert (f"statement {failing + 1}/{len(compiled.apply)} ({st.kind} {st.about}) failed: [BAD_REQUEST] "
            "[INSUFFICIENT_PERMISSIONS] Insufficient privileges: User does not have MANAGE") in done.stderr
    assert "second line never shown" not in done.stderr
    applied = compiled.apply[:failing]
    undo = [s.undo.sql for s in reversed(applied) if s.undo is not None]
    assert warehouse.statements[1:] == [s.sql for s in applied] + [st.sql] + undo
    # the functions are dropped last, after everything that uses them was unbound
    assert all(s.startswith("DROP FUNCTION") for s in undo[-10:]) and len(undo) >= 10
    assert f"rolled back the {len(undo)} statement(s)" in done.stderr


def test_changed_signature_unbinds_and_drops_before_recreating(warehouse, apply):
    compiled = _compiled()
    # the warehouse has mask_patients_age(age BIGINT) from an earlier policy; the policy now says int
    warehouse.signature_rows = [["mask_patients_age", "1", "age", "BIGINT"],
                                ["mask_patients_ssn", "1", "ssn", "STRING"]]
    done = apply("--warehouse-id", "wh-123")
    assert done.returncode == 0, done.stderr
    assert "main.governance.mask_patients_age: its signature changed" in done.stderr
    assert warehouse.statements[1:3] == [
        "ALTER TABLE `main`.`silver`.`patients` ALTER COLUMN `age` DROP MASK",
        "DROP FUNCTION IF EXISTS `main`.`governance`.`mask_patients_age`"]
    assert warehouse.statements[3:] == [s.sql for s in compiled.apply]
    plan = make_plan(compiled, {"mask_patients_age": (("age", "BIGINT"),)})
    assert plan.changed == ("main.governance.mask_patients_age",)
    abac = make_plan(_compiled("databricks-abac"), {"mask_patients_age": (("age", "BIGINT"),)})
    assert [s.sql for s in abac.prelude] == [
        "DROP POLICY `lhp_mask_patients_age` ON SCHEMA `main`.`silver`",
        "DROP FUNCTION IF EXISTS `main`.`governance`.`mask_patients_age`"]


def test_dry_run_contacts_nothing(warehouse, apply):
    done = apply("--target", "databricks-abac", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert warehouse.requests == []
    assert "nothing was contacted" in done.stdout
    for st in _compiled("databricks-abac").apply:
        assert f"{st.sql};" in done.stdout


def test_rollback_and_expected_sha(warehouse, apply):
    done = apply("--warehouse-id", "wh-123", "--expected-sha256", "0" * 64)
    assert done.returncode == 1 and "not the expected" in done.stderr and warehouse.requests == []
    sha = load_policy(POLICY).sha256
    done = apply("--warehouse-id", "wh-123", "--rollback", "--expected-sha256", sha)
    assert done.returncode == 0, done.stderr
    assert warehouse.statements == [s.sql for s in _compiled().rollback]


def test_unknown_warehouse_is_a_clean_refusal(warehouse, apply):
    done = apply("--warehouse-id", "nope")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and "nothing was applied" in done.stderr
    assert warehouse.statements == []


def test_missing_warehouse_id_is_usage(apply):
    done = apply()
    assert done.returncode == 2 and "--warehouse-id" in done.stderr
