"""A loopback stand-in for a Databricks SQL warehouse that keeps Unity Catalog state across statements and runs.

A real ``http.server`` on 127.0.0.1 (port 0) implements the Statement Execution API the databricks-sdk client calls
(``POST /api/2.0/sql/statements``, ``GET /api/2.0/sql/statements/{id}``, ``POST …/{id}/cancel``) and the SDK's host
metadata discovery. Behind it, :class:`Catalog` models what governance statements change, with the documented
errors where the grammar has them:

* functions and their signatures (``CREATE OR REPLACE FUNCTION`` cannot change a signature; ``DROP FUNCTION`` of a
  function a mask, filter, policy or view still uses is refused, so a plan must unbind first);
* one mask per column, one row filter per table (``SET`` replaces in place, ``DROP`` of none is a no-op), on tables
  that exist;
* ABAC policies per schema (``DROP POLICY`` of a missing one raises ``POLICY_NOT_FOUND``: there is no IF EXISTS);
* governed tags with allowed values (``CREATE GOVERNED TAG`` of an existing key raises ``ALREADY_EXISTS``; a value
  outside the allowed ones is refused), tags and comments on existing tables;
* privileges on catalogs, schemas, tables and views (granting on a missing securable fails);
* ``information_schema`` queries (``parameters``, ``column_masks``, ``row_filters``, ``abac_policy_definitions``,
  ``tables``, ``*_privileges``) answered from that state, the selected columns projected by name.

A test can fail any statement (``fail``: a predicate on the SQL, once or always), keep one RUNNING forever
(``hang``), answer HTTP errors to chosen requests (``http_errors``), and read ``history``: the protections after
every statement (which column had which mask, which table which filter, which policies), to assert that a column
that had a mask never lost it.
"""

from __future__ import annotations

import copy
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

Q = r"`(?:[^`]|``)+`"
NAME = rf"{Q}(?:\.{Q})*"
STR = r"'(?:[^'\\]|\\.)*'"


def parts(text: str) -> tuple[str, ...]:
    return tuple(p[1:-1].replace("``", "`").lower() for p in re.findall(Q, text))


def strings(text: str) -> list[str]:
    return [s[1:-1].replace("\\'", "'").replace("\\\\", "\\") for s in re.findall(STR, text)]


class SqlError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass
class Catalog:
    """Unity Catalog state: everything lower case, names as tuples of parts."""

    tables: dict[tuple[str, ...], set[str]] = field(default_factory=dict)  # table -> its columns
    schemas: set[tuple[str, ...]] = field(default_factory=set)
    functions: dict[tuple[str, ...], tuple[tuple[str, str], ...]] = field(default_factory=dict)
    masks: dict[tuple[str, ...], tuple[str, ...]] = field(default_factory=dict)  # (cat, sch, tbl, col) -> fn
    filters: dict[tuple[str, ...], tuple[str, ...]] = field(default_factory=dict)  # (cat, sch, tbl) -> fn
    policies: dict[tuple[str, ...], tuple[str, ...]] = field(default_factory=dict)  # (cat, sch, name) -> fn
    views: dict[tuple[str, ...], set[tuple[str, ...]]] = field(default_factory=dict)  # view -> functions it calls
    governed_tags: dict[str, set[str]] = field(default_factory=dict)
    tags: dict[tuple[str, ...], dict[str, str]] = field(default_factory=dict)
    comments: dict[tuple[str, ...], str] = field(default_factory=dict)
    privileges: set[tuple[str, ...]] = field(default_factory=set)  # (securable, *name, principal, privilege)
    owners: dict[tuple[str, ...], str] = field(default_factory=dict)  # securable name -> owner

    def effective(self, kind: str, name: str, principal: str) -> list[str] | None:
        """Privileges of ``principal`` on the securable and inherited from its parents; None when it is missing."""
        key = tuple(p.lower() for p in name.split("."))
        exists = {"catalog": True, "schema": key in self.schemas, "table": key in self.tables or key in self.views}
        if not exists.get(kind, False):
            return None
        who = principal.lower()
        held = set()
        for depth, securable in ((1, "CATALOG"), (2, "SCHEMA"), (3, "TABLE")):
            if depth <= len(key):
                held |= {p[-1] for p in self.privileges
                         if p[0] == securable and p[1:-2] == key[:depth] and p[-2] == who}
        return sorted(h.replace(" ", "_") for h in held)

    def add_table(self, name: str, columns: list[str]) -> None:
        key = tuple(p.lower() for p in name.split("."))
        self.tables[key] = {c.lower() for c in columns}
        self.schemas.add(key[:2])

    def protections(self) -> dict[str, Any]:
        return {"masks": dict(self.masks), "filters": dict(self.filters), "policies": dict(self.policies),
                "views": {k: set(v) for k, v in self.views.items()}}

    # ------------------------------------------------------------------------------------------------ execute
    def execute(self, sql: str) -> list[list[Any]]:
        s = sql.strip()
        if s.startswith("SELECT"):
            return self.select(s)
        for pattern, handler in self.HANDLERS:
            m = re.fullmatch(pattern, s, re.S)
            if m:
                handler(self, m)
                return []
        raise SqlError("PARSE_SYNTAX_ERROR", f"[PARSE_SYNTAX_ERROR] the stand-in does not know: {s[:80]}")

    def _table(self, text: str) -> tuple[str, ...]:
        key = parts(text)
        if key not in self.tables and key not in self.views:
            raise SqlError("TABLE_OR_VIEW_NOT_FOUND", f"[TABLE_OR_VIEW_NOT_FOUND] {'.'.join(key)} does not exist")
        return key

    def _function(self, text: str) -> tuple[str, ...]:
        key = parts(text)
        if key not in self.functions:
            raise SqlError("ROUTINE_NOT_FOUND", f"[ROUTINE_NOT_FOUND] {'.'.join(key)} does not exist")
        return key

    def create_schema(self, m: re.Match[str]) -> None:
        self.schemas.add(parts(m.group(1)))

    def create_function(self, m: re.Match[str]) -> None:
        key = parts(m.group(1))
        params = tuple((p[0].lower(), "".join(p[1].split()).upper())
                       for p in re.findall(rf"({Q}) ([A-Za-z]+(?:\([0-9, ]+\)|<[A-Za-z,]+>)?)", m.group(2)))
        params = tuple((n[1:-1].lower(), t) for n, t in params)
        if key[:2] not in self.schemas:
            raise SqlError("SCHEMA_NOT_FOUND", f"[SCHEMA_NOT_FOUND] {'.'.join(key[:2])} does not exist")
        if key in self.functions and self.functions[key] != params:
            raise SqlError("ROUTINE_ALREADY_EXISTS", "[ROUTINE_ALREADY_EXISTS] cannot replace a function with a "
                                                     "different signature")
        self.functions[key] = params

    def drop_function(self, m: re.Match[str]) -> None:
        key = parts(m.group(1))
        users = [*self.masks.values(), *self.filters.values(), *self.policies.values(),
                 *(f for fs in self.views.values() for f in fs)]
        if key in users:
            raise SqlError("FUNCTION_IN_USE", f"[FUNCTION_IN_USE] {'.'.join(key)} is still bound")
        self.functions.pop(key, None)

    def set_mask(self, m: re.Match[str]) -> None:
        table = self._table(m.group(1))
        fn = self._function(m.group(3))
        col = parts(m.group(2))[0]
        if col not in self.tables.get(table, set()):
            raise SqlError("UNRESOLVED_COLUMN", f"[UNRESOLVED_COLUMN] {col}")
        self.masks[(*table, col)] = fn

    def drop_mask(self, m: re.Match[str]) -> None:
        table = self._table(m.group(1))
        self.masks.pop((*table, parts(m.group(2))[0]), None)

    def set_filter(self, m: re.Match[str]) -> None:
        table = self._table(m.group(1))
        self.filters[table] = self._function(m.group(2))

    def drop_filter(self, m: re.Match[str]) -> None:
        self.filters.pop(self._table(m.group(1)), None)

    def create_policy(self, m: re.Match[str]) -> None:
        schema = parts(m.group(2))
        if schema not in self.schemas:
            raise SqlError("SCHEMA_NOT_FOUND", f"[SCHEMA_NOT_FOUND] {'.'.join(schema)}")
        self.policies[(*schema, parts(m.group(1))[0])] = self._function(m.group(3))

    def drop_policy(self, m: re.Match[str]) -> None:
        key = (*parts(m.group(2)), parts(m.group(1))[0])
        if key not in self.policies:
            raise SqlError("POLICY_NOT_FOUND", f"[POLICY_NOT_FOUND] {key[-1]} does not exist on the schema")
        del self.policies[key]

    def create_governed_tag(self, m: re.Match[str]) -> None:
        key = parts(m.group(1))[0]
        if key in self.governed_tags:
            raise SqlError("ALREADY_EXISTS", f"[ALREADY_EXISTS] governed tag {key} already exists")
        self.governed_tags[key] = set(strings(m.group(2)))

    def alter_governed_tag(self, m: re.Match[str]) -> None:
        key = parts(m.group(1))[0]
        if key not in self.governed_tags:
            raise SqlError("NOT_FOUND", f"[NOT_FOUND] governed tag {key}")
        self.governed_tags[key] = set(strings(m.group(2)))

    def set_tags(self, m: re.Match[str]) -> None:
        table = self._table(m.group(1))
        target = (*table, parts(m.group(2))[0]) if m.group(2) else table
        values = strings(m.group(3))
        for k, v in zip(values[::2], values[1::2]):
            allowed = self.governed_tags.get(k)
            if allowed is not None and v not in allowed:
                raise SqlError("INVALID_PARAMETER_VALUE", f"[INVALID_PARAMETER_VALUE] {v!r} is not an allowed "
                                                          f"value of governed tag {k}")
            self.tags.setdefault(target, {})[k] = v

    def unset_tags(self, m: re.Match[str]) -> None:
        table = self._table(m.group(1))
        target = (*table, parts(m.group(2))[0]) if m.group(2) else table
        for k in strings(m.group(3)):
            self.tags.get(target, {}).pop(k, None)

    def comment(self, m: re.Match[str]) -> None:
        key = parts(m.group(1))
        self._table(".".join(f"`{p}`" for p in key[:-1]))
        if m.group(2) == "NULL":
            self.comments.pop(key, None)
        else:
            self.comments[key] = strings(m.group(2))[0]

    def _securable(self, kind: str, text: str) -> tuple[str, ...]:
        key = parts(text)
        if kind in ("TABLE", "VIEW"):
            self._table(text)
        elif kind == "SCHEMA" and key not in self.schemas:
            raise SqlError("SCHEMA_NOT_FOUND", f"[SCHEMA_NOT_FOUND] {'.'.join(key)}")
        return key

    def grant(self, m: re.Match[str]) -> None:
        kind = "TABLE" if m.group(2) == "VIEW" else m.group(2)
        key = self._securable(m.group(2), m.group(3))
        who = parts(m.group(4))[0]
        for priv in (p.strip() for p in m.group(1).split(",")):
            self.privileges.add((kind, *key, who, priv))

    def revoke(self, m: re.Match[str]) -> None:
        kind = "TABLE" if m.group(2) == "VIEW" else m.group(2)
        key = self._securable(m.group(2), m.group(3))
        who = parts(m.group(4))[0]
        for priv in (p.strip() for p in m.group(1).split(",")):
            self.privileges.discard((kind, *key, who, priv))

    def create_view(self, m: re.Match[str]) -> None:
        key = parts(m.group(1))
        called = {parts(f) for f in re.findall(rf"({NAME})\(", m.group(2))}
        for f in called:
            self._function(".".join(f"`{p}`" for p in f))
        self.views[key] = called

    def drop_view(self, m: re.Match[str]) -> None:
        self.views.pop(parts(m.group(1)), None)

    ALTER: ClassVar[str] = r"ALTER (?:TABLE|MATERIALIZED VIEW|STREAMING TABLE) "
    HANDLERS: ClassVar[list[tuple[str, Callable[[Catalog, re.Match[str]], None]]]] = [
        (rf"CREATE SCHEMA IF NOT EXISTS ({NAME})", create_schema),
        (rf"CREATE OR REPLACE FUNCTION ({NAME})\((.*?)\)\s+RETURNS .*", create_function),
        (rf"DROP FUNCTION IF EXISTS ({NAME})", drop_function),
        (rf"{ALTER}({NAME}) ALTER COLUMN ({Q}) SET MASK ({NAME})(?: USING COLUMNS \(.*\))?", set_mask),
        (rf"{ALTER}({NAME}) ALTER COLUMN ({Q}) DROP MASK", drop_mask),
        (rf"{ALTER}({NAME}) SET ROW FILTER ({NAME}) ON \(.*\)", set_filter),
        (rf"{ALTER}({NAME}) DROP ROW FILTER", drop_filter),
        (rf"CREATE OR REPLACE POLICY ({Q}) ON SCHEMA ({NAME})\s+COMMENT {STR}\s+"
         rf"(?:COLUMN MASK|ROW FILTER) ({NAME})\s.*", create_policy),
        (rf"DROP POLICY ({Q}) ON SCHEMA ({NAME})", drop_policy),
        (rf"CREATE GOVERNED TAG ({Q}) DESCRIPTION {STR} VALUES \((.*)\)", create_governed_tag),
        (rf"ALTER GOVERNED TAG ({Q}) SET VALUES \((.*)\)", alter_governed_tag),
        (rf"{ALTER}({NAME})(?: ALTER COLUMN ({Q}))? SET TAGS \((.*)\)", set_tags),
        (rf"{ALTER}({NAME})(?: ALTER COLUMN ({Q}))? UNSET TAGS \((.*)\)", unset_tags),
        (rf"COMMENT ON COLUMN ({NAME}) IS ({STR}|NULL)", comment),
        (rf"GRANT (.+?) ON (CATALOG|SCHEMA|TABLE|VIEW) ({NAME}) TO ({Q})", grant),
        (rf"REVOKE (.+?) ON (CATALOG|SCHEMA|TABLE|VIEW) ({NAME}) FROM ({Q})", revoke),
        (rf"CREATE OR REPLACE VIEW ({NAME}) AS\s(.*)", create_view),
        (rf"DROP VIEW IF EXISTS ({NAME})", drop_view),
    ]

    # ------------------------------------------------------------------------------------ information_schema
    def select(self, sql: str) -> list[list[Any]]:
        m = re.match(r"SELECT (.+?) FROM (?:`([^`]+)`\.)?information_schema\.([a-z_]+)", sql, re.S)
        if m is None:
            raise SqlError("TABLE_OR_VIEW_NOT_FOUND", "[TABLE_OR_VIEW_NOT_FOUND] only information_schema is modelled")
        cols = [c.strip() for c in m.group(1).split(",")]
        cat = (m.group(2) or "main").lower()
        rows = [r for r in self.info(m.group(3)) if r.get("_catalog", cat) == cat]
        return [[r.get(c) for c in cols] for r in rows]

    def info(self, view: str) -> list[dict[str, Any]]:
        if view == "parameters":
            return [{"_catalog": f[0], "specific_schema": f[1], "specific_name": f[2], "ordinal_position": i + 1,
                     "parameter_name": p, "full_data_type": t}
                    for f, params in sorted(self.functions.items()) for i, (p, t) in enumerate(params)]
        if view == "column_masks":
            return [{"_catalog": k[0], "schema_name": k[1], "table_name": k[2], "column_name": k[3],
                     "mask_catalog": f[0], "mask_schema": f[1], "mask_name": f[2]} for k, f in self.masks.items()]
        if view == "row_filters":
            return [{"_catalog": k[0], "schema_name": k[1], "table_name": k[2], "filter_catalog": f[0],
                     "filter_schema": f[1], "filter_name": f[2]} for k, f in self.filters.items()]
        if view == "abac_policy_definitions":
            return [{"_catalog": k[0], "schema_name": k[1], "policy_name": k[2]} for k in self.policies]
        if view == "tables":
            return [{"_catalog": k[0], "table_schema": k[1], "table_name": k[2]} for k in [*self.tables, *self.views]]
        if view == "table_privileges":
            return [{"_catalog": p[1], "grantee": p[4], "table_schema": p[2], "table_name": p[3],
                     "privilege_type": p[5]} for p in self.privileges if p[0] == "TABLE"]
        if view == "schema_privileges":
            return [{"_catalog": p[1], "grantee": p[3], "schema_name": p[2], "privilege_type": p[4]}
                    for p in self.privileges if p[0] == "SCHEMA"]
        if view == "catalog_privileges":
            return [{"_catalog": p[1], "grantee": p[2], "catalog_name": p[1], "privilege_type": p[3]}
                    for p in self.privileges if p[0] == "CATALOG"]
        raise SqlError("TABLE_OR_VIEW_NOT_FOUND", f"[TABLE_OR_VIEW_NOT_FOUND] information_schema.{view}")


class Warehouse:
    """The HTTP side: what the client sent, and the behaviours a test chooses."""

    def __init__(self, catalog: Catalog | None = None) -> None:
        self.catalog = catalog or Catalog()
        self.statements: list[str] = []
        self.requests: list[tuple[str, str]] = []
        self.auth: set[str] = set()
        #: (sql predicate, once): the first statement it matches FAILS (then, if once, it is forgotten)
        self.fail: list[tuple[Callable[[str], bool], bool]] = []
        #: a predicate: matching statements stay RUNNING until cancelled
        self.hang: Callable[[str], bool] | None = None
        #: statement ids whose first GET answers PENDING (every 3rd statement)
        self.pending: dict[str, dict] = {}
        #: (method, path prefix) -> list of HTTP status codes answered first, in order, before the real answer
        self.http_errors: dict[tuple[str, str], list[int]] = {}
        self.cancelled: list[str] = []
        self.running: dict[str, str] = {}
        #: the caller, as the SCIM ``Me`` endpoint names it
        self.me = "admin@example.org"
        #: after each executed non-SELECT statement: (sql, protections)
        self.history: list[tuple[str, dict[str, Any]]] = []
        self.lock = threading.Lock()
        self.url = ""

    def modifying(self) -> list[str]:
        return [s for s in self.statements if not s.startswith("SELECT")]

    def answer(self, sql: str) -> dict:
        with self.lock:
            self.statements.append(sql)
            sid = f"stmt-{len(self.statements)}"
            for i, (pred, once) in enumerate(self.fail):
                if pred(sql):
                    if once:
                        del self.fail[i]
                    return {"statement_id": sid, "status": {"state": "FAILED", "error": {
                        "error_code": "BAD_REQUEST", "message": "[INSUFFICIENT_PERMISSIONS] Insufficient privileges: "
                                                                "chosen failure\nsecond line never shown"}}}
            if self.hang is not None and self.hang(sql):
                self.running[sid] = sql
                return {"statement_id": sid, "status": {"state": "RUNNING"}}
            try:
                rows = self.catalog.execute(sql)
            except SqlError as exc:
                return {"statement_id": sid, "status": {"state": "FAILED", "error": {
                    "error_code": "BAD_REQUEST", "message": exc.message}}}
            if not sql.startswith("SELECT"):
                self.history.append((sql, copy.deepcopy(self.catalog.protections())))
            done: dict[str, Any] = {"statement_id": sid, "status": {"state": "SUCCEEDED"}}
            if sql.startswith("SELECT"):
                done["manifest"] = {"schema": {"column_count": len(rows[0]) if rows else 0}}
                done["result"] = {"data_array": [[None if v is None else str(v) for v in r] for r in rows],
                                  "row_count": len(rows)}
            if len(self.statements) % 3 == 0:  # still running when the POST returns: the client must poll
                self.pending[sid] = done
                return {"statement_id": sid, "status": {"state": "PENDING"}}
            return done

    def http_error(self, method: str, path: str) -> int | None:
        with self.lock:
            for (m, prefix), codes in self.http_errors.items():
                if m == method and path.startswith(prefix) and codes:
                    return codes.pop(0)
        return None


def serve(warehouse: Warehouse, warehouse_id: str = "wh-123") -> ThreadingHTTPServer:
    """Start the loopback server for ``warehouse`` (sets ``warehouse.url``); call ``shutdown()`` when done."""
    state = warehouse

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def _send(self, code: int, doc: dict) -> None:
            body = json.dumps(doc).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            state.requests.append(("POST", self.path))
            state.auth.add(self.headers.get("Authorization", ""))
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            code = state.http_error("POST", self.path)
            if code is not None:
                return self._send(code, {"error_code": "TEMPORARILY_UNAVAILABLE", "message": "try again"})
            if self.path.endswith("/cancel"):
                sid = self.path.split("/")[-2]
                state.cancelled.append(sid)
                state.running.pop(sid, None)
                return self._send(200, {})
            if self.path != "/api/2.0/sql/statements" or body.get("warehouse_id") != warehouse_id:
                return self._send(404, {"error_code": "NOT_FOUND", "message": "no such endpoint or warehouse"})
            self._send(200, state.answer(body["statement"]))

        def do_GET(self) -> None:
            state.requests.append(("GET", self.path))
            if self.path == "/.well-known/databricks-config":  # the SDK's host-metadata discovery, as a workspace
                return self._send(200, {"oidc_endpoint": f"{state.url}/oidc", "workspace_id": "1234567890"})
            code = state.http_error("GET", self.path)
            if code is not None:
                return self._send(code, {"error_code": "TEMPORARILY_UNAVAILABLE", "message": "try again"})
            path, _, query = self.path.partition("?")
            if path == "/api/2.0/preview/scim/v2/Me":
                return self._send(200, {"userName": state.me, "id": "1"})
            uc = "/api/2.1/unity-catalog/"
            if path.startswith(uc + "effective-permissions/"):
                kind, name = path[len(uc + "effective-permissions/"):].split("/", 1)
                who = dict(q.split("=", 1) for q in query.split("&") if "=" in q).get("principal", state.me)
                held = state.catalog.effective(kind.lower(), name, who.replace("%40", "@"))
                if held is None:
                    return self._send(404, {"error_code": "NOT_FOUND", "message": f"{name} does not exist"})
                return self._send(200, {"privilege_assignments": [
                    {"principal": who, "privileges": [{"privilege": p} for p in held]}]})
            for kind in ("tables", "schemas", "catalogs"):
                if path.startswith(f"{uc}{kind}/"):
                    name = path[len(f"{uc}{kind}/"):]
                    return self._send(200, {"full_name": name, "owner": state.catalog.owners.get(
                        tuple(p.lower() for p in name.split(".")), "someone-else")})
            sid = self.path.rsplit("/", 1)[-1]
            if self.path.startswith("/api/2.0/sql/statements/"):
                if sid in state.pending:
                    return self._send(200, state.pending.pop(sid))
                if sid in state.running:
                    return self._send(200, {"statement_id": sid, "status": {"state": "RUNNING"}})
                if sid in state.cancelled:
                    return self._send(200, {"statement_id": sid, "status": {"state": "CANCELED"}})
            self._send(404, {"error_code": "NOT_FOUND", "message": "unknown"})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    warehouse.url = f"http://127.0.0.1:{server.server_address[1]}"
    return server


#: the example policy's governed tables and their columns (what a workspace would hold before apply)
EXAMPLE_TABLES = {
    "main.silver.patients": ["mrn", "ssn", "phone", "dob", "age", "state", "_key_versions"],
    "main.silver.encounters": ["encounter_id", "note", "facility_state", "length_of_stay"],
    "main.gold.claims": ["claim_id", "account_number", "amount", "payer"],
}
#: what ingest creates (bronze, quarantine, audit trail)
BRONZE_TABLES = {
    "main.bronze.patients": ["mrn", "ssn", "ssn_token", "last_name", "dob", "age", "state", "zip", "phone"],
    "main.bronze.patients_quarantine": ["_phi_errors"],
    "main.bronze.encounters": [], "main.bronze.encounters_quarantine": ["_phi_errors"],
    "main.bronze.claims": [], "main.bronze.claims_quarantine": ["_phi_errors"],
    "main.bronze.lakehouse_phi_audit": ["event_id"],
}


def example_catalog(with_bronze: bool = False) -> Catalog:
    cat = Catalog()
    for name, cols in EXAMPLE_TABLES.items():
        cat.add_table(name, cols)
    if with_bronze:
        for name, cols in BRONZE_TABLES.items():
            cat.add_table(name, cols)
    return cat
