"""The one verification of an audit trail, run by ``lakehouse-phi audit verify`` and by the HTML report
(``lakehouse-phi report``): the same keys, the same rules, the same verdict.

* The chain and, for a keyed trail, every seal (:func:`~lakehouse_phi.audit.chain.verify`). The key comes from the
  policy (``--policy``: its ``audit.key``, every version) or from ``--key NAME[@VERSION]=PROVIDER:REF``; both are
  equally strict: the trail must be sealed under the key named (every event after the first sealed one; events
  written before the key was introduced may precede it unsealed), and an **empty** trail is not intact (a trail a
  key seals holds at least its sealed events; removing all of them is the extreme truncation).
* A Delta trail's own history: the trail is append-only, so a ``RESTORE`` (which ``delta.appendOnly`` does not
  stop), ``DELETE``, ``UPDATE``, an overwrite, a ``MERGE`` that changed or removed rows, or turning
  ``delta.appendOnly`` off is tampering, even when the chain that is left is intact (a restore is a cut tail).
* ``--against BRONZE``: the bronze anchor and every commit of bronze and its quarantine, bound to its run by version
  and operation (:mod:`lakehouse_phi.audit.anchor`).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lakehouse_phi.audit.anchor import AgainstResult, check_against
from lakehouse_phi.audit.chain import SealKeys, VerifyResult
from lakehouse_phi.errors import EXIT_OK, EXIT_REFUSED, EXIT_USAGE
from lakehouse_phi.policy.model import DEFAULT_AUDIT_RETENTION_DAYS

if TYPE_CHECKING:
    from lakehouse_phi.policy.load import LoadedPolicy

#: Delta operations an audit trail's history may hold (appends, creation, maintenance)
TRAIL_OPERATIONS = frozenset({"WRITE", "CREATE TABLE", "CREATE TABLE AS SELECT", "MERGE", "STREAMING UPDATE",
                              "SET TBLPROPERTIES", "OPTIMIZE", "VACUUM START", "VACUUM END"})
_CHANGED_ROWS = ("num_target_rows_updated", "num_target_rows_deleted", "numTargetRowsUpdated",
                 "numTargetRowsDeleted", "num_deleted_rows", "numDeletedRows")


@dataclass
class AuditVerdict:
    """Everything ``audit verify`` found. ``code``: 0 intact, 1 tampered (or truncated, or against a bronze that
    says otherwise), 2 a keyed trail checked without its key."""

    trail: str
    result: VerifyResult
    problems: list[str] = field(default_factory=list)
    against: AgainstResult | None = None
    #: a Delta trail's retention check (None for a JSON-lines trail or a table name): the days it must keep its
    #: history, and what in its table properties keeps it less (also in ``problems``)
    retention: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.code == EXIT_OK

    @property
    def tampered(self) -> bool:
        return self.result.first_bad is not None or bool(self.problems) or (
            self.against is not None and not self.against.ok)

    @property
    def code(self) -> int:
        return EXIT_REFUSED if self.tampered else EXIT_USAGE if self.result.missing_key else EXIT_OK

    @property
    def reason(self) -> str:
        """One line: the first problem, or ``intact``."""
        if self.result.first_bad is not None or self.result.missing_key:
            return self.result.reason
        if self.problems:
            return self.problems[0]
        if self.against is not None and not self.against.ok:
            return f"--against {self.against.bronze}: {self.against.problems[0]}"
        return "intact"

    def to_dict(self) -> dict:
        out: dict[str, Any] = {"audit": self.trail, **self.result.to_dict(), "problems": list(self.problems)}
        if self.against is not None:
            out["against"] = self.against.to_dict()
        if self.retention is not None:
            out["retention"] = self.retention
        out["ok"] = self.ok
        return out


def policy_seal_keys(loaded: LoadedPolicy, fetchers: Any = None,
                     key_specs: Mapping[str, Any] | None = None) -> tuple[SealKeys, list[str]]:
    """Every version of the policy's ``audit.key`` (KeyMaterialError naming it when missing or weak) and the key
    name the trail must be sealed under; nothing for a policy without ``audit.key``. ``key_specs``: a run's
    overrides (``--key``), as ingest resolved them."""
    from lakehouse_phi.audit.sealing import ring_seal_keys
    from lakehouse_phi.keys.providers import load_keys

    name = loaded.policy.audit_key
    if name is None:
        return {}, []
    ring = load_keys({**loaded.policy.keys, **(key_specs or {})}, [(name, "hmac")], fetchers, with_previous=True)
    return ring_seal_keys(ring, [name]), [name]


def arg_seal_keys(items: list[str], fetchers: Any = None) -> tuple[SealKeys, list[str]]:
    """``--key NAME[@VERSION]=PROVIDER:REF`` items and the key names the trail must be sealed under."""
    from lakehouse_phi.audit.sealing import parse_key_args

    keys = parse_key_args(items, fetchers)
    names = sorted({item.partition("=")[0].partition("@")[0] for item in items})
    return keys, names


def trail_history_problems(trail: str) -> list[str]:
    """What a Delta trail's own history holds besides appends (empty for a ``.jsonl`` trail or one delta-rs cannot
    read: a table name verified through Spark)."""
    from lakehouse_phi.storage.targets import is_jsonl

    if is_jsonl(trail):
        return []
    try:
        from lakehouse_phi.storage.delta import DeltaRsTable

        history = sorted(DeltaRsTable(trail).history(), key=lambda c: c.get("version", 0))
    except Exception:  # noqa: BLE001 - not a delta-rs path (a table name); the chain check still ran
        return []
    problems = []
    for commit in history:
        version, op = commit.get("version"), str(commit.get("operation", "?"))
        params = commit.get("operationParameters") or {}
        metrics = commit.get("operationMetrics") or {}
        why = None
        if op == "RESTORE":
            why = (f"rolled back to version {params.get('version', params.get('timestamp', '?'))}: events after it "
                   "are gone (delta.appendOnly does not stop a RESTORE)")
        elif op not in TRAIL_OPERATIONS:
            why = "an append-only trail is only ever appended to"
        elif op == "WRITE" and str(params.get("mode", "Append")).lower() not in ("append", "errorifexists"):
            why = f"written with mode {params.get('mode')}: events were replaced"
        elif op == "MERGE" and any(_positive(metrics.get(k)) for k in _CHANGED_ROWS):
            why = "a MERGE that updated or deleted events"
        elif op == "SET TBLPROPERTIES" and _disables_append_only(params.get("properties")):
            why = "turned delta.appendOnly off"
        if why:
            problems.append(f"trail history: version {version} ({op}) {why}")
    return problems


def _positive(value: Any) -> bool:
    try:
        return int(value) > 0
    except (TypeError, ValueError):
        return False


def _disables_append_only(properties: Any) -> bool:
    if isinstance(properties, str):
        try:
            properties = json.loads(properties)
        except ValueError:
            return "appendonly" in properties.lower()
    if not isinstance(properties, Mapping):
        return False
    value = properties.get("delta.appendOnly")
    return value is not None and str(value).strip().lower() != "true"


def verify_audit(trail: str, keys: SealKeys | None = None, expect: Collection[str] = (), *,
                 against: str | None = None, quarantine: str | None = None, spark: Any = None,
                 retention_days: int = DEFAULT_AUDIT_RETENTION_DAYS) -> AuditVerdict:
    """Verify ``trail`` (see the module docstring); a Delta trail must also be append-only and keep its log and
    removed files ``retention_days`` (``audit.retention_days``).

    Raises:
        UsageError: the trail (or the bronze / quarantine table of ``against``) is missing or unreadable.
    """
    from lakehouse_phi.audit.sinks import delta_trail_properties, read_trail, retention_problems, verify_trail

    expect_key = list(expect)
    result = verify_trail(trail, spark, keys=keys, expect_key=expect_key or None)
    verdict = AuditVerdict(str(trail), result)
    if result.first_bad is None and result.events == 0 and expect_key:
        verdict.problems.append(f"empty trail: it is sealed under key '{'/'.join(expect_key)}', so it must hold "
                                "that key's sealed events; all of them were removed, or this is not the trail")
    verdict.problems += trail_history_problems(str(trail))
    props = delta_trail_properties(str(trail))
    if props is not None:
        short = retention_problems(props, retention_days)
        verdict.retention = {"ok": not short, "required_days": retention_days, "problems": short}
        verdict.problems += [f"retention: {p}" for p in short]
    if against:
        events = read_trail(trail, spark) if result.first_bad is None else []
        verdict.against = check_against(against, events, quarantine)
    return verdict
