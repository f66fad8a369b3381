"""What every lifecycle command shares: the targets (``--bronze/--quarantine/--audit`` or the policy's), the Delta
tables through delta-rs, one commit per table tagged with the run id, and the audit event.

The column contract of bronze and quarantine rows that these commands rely on: ``_key_versions`` (map of output
column -> key version), ``_ingested_at`` (timestamp), ``_ingest_run_id``, ``_row_fingerprint`` and the record key's
pseudonym column (the record key column, masked by ``hmac``).
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from lakehouse_phi.errors import JobRefused, UsageError
from lakehouse_phi.keys.providers import Fetchers, KeyKind, KeyRing, load_keys
from lakehouse_phi.policy.load import LoadedPolicy
from lakehouse_phi.policy.model import KeySpec, TableSpec

log = logging.getLogger(__name__)

KEY_VERSIONS_COL = "_key_versions"
INGESTED_AT_COL = "_ingested_at"
QUARANTINED_AT_COL = "_quarantined_at"
RUN_ID_COL = "_ingest_run_id"
FINGERPRINT_COL = "_row_fingerprint"
HEX64 = re.compile(r"^[0-9a-f]{64}$")


def _is_path(target: str) -> bool:
    """A path or URI by the command line's rule (:meth:`Target.parse`); anything else is not one."""
    from lakehouse_phi.storage.targets import Target

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
    from lakehouse_phi.storage.targets import default_audit_target

    b = bronze or spec.bronze
    q = quarantine or (f"{b}_quarantine" if bronze else spec.quarantine_target)
    a = audit or default_audit_target(b, "delta")
    for flag, target in (("--bronze", b), ("--quarantine", q), ("--audit", a)):
        if not _is_path(target) and not target.lower().endswith((".jsonl", ".json")):
            raise UsageError(f"{flag} {target}: this command works on Delta tables by path or URI (delta-rs, no "
                             f"Spark); pass {flag} with the table's location")
    return Targets(b, q, a)


def open_table(target: str, required: bool) -> Any:
    """The DeltaTable at ``target``; None when missing and not ``required`` (a quarantine never written)."""
    from deltalake import DeltaTable

    if DeltaTable.is_deltatable(target):
        return DeltaTable(target)
    if required:
        raise UsageError(f"{target}: no Delta table there; pass --bronze with the bronze table's location")
    return None


def commit_props(run_id: str) -> Any:
    """Every commit names its run in ``userMetadata`` (``audit verify --against`` checks it has an event)."""
    from deltalake import CommitProperties

    return CommitProperties(custom_metadata={"userMetadata": run_id})


def columns_of(table: Any) -> list[str]:
    return [f.name for f in table.schema().fields]


def count_where(table: Any, predicate: str) -> int:
    from deltalake import QueryBuilder

    out = QueryBuilder().register("t", table).execute(f"SELECT count(*) AS n FROM t WHERE {predicate}").read_all()
    return int(pa.table(out).column("n")[0].as_py())


def read_rows(table: Any, predicate: str | None = None) -> pa.Table:
    """Rows through delta-rs's query engine, with its view types (``string_view``) cast to the plain ones."""
    from deltalake import QueryBuilder

    where = f" WHERE {predicate}" if predicate else ""
    data = pa.table(QueryBuilder().register("t", table).execute(f"SELECT * FROM t{where}").read_all())
    fields = [pa.field(f.name, pa.string() if f.type == pa.string_view() else
                       pa.binary() if f.type == pa.binary_view() else f.type) for f in data.schema]
    return data.cast(pa.schema(fields))


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

    def audit(self, event: str, columns: dict[str, dict], details: dict, seal_key: Any, *, rows_read: int = 0,
              rows_written: int = 0, rows_quarantined: int = 0, forbidden: Iterable[str] = ()) -> dict:
        """Append the command's event (counts and names; sealed under ``audit.key``) and return it. ``forbidden``:
        raw values that must not occur in it (checked before it is written)."""
        from lakehouse_phi.audit.events import check_no_values, new_event

        ev = new_event(run_id=self.run_id, actor=self.actor, event=event, policy_name=self.loaded.policy.name,
                       policy_sha256=self.loaded.sha256, table=self.table, rows_read=rows_read,
                       rows_written=rows_written, rows_quarantined=rows_quarantined, columns=columns,
                       details={**details, "bronze": self.targets.bronze, "quarantine": self.targets.quarantine})
        check_no_values(ev, forbidden, min_length=4)
        return open_audit(self.targets.audit, seal_key, self.run_id).append(ev)


    def commit(self, command: str, table_name: str, done: dict[str, int], seal_key: Any, write: Any) -> Any:
        """Run one table's commit; when it fails, record what the run did so far (``<command>_failed``) and refuse
        (exit 1). Every command is safe to rerun: it finds only what is still left to do."""
        try:
            return write()
        except Exception as exc:  # noqa: BLE001 - delta-rs raises several types (conflicts, I/O)
            try:
                self.audit(f"{command}_failed", {}, {"failed_table": table_name, "error": type(exc).__name__,
                                                     "done": dict(done)}, seal_key)
            except Exception as audit_exc:  # noqa: BLE001 - the failure itself is what the user must see
                log.error("could not record the failure in the audit trail (%s)", type(audit_exc).__name__)
            raise JobRefused(f"{command}: the commit to {table_name} failed ({type(exc).__name__}: a concurrent "
                             "writer or a storage error); what was done before is in the audit trail - rerun the "
                             "same command to finish") from None


def open_audit(target: str, seal_key: Any, run_id: str) -> Any:
    """A JSON-lines trail, or a Delta trail through delta-rs (no Spark)."""
    from lakehouse_phi.audit.sinks import open_audit as open_trail

    return open_trail(target, seal_key, run_id)


def vacuum_statement(target: str, hours: int) -> str:
    return f"VACUUM delta.`{target}` RETAIN {hours} HOURS"
