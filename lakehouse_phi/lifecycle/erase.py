"""``erase``: delete data subjects' rows from bronze and quarantine, matched by pseudonym.

The subjects are raw record-key values (one per line, from a file or stdin: never argv, where other users of the
machine can read them). Each is parsed as the record key's type and pseudonymised exactly as ingest did (the record
key's ``hmac`` with its parameters), under the active key version *and* every older one (``previous:``), since rows
ingested before a rotation carry the old pseudonym. Rows matching any of them are deleted: one delta-rs ``DELETE``
commit per table, tagged with the run id. The audit event holds the counts and the (active-version) pseudonyms,
never a raw value.

Deleted rows stay in the table's older data files (time travel) until they are vacuumed: the command prints the
``VACUUM`` that drops them, and ``vacuum_hours`` runs it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa

from lakehouse_phi.engine.types import parse
from lakehouse_phi.errors import JobRefused, UsageError
from lakehouse_phi.lifecycle.tables import (
    HEX64,
    Context,
    commit_props,
    count_where,
    open_table,
    vacuum_statement,
)
from lakehouse_phi.storage.sqltext import datafusion_ident
from lakehouse_phi.transforms import registry
from lakehouse_phi.transforms.base import ColumnContext

log = logging.getLogger(__name__)

DEFAULT_RETENTION_HOURS = 168  # Delta's default delta.deletedFileRetentionDuration (7 days)


@dataclass
class EraseResult:
    run_id: str
    table: str
    subjects: int
    pseudonym_column: str
    key: str
    key_versions: list[int]
    bronze_rows_deleted: int
    quarantine_rows_deleted: int
    dry_run: bool
    vacuum: list[str] = field(default_factory=list)
    vacuumed_files: int | None = None
    audit_hash: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def read_subjects(lines: Iterable[str]) -> list[str]:
    """Subjects, one per line: surrounding whitespace and blank lines ignored, duplicates dropped, order kept."""
    out: dict[str, None] = {}
    for line in lines:
        value = line.strip()
        if value:
            out[value] = None
    return list(out)


def pseudonym_rule(ctx: Context) -> tuple[str, str, dict]:
    """(record key column, its hmac key name, its hmac parameters).

    Raises:
        UsageError: the record key is not one column masked by ``hmac``.
    """
    spec = ctx.spec
    if len(spec.record_key) != 1:
        raise UsageError(f"tables.{ctx.table}.record_key: erase matches subjects by the record key's pseudonym and "
                         "needs a record key of exactly one column")
    col = spec.record_key[0]
    rule = spec.columns[col].effective_ingest
    if rule.strategy != "hmac":
        raise UsageError(f"tables.{ctx.table}.columns.{col}: erase matches subjects by pseudonym, so the record key "
                         f"must be masked by hmac (found {rule.strategy})")
    return col, rule.params["key"], dict(rule.params)


def pseudonyms(ctx: Context, subjects: list[str]) -> tuple[str, str, dict[int, list[str]]]:
    """(column, key name, version -> pseudonyms of the subjects). Resolves the key's every version first."""
    col, key_name, params = pseudonym_rule(ctx)
    col_type = ctx.spec.columns[col].type
    typed, failed = parse(pa.array(subjects, pa.string()), col_type)
    bad = [i + 1 for i, f in enumerate(failed.to_pylist()) if f]
    if bad:
        raise UsageError(f"subjects: line(s) {', '.join(map(str, bad[:20]))} are not a valid {col_type} record key "
                         f"({col}); fix those lines")
    ring = ctx.keys([(key_name, "hmac")])
    cls = registry.get("hmac")
    out: dict[int, list[str]] = {}
    for version, key in ring.all_versions(key_name).items():
        strategy = cls(cls.params_model.model_validate(params),
                       ColumnContext(ctx.table, col, col, col_type), key.material)
        out[version] = [p for p in strategy.apply(typed).to_pylist() if p is not None]
    return col, key_name, out


def erase(ctx: Context, subjects: list[str], *, dry_run: bool = False, vacuum_hours: int | None = None) -> EraseResult:
    """Delete the subjects' rows from bronze and quarantine (see the module docstring).

    Raises:
        UsageError: no subjects, a subject that is not a valid record key, a table that is not there.
        KeyMaterialError: a version of the pseudonym key (or the audit key) cannot be resolved; nothing deleted.
    """
    if not subjects:
        raise UsageError("subjects: none given; pass a file with one record key per line, or - for stdin")
    col, key_name, by_version = pseudonyms(ctx, subjects)
    seal = ctx.seal_key()  # before anything is deleted: a missing audit key stops here
    every = sorted({p for ps in by_version.values() for p in ps})
    if not all(HEX64.match(p) for p in every):  # hex only: safe inside the predicate  # pragma: no cover
        raise JobRefused("erase: a pseudonym is not 64 hex digits; the record key's strategy is not hmac")
    predicate = f"{datafusion_ident(col)} IN ({', '.join(repr(p) for p in every)})"
    bronze = open_table(ctx.targets.bronze, required=True)
    quarantine = open_table(ctx.targets.quarantine, required=False)
    for name, t in (("bronze", bronze), ("quarantine", quarantine)):
        if t is not None and col not in [f.name for f in t.schema().fields]:
            raise UsageError(f"{name} {t.table_uri}: no column {col!r} to match pseudonyms in")
    deleted = _delete(ctx, {"bronze": bronze, "quarantine": quarantine}, predicate, seal, dry_run)
    active = max(by_version)
    targets = [ctx.targets.bronze] + ([ctx.targets.quarantine] if quarantine is not None else [])
    result = EraseResult(ctx.run_id, ctx.table, len(subjects), col, key_name, sorted(by_version), deleted["bronze"],
                         deleted["quarantine"], dry_run,
                         vacuum=[vacuum_statement(t, vacuum_hours if vacuum_hours is not None
                                                  else DEFAULT_RETENTION_HOURS) for t in targets])
    if dry_run:
        return result
    if vacuum_hours is not None:
        result.vacuumed_files = sum(len(t.vacuum(retention_hours=vacuum_hours, dry_run=False,
                                                 enforce_retention_duration=False,
                                                 commit_properties=commit_props(ctx.run_id)))
                                    for t in (bronze, quarantine) if t is not None)
    sealed = ctx.audit("erase", {col: {"strategy": "hmac", "key_version": active}}, {
        "subjects": len(subjects), "pseudonyms": sorted(by_version[active]), "key": key_name,
        "key_versions": sorted(by_version), "bronze_rows_deleted": deleted["bronze"],
        "quarantine_rows_deleted": deleted["quarantine"], "vacuum_hours": vacuum_hours,
        "vacuumed_files": result.vacuumed_files}, seal, forbidden=subjects)
    result.audit_hash = sealed["hash"]
    return result


def _delete(ctx: Context, tables: dict[str, Any], predicate: str, seal: Any, dry_run: bool) -> dict[str, int]:
    """Rows matching ``predicate`` per table (bronze first): counted on a dry run, else deleted, one audited commit
    each (a missing table counts 0)."""
    deleted: dict[str, int] = {}
    for name, t in tables.items():
        if t is None:
            deleted[name] = 0
        elif dry_run:
            deleted[name] = count_where(t, predicate)
        else:
            metrics = ctx.commit("erase", name, {f"{k}_rows_deleted": v for k, v in deleted.items()}, seal,
                                 lambda t=t: t.delete(predicate, commit_properties=commit_props(ctx.run_id)))
            deleted[name] = int(metrics.get("num_deleted_rows", 0))
    return deleted
