"""What every lifecycle command shares: the targets (``--bronze/--quarantine/--audit`` or the policy's), the Delta
tables through the storage layer's delta-rs adapter (its one conflict and retry rule), one commit per table tagged
with the run id, the key check, and the audit protocol.

The audit protocol, as ingest does it: a ``<command>_started`` event before the first commit, the closing
``<command>`` event after the last; a failed commit leaves ``<command>_failed``. A run killed in between leaves its
``_started`` event as the trail's last for the table, and the next lifecycle command records it as
``<command>_unfinished`` with the versions its commits made (they carry its run id in ``userMetadata``) before
doing anything else. Every command is idempotent: rerun, it finds only what is left to do.

The key check: before any change, every key version the command resolves is compared with the check values the
table was written with (the bronze property ``lakehouse_phi.key_checks`` and the ``key_checks`` of every audit event
of the table); other material under a recorded version refuses, naming the key and the version.

The column contract of bronze and quarantine rows that these commands rely on: ``_key_versions`` (map of output
column -> key version), ``_ingested_at`` (timestamp), ``_ingest_run_id``, ``_row_fingerprint`` and the record key's
pseudonym column (the record key column, masked by ``hmac``).
"""

from __future__ import annotations

import hmac
import logging
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lakehouse_phi.errors import JobRefused, UsageError
from lakehouse_phi.keys.providers import Fetchers, KeyKind, KeyRing, check_value, load_keys
from lakehouse_phi.policy import columns
from lakehouse_phi.policy.load import LoadedPolicy
from lakehouse_phi.policy.model import KeySpec, TableSpec
from lakehouse_phi.storage.delta import Commit, DeltaRsTable
from lakehouse_phi.storage.keycheck import KEY_CHECKS_PROPERTY, recorded_key_checks
from lakehouse_phi.storage.targets import Target, default_audit_target, is_jsonl

log = logging.getLogger(__name__)

KEY_VERSIONS_COL = columns.KEY_VERSIONS
INGESTED_AT_COL = columns.INGESTED_AT
QUARANTINED_AT_COL = columns.QUARANTINED_AT
RUN_ID_COL = columns.RUN_ID
FINGERPRINT_COL = columns.FINGERPRINT
HEX64 = re.compile(r"^[0-9a-f]{64}$")


def _is_path(target: str) -> bool:
    """A path or URI by the command line's rule (:meth:`Target.parse`); anything else is not one."""
    try:
        return Target.parse(target).is_path
    except UsageError:
        return False


@dataclass
class Targets:
    bronze: str
    quarantine: str
    audit: str


def resolve_targets(spec: TableSpec, bronze: str | None, quarantine: str | None, audit: str | None) -> Targets:
    """As ``ingest`` resolves them: the options, else the policy's (quarantine ``<bronze>_quarantine`` beside an
    explicit bronze), audit beside bronze."""
    b = bronze or spec.bronze
    q = quarantine or (f"{b}_quarantine" if bronze else spec.quarantine_target)
    a = audit or default_audit_target(b, "delta")
    for flag, target in (("--bronze", b), ("--quarantine", q), ("--audit", a)):
        if not _is_path(target) and not is_jsonl(target):
            raise UsageError(f"{flag} {target}: this command works on Delta tables by path or URI (delta-rs, no "
                             f"Spark); pass {flag} with the table's location")
    return Targets(b, q, a)


def open_table(target: str, required: bool) -> DeltaRsTable | None:
    """The Delta table at ``target``; None when missing and not ``required`` (a quarantine never written)."""
    table = DeltaRsTable(target)
    if table.exists():
        return table
    if required:
        raise UsageError(f"{target}: no Delta table there; pass --bronze with the bronze table's location")
    return None


@dataclass
class Context:
    """One lifecycle run: the policy, its table, targets, keys, run id and actor."""

    loaded: LoadedPolicy
    table: str
    targets: Targets
    run_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    actor: str = ""
    key_overrides: dict[str, KeySpec] = field(default_factory=dict)
    fetchers: Fetchers | None = None
    #: the commits this run made: table -> {version, operation} (the closing event records them)
    commits: dict[str, dict] = field(default_factory=dict)

    @property
    def spec(self) -> TableSpec:
        return self.loaded.policy.tables[self.table]

    @property
    def key_specs(self) -> dict[str, KeySpec]:
        return {**self.loaded.policy.keys, **self.key_overrides}

    def keys(self, needs: Iterable[tuple[str, KeyKind | None]], with_previous: bool = True) -> KeyRing:
        return load_keys(self.key_specs, needs, self.fetchers, with_previous=with_previous)

    def seal_key(self) -> Any:
        from lakehouse_phi.audit.sealing import seal_key

        return seal_key(self.loaded.policy, self.key_overrides, self.fetchers)

    def trail(self, seal_key: Any) -> Any:
        return open_audit(self.targets.audit, seal_key, self.run_id, self.loaded.policy.audit_retention_days)

    def audit(self, event: str, columns: dict[str, dict], details: dict, seal_key: Any, *, rows_read: int = 0,
              rows_written: int = 0, rows_quarantined: int = 0, forbidden: Iterable[str] = ()) -> dict:
        """Append the command's event (counts and names; sealed under ``audit.key``) and return it. ``forbidden``:
        raw values that must not occur in it (checked before it is written)."""
        from lakehouse_phi.audit.events import check_no_values, new_event

        extra: dict[str, Any] = {"commits": dict(self.commits)} if self.commits and not event.endswith("_started") \
            else {}
        if not event.endswith("_started"):  # every version this run committed (vacuum, properties included)
            from lakehouse_phi.audit.anchor import run_commits

            extra["commit_versions"] = run_commits({"bronze": self.targets.bronze,
                                                    "quarantine": self.targets.quarantine}, self.run_id)
        ev = new_event(run_id=self.run_id, actor=self.actor, event=event, policy_name=self.loaded.policy.name,
                       policy_sha256=self.loaded.sha256, table=self.table, rows_read=rows_read,
                       rows_written=rows_written, rows_quarantined=rows_quarantined, columns=columns,
                       details={**details, **extra, "bronze": self.targets.bronze,
                                "quarantine": self.targets.quarantine})
        check_no_values(ev, forbidden, min_length=4)
        return self.trail(seal_key).append(ev)

    def begin(self, command: str, details: dict, seal_key: Any, forbidden: Iterable[str] = ()) -> dict:
        """Before the first commit: record a run of this table left unfinished by a kill (its ``_started`` event is
        the trail's last for the table), then append this run's ``<command>_started`` (the pending event)."""
        from lakehouse_phi.audit.sinks import check_tail

        sink = self.trail(seal_key)
        last = sink.last()
        check_tail(last, self.targets.audit)
        if last is not None and str(last.get("event", "")).endswith("_started") and last.get("table") == self.table:
            pending, what = last.get("run_id"), str(last["event"])[: -len("_started")]
            commits = {name: DeltaRsTable(t).run_versions(str(pending))
                       for name, t in (("bronze", self.targets.bronze), ("quarantine", self.targets.quarantine))
                       if DeltaRsTable(t).exists()}
            log.warning("run %s (%s) of %s started and left no closing event; recording it", pending, what,
                        self.table)
            self.audit(f"{what}_unfinished", {}, {
                "pending_run_id": pending, "commits": commits,
                "message": f"run {pending} wrote its pending event and no closing event (killed or still running); "
                           "the commits listed carry its run id"}, seal_key)
        return self.audit(f"{command}_started", {}, details, seal_key, forbidden=forbidden)

    def check_keys(self, ring: KeyRing) -> dict[str, dict[str, int | str]]:
        """Refuse when a key version this run resolved has other material than the tables were written with
        (recorded: the bronze property and the ``key_checks`` of the trail's events for this table). Returns the
        check values of the active versions (recorded on bronze after a change)."""
        recorded: dict[tuple[str, int], set[str]] = {}

        def note(checks: Any) -> None:
            if not isinstance(checks, Mapping):
                return
            for name, info in checks.items():
                if isinstance(info, Mapping) and isinstance(info.get("version"), int) and \
                        isinstance(info.get("check"), str):
                    recorded.setdefault((str(name), info["version"]), set()).add(info["check"])

        note(recorded_key_checks(None, self.targets.bronze))
        for ev in self._trail_events():
            if ev.get("table") == self.table:
                note((ev.get("details") or {}).get("key_checks"))
        wrong = []
        for (name, version), checks in sorted(recorded.items()):
            key = ring.all_versions(name).get(version)
            if key is None:
                continue
            mine = check_value(key.material)
            if not any(hmac.compare_digest(mine, c) for c in checks):
                wrong.append(f"key '{name}' version {version}: check value {mine}, recorded "
                             f"{', '.join(sorted(checks))}")
        if wrong:
            raise JobRefused(f"{self.targets.bronze} was written with other key material under the same version "
                             f"({'; '.join(wrong)}); nothing was changed. Resolve the key material the table was "
                             "written with (keys.<name>.previous for older versions)")
        return ring.check_values()

    def _trail_events(self) -> list[dict]:
        from lakehouse_phi.audit.sinks import read_trail

        try:
            return read_trail(self.targets.audit)
        except UsageError:  # no trail yet
            return []

    def record_key_checks(self, checks: Mapping[str, Any]) -> None:
        """After a change: the bronze table now holds values under these key versions (what ingest records)."""
        import json

        DeltaRsTable(self.targets.bronze).set_properties(
            {KEY_CHECKS_PROPERTY: json.dumps(dict(checks), sort_keys=True)}, Commit(run_id=self.run_id))

    def commit(self, command: str, table_name: str, done: dict[str, int], seal_key: Any, write: Any) -> Any:
        """Run one table's commit; when it fails, record what the run did so far (``<command>_failed``) and refuse
        (exit 1). Every command is safe to rerun: it finds only what is still left to do."""
        try:
            out = write()
        except Exception as exc:  # noqa: BLE001 - delta-rs raises several types (conflicts, I/O)
            try:
                self.audit(f"{command}_failed", {}, {"failed_table": table_name, "error": type(exc).__name__,
                                                     "done": dict(done)}, seal_key)
            except Exception as audit_exc:  # noqa: BLE001 - the failure itself is what the user must see
                log.error("could not record the failure in the audit trail (%s)", type(audit_exc).__name__)
            raise JobRefused(f"{command}: the commit to {table_name} failed ({type(exc).__name__}: a concurrent "
                             "writer or a storage error); what was done before is in the audit trail - rerun the "
                             "same command to finish") from None
        location = {"bronze": self.targets.bronze, "quarantine": self.targets.quarantine}.get(table_name)
        if location is not None:
            last = DeltaRsTable(location).history()[:1]
            if last and last[0].get("userMetadata") == self.run_id:
                self.commits[table_name] = {"version": last[0]["version"], "operation": last[0].get("operation")}
        return out


def open_audit(target: str, seal_key: Any, run_id: str, retention_days: int) -> Any:
    """A JSON-lines trail, or a Delta trail through delta-rs (no Spark), created with ``retention_days``."""
    from lakehouse_phi.audit.sinks import open_audit as open_trail

    return open_trail(target, seal_key, run_id, retention_days)


def commit_of(ctx: Context) -> Commit:
    return Commit(run_id=ctx.run_id)


def vacuum_statement(target: str, hours: int) -> str:
    return f"VACUUM delta.`{target}` RETAIN {hours} HOURS"
