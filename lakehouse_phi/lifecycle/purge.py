"""``purge``: delete bronze and quarantine rows past ``tables.<t>.retention_days``.

A row is past retention when its ``_ingested_at`` (quarantine rows without it: ``_quarantined_at``) is before
00:00 UTC of the as-of date minus ``retention_days`` days. A row whose timestamp is NULL is kept (its age is
unknown) and counted. One delta-rs ``DELETE`` commit per table, tagged with the run id, between a ``purge_started``
and a ``purge`` audit event (the protocol of :mod:`lakehouse_phi.lifecycle.tables`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field

from lakehouse_phi.errors import UsageError
from lakehouse_phi.lifecycle.tables import (
    INGESTED_AT_COL,
    QUARANTINED_AT_COL,
    Context,
    commit_of,
    open_table,
    vacuum_statement,
)
from lakehouse_phi.storage.sqltext import datafusion_ident, datafusion_literal

DEFAULT_RETENTION_HOURS = 168


@dataclass
class PurgeResult:
    run_id: str
    table: str
    retention_days: int
    as_of: str
    cutoff: str
    bronze_rows_deleted: int
    quarantine_rows_deleted: int
    rows_without_timestamp: int
    dry_run: bool
    vacuum: list[str] = field(default_factory=list)
    audit_hash: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def cutoff_for(as_of: dt.date, retention_days: int) -> dt.datetime:
    """00:00 UTC of ``as_of - retention_days``: rows ingested before it are purged."""
    day = as_of - dt.timedelta(days=retention_days)
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc)


def purge(ctx: Context, as_of: dt.date | None = None, *, dry_run: bool = False) -> PurgeResult:
    """Delete rows past retention (see the module docstring).

    Raises:
        UsageError: the table has no ``retention_days``, or a table lacks the timestamp column.
    """
    days = ctx.spec.retention_days
    if days is None:
        raise UsageError(f"tables.{ctx.table}.retention_days is not set; add retention_days: N (days) to the policy "
                         "to purge this table")
    as_of = as_of or dt.datetime.now(dt.timezone.utc).date()
    cutoff = cutoff_for(as_of, days)
    seal = ctx.seal_key()
    stamp = cutoff.strftime("%Y-%m-%dT%H:%M:%SZ")
    tables = {"bronze": open_table(ctx.targets.bronze, required=True),
              "quarantine": open_table(ctx.targets.quarantine, required=False)}
    predicates: dict[str, str] = {}
    unknown = 0
    for name, t in tables.items():
        if t is None:
            continue
        cols = t.columns()
        col = INGESTED_AT_COL if INGESTED_AT_COL in cols else QUARANTINED_AT_COL if name == "quarantine" and \
            QUARANTINED_AT_COL in cols else None
        if col is None:
            raise UsageError(f"{name} {t.target}: no {INGESTED_AT_COL} column, so the age of its rows is unknown")
        predicates[name] = f"{datafusion_ident(col)} < {datafusion_literal(stamp)}"
        unknown += t.count(f"{datafusion_ident(col)} IS NULL")
    deleted = dict.fromkeys(tables, 0)
    if dry_run:
        deleted.update({name: tables[name].count(pred) for name, pred in predicates.items()})  # type: ignore[union-attr]
    else:
        ctx.begin("purge", {"retention_days": days, "as_of": as_of.isoformat(), "cutoff": stamp}, seal)
        done: dict[str, int] = {}
        for name, pred in predicates.items():
            t = tables[name]
            deleted[name] = ctx.commit("purge", name, dict(done), seal,
                                       lambda t=t, pred=pred: t.delete(pred, commit_of(ctx)))
            done[f"{name}_rows_deleted"] = deleted[name]
    quarantine = tables["quarantine"]
    targets = [ctx.targets.bronze] + ([ctx.targets.quarantine] if quarantine is not None else [])
    result = PurgeResult(ctx.run_id, ctx.table, days, as_of.isoformat(), stamp, deleted["bronze"],
                         deleted["quarantine"], unknown, dry_run,
                         vacuum=[vacuum_statement(t, DEFAULT_RETENTION_HOURS) for t in targets])
    if not dry_run:
        sealed = ctx.audit("purge", {}, {
            "retention_days": days, "as_of": as_of.isoformat(), "cutoff": stamp,
            "bronze_rows_deleted": deleted["bronze"], "quarantine_rows_deleted": deleted["quarantine"],
            "rows_without_timestamp": unknown}, seal)
        result.audit_hash = sealed["hash"]
    return result
