"""Writing one evaluated batch: quarantine, then bronze, from exactly ``MaskResult.valid`` and ``.quarantine`` over
the staged copy of the pass (:mod:`lakehouse_phi.spark.staging`), never from the source again. Both flows write
Delta through the one adapter of :mod:`lakehouse_phi.storage.delta` (its conflict rule and retry policy); which one
runs is the run's writer (``ingest --writer``, :func:`choose_writer`):

* ``spark`` (:class:`SparkFlow`): Delta through Spark SQL ``MERGE INTO`` (Databricks, the Delta extension, pysail
  on paths, any catalog table), counts from the MERGE's own metrics (its result rows, else the commit's
  ``operationMetrics``); Parquet through an emulated merge (anti-join + append for ``history``, a locked rewrite
  for ``latest``).
* ``delta-rs`` (:class:`DeltaRsFlow`): Delta paths through delta-rs, with the Spark flow's rules (dedup, ``latest``
  winners) computed by Spark over the staged rows; each write's rows are streamed to delta-rs in Arrow batches
  (bounded driver memory); commits tagged with the run id (``userMetadata``) and, for streams, an app transaction
  (``txnAppId``/``txnVersion``) so a replayed micro-batch is skipped.

The rules (both flows): ``history`` appends a valid row unless bronze holds its (record key, fingerprint);
``latest`` keeps one row per record key (new key: insert; other fingerprint: update; same: untouched), the newest
version in a batch chosen by ``sequence_by`` else the later file, then the later row; quarantine skips a row whose
fingerprint it already holds. ``rows_read = inserted + updated + unchanged + quarantined``, where unchanged counts
rows already in bronze, duplicates within the batch and superseded versions (``rows_superseded`` says how many).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from lakehouse_phi.errors import JobRefused, UsageError
from lakehouse_phi.policy.columns import FINGERPRINT as FINGERPRINT_COL
from lakehouse_phi.policy.columns import ORDER_FILE as ORDER_FILE_COL
from lakehouse_phi.policy.columns import ORDER_POS as ORDER_POS_COL
from lakehouse_phi.policy.columns import SOURCE_FILE as SOURCE_FILE_COL
from lakehouse_phi.spark.mask import MaskResult
from lakehouse_phi.spark.scrub_counts import scrub_counts_spark
from lakehouse_phi.spark.session import functions
from lakehouse_phi.storage import tables
from lakehouse_phi.storage.delta import Commit, DeltaRsTable, MergeMetrics, SparkDeltaTable, uses_deltars
from lakehouse_phi.storage.engines import caps
from lakehouse_phi.storage.spool import BucketedSpool, spooled
from lakehouse_phi.storage.sqltext import ident
from lakehouse_phi.storage.tables import path_lock
from lakehouse_phi.storage.targets import Target

log = logging.getLogger(__name__)

#: Which copy of a row delivered twice in one batch is written (both writers): the lowest ``_source_file``.
FIRST_DELIVERY = [(SOURCE_FILE_COL, "ascending")]
#: ``ingest --writer``: how Delta is written (``auto``: :func:`choose_writer`)
WRITERS = ("auto", "spark", "delta-rs")


@dataclass
class Written:
    """What the bronze write did, from its own counts (MERGE metrics)."""

    rows_inserted: int = 0
    rows_updated: int = 0
    rows_unchanged: int = 0
    rows_superseded: int = 0
    quarantine_new: int = 0
    skipped_replay: bool = False
    versions: dict[str, int | None] = field(default_factory=dict)


@dataclass(frozen=True)
class WriteSpec:
    """Where and how one batch is written."""

    bronze: Target
    quarantine: Target
    table_format: str
    record_key: list[str]
    bronze_mode: str
    sequence_by: str | None
    run_id: str
    #: streaming: (app id, micro-batch id), recorded in the Delta commits so a replay is skipped
    txn: tuple[str, int] | None = None
    #: ``spark`` or ``delta-rs`` (:func:`choose_writer`)
    writer: str = "spark"


# ---------------------------------------------------------------------------------------------------- Arrow/delta-rs
def commit_of(spec: WriteSpec) -> Commit:
    """The commit of this batch: the run id and, for a stream, its app transaction."""
    return Commit(run_id=spec.run_id, txn=spec.txn)


def _first_per_key(table: pa.Table, keys: list[str], order: list[tuple[str, str]]) -> tuple[pa.Table, int]:
    """One row per ``keys``: the first by ``order`` (sort keys); returns it and how many rows were dropped."""
    if not table.num_rows:
        return table, 0
    idx = "__lhp_idx"
    ranked = table.append_column(idx, pa.array(range(table.num_rows), pa.int64()))
    ranked = ranked.sort_by([*order, (idx, "ascending")]) if order else ranked
    ranked = ranked.append_column("__lhp_rank", pa.array(range(ranked.num_rows), pa.int64()))
    firsts = ranked.group_by(keys, use_threads=False).aggregate([("__lhp_rank", "min")])
    keep = pc.sort_indices(firsts.column("__lhp_rank_min"))
    chosen = pc.take(firsts.column("__lhp_rank_min"), keep)
    out = ranked.take(chosen).drop_columns([idx, "__lhp_rank"])
    return out, table.num_rows - out.num_rows


def _version_order(table: pa.Table, spec: WriteSpec) -> list[tuple[str, str]]:
    if spec.sequence_by and spec.sequence_by in table.column_names:
        base = [(spec.sequence_by, "descending")]
    else:
        base = []
    return base + [(c, "descending") for c in (ORDER_FILE_COL, ORDER_POS_COL) if c in table.column_names]


# ---------------------------------------------------------------------------------------------------------- Spark
class SparkFlow:
    """Write ``valid``/``quarantine`` of the evaluated (staged) pass with Spark: Delta through SQL ``MERGE INTO``,
    counts from its metrics; Parquet through an emulated merge."""

    def __init__(self, result: MaskResult, spec: WriteSpec) -> None:
        if result.tally is None:
            raise UsageError("the masked batch must be evaluated once before it is written (spark.staging.evaluated)")
        self.result, self.spec, self.tally = result, spec, result.tally
        self.spark = result.masked.sparkSession
        self.F = functions(self.spark)

    def scrub_counts(self) -> dict[str, dict[str, int]]:
        """Replacements per ``scrub_text`` column and tag (counts only), one aggregation after :meth:`materialize`."""
        return scrub_counts_spark(self.result.masked, self.result.plan.plan)

    def write_quarantine(self) -> int:
        rows = self._first_delivery(self.result.quarantine, [FINGERPRINT_COL])
        return self._insert_new(self.spec.quarantine, rows, [FINGERPRINT_COL])

    def write_bronze(self) -> Written:
        spec, w = self.spec, Written()
        valid = self.result.valid
        n_valid = self.tally.rows_valid
        if spec.bronze_mode == "latest":
            winners, w.rows_superseded = self._latest_winners(valid)
            w.rows_inserted, w.rows_updated = self._upsert(winners)
        else:
            keys = [*spec.record_key, FINGERPRINT_COL]
            rows = self._first_delivery(valid.drop(ORDER_FILE_COL, ORDER_POS_COL), keys)
            w.rows_inserted = self._insert_new(spec.bronze, rows, keys)
        w.rows_unchanged = n_valid - w.rows_inserted - w.rows_updated
        return w

    def _first_delivery(self, rows: Any, keys: list[str]) -> Any:
        """One row per ``keys`` (a row delivered twice in a batch): the one with the lowest ``_source_file``, so
        both writers keep the same copy."""
        F = self.F
        window = _window(self.spark).partitionBy(*[F.col(ident(k)) for k in keys]).orderBy(
            F.col(SOURCE_FILE_COL).asc_nulls_last())
        ranked = rows.withColumn("__lhp_rn", F.row_number().over(window))
        return ranked.where(F.col("__lhp_rn") == 1).drop("__lhp_rn")

    def _latest_winners(self, valid: Any) -> tuple[Any, int]:
        F = self.F
        order = []
        if self.spec.sequence_by and self.spec.sequence_by in valid.columns:
            order.append(F.col(ident(self.spec.sequence_by)).desc_nulls_last())
        order += [F.col(c).desc() for c in (ORDER_FILE_COL, ORDER_POS_COL) if c in valid.columns]
        window = _window(self.spark).partitionBy(*[F.col(ident(k)) for k in self.spec.record_key]).orderBy(*order)
        ranked = valid.withColumn("__lhp_rn", F.row_number().over(window))
        winners = ranked.where(F.col("__lhp_rn") == 1).drop("__lhp_rn", ORDER_FILE_COL, ORDER_POS_COL)
        # one count over the staged rows (the pass is not run again): superseded versions for the audit event
        return winners, self.tally.rows_valid - winners.count()

    def _insert_new(self, target: Target, rows: Any, keys: list[str]) -> int:
        """Rows whose ``keys`` the target does not hold: merged (Delta: the count from the MERGE's metrics) or
        appended (Parquet: counted, as Parquet has no write metrics)."""
        fmt = self.spec.table_format
        with path_lock(target):
            if fmt == "delta":
                return self._delta(target).merge(rows, keys, commit=commit_of(self.spec)).inserted
            new = rows
            if tables.exists(self.spark, target, fmt):
                existing = tables.read(self.spark, target, fmt).select(*[ident(k) for k in keys])
                new = rows.join(existing, on=keys, how="left_anti")
            count = new.count()
            if count:
                tables.append(new, target, fmt)
            return count

    def _upsert(self, winners: Any) -> tuple[int, int]:
        """``latest``: (inserted, updated). Delta: one MERGE (its metrics); Parquet: a locked rewrite."""
        F, fmt, keys = self.F, self.spec.table_format, self.spec.record_key
        target = self.spec.bronze
        with path_lock(target):
            if fmt == "delta":
                m = self._delta(target).merge(winners, keys, update_if_differs=FINGERPRINT_COL,
                                              commit=commit_of(self.spec))
                return m.inserted, m.updated
            if not tables.exists(self.spark, target, fmt):
                count = winners.count()
                tables.append(winners, target, fmt)
                return count, 0
            existing = tables.read(self.spark, target, fmt)
            old = existing.select(*[F.col(ident(k)) for k in keys],
                                  F.col(FINGERPRINT_COL).alias("__lhp_old_fp"))
            joined = winners.join(old, on=keys, how="left")
            counts = {r[0]: int(r[1]) for r in joined.select(
                F.when(F.col("__lhp_old_fp").isNull(), "i").when(F.col("__lhp_old_fp") != F.col(FINGERPRINT_COL), "u")
                .otherwise("s").alias("k")).groupBy("k").count().collect()}
            inserted, updated = counts.get("i", 0), counts.get("u", 0)
            if not inserted and not updated:
                return 0, 0
            changed = joined.where(F.col("__lhp_old_fp").isNull() | (F.col("__lhp_old_fp") != F.col(FINGERPRINT_COL)))
            changed = changed.drop("__lhp_old_fp")
            kept = existing.join(changed.select(*keys), on=keys, how="left_anti")
            rows = kept.unionByName(changed.select(*existing.columns))
            tables.replace_parquet(target, lambda folder: rows.write.mode("error").parquet(folder))
            return inserted, updated

    def _delta(self, target: Target) -> SparkDeltaTable:
        """The target through Spark SQL, also where delta-rs would be the default (``--writer spark`` on pysail)."""
        return SparkDeltaTable(self.spark, target)

    def versions(self) -> dict[str, list[int]]:
        """The Delta versions this run committed, from the engine's history (``audit verify --against`` binds each
        commit to its run by version); nothing for Parquet, or where the engine cannot show its history."""
        out: dict[str, list[int]] = {}
        if self.spec.table_format != "delta":
            return out
        for name, t in (("bronze", self.spec.bronze), ("quarantine", self.spec.quarantine)):
            try:
                out[name] = self._delta(t).run_versions(self.spec.run_id)
            except Exception:  # noqa: BLE001 - no DESCRIBE HISTORY here: --against reports the run as not bound
                log.info("no Delta history for %s; its commit versions are not recorded", name)
        return out

    def release(self) -> None:
        return None


def _window(spark: Any) -> Any:
    if caps(spark).connect:
        from pyspark.sql.connect.window import Window as ConnectWindow

        return ConnectWindow
    from pyspark.sql.window import Window

    return Window


class DeltaRsFlow(SparkFlow):
    """Delta paths through delta-rs in bounded memory, over the staged rows of the pass. Each write's rows are
    spooled by Spark in hash buckets of the columns that decide duplicates (record key and fingerprint; the record
    key for ``latest``; the fingerprint for quarantine), and streamed to a delta-rs MERGE bucket by bucket, each
    bucket deduplicated (keeping the first delivery, as :class:`SparkFlow` does) or reduced to each key's newest
    version in Arrow on the way: the driver holds one bucket, never the run. Counts come from the tally and the
    MERGE metrics."""

    def _merge(self, target: Target, rows: Any, keys: list[str], n: int | None, per_bucket: Any, *,
               update: bool, on_read: Any = None) -> MergeMetrics:
        """Spool ``rows`` in buckets of ``keys``, pass each bucket through ``per_bucket`` and MERGE the stream on
        ``keys`` (``on_read``: called before each read of the stream, a retried commit reads it again)."""
        with path_lock(target), spooled(rows, bucket_by=keys, rows=n) as spool:
            spooled_rows = _rows_in(spool)
            if n is not None and spooled_rows != n:  # the rows about to be committed are the rows counted
                raise JobRefused(f"run {self.spec.run_id}: {spooled_rows} rows to write to {target}, but the "
                                 f"tally counted {n}; nothing more is written (rerun)")
            if spool.num_rows == 0 and self.spec.txn is None:
                return MergeMetrics()
            out_schema = per_bucket(spool.schema.empty_table()).schema

            def stream() -> pa.RecordBatchReader:
                if on_read is not None:
                    on_read()
                return spool.reader(per_bucket, out_schema)

            return DeltaRsTable(target).merge(stream, keys, commit=commit_of(self.spec),
                                              update_if_differs=FINGERPRINT_COL if update else None)

    def write_quarantine(self) -> int:
        def first(t: pa.Table) -> pa.Table:
            return _first_per_key(t, [FINGERPRINT_COL], FIRST_DELIVERY)[0]

        return self._merge(self.spec.quarantine, self.result.quarantine, [FINGERPRINT_COL],
                           self.tally.rows_quarantined, first, update=False).inserted

    def write_bronze(self) -> Written:
        spec, w = self.spec, Written()
        n_valid = self.tally.rows_valid
        order_cols = (ORDER_FILE_COL, ORDER_POS_COL)
        if spec.bronze_mode == "latest":
            superseded = [0]

            def newest(t: pa.Table) -> pa.Table:
                winners, dropped = _first_per_key(t, spec.record_key, _version_order(t, spec))
                superseded[0] += dropped
                return winners.drop_columns([c for c in order_cols if c in winners.column_names])

            m = self._merge(spec.bronze, self.result.valid, spec.record_key, n_valid, newest, update=True,
                            on_read=lambda: superseded.__setitem__(0, 0))
            w.rows_inserted, w.rows_updated = m.inserted, m.updated
            w.rows_superseded = superseded[0]
        else:
            keys = [*spec.record_key, FINGERPRINT_COL]

            def first(t: pa.Table) -> pa.Table:
                return _first_per_key(t, keys, FIRST_DELIVERY)[0]

            w.rows_inserted = self._merge(spec.bronze, self.result.valid.drop(*order_cols), keys, n_valid, first,
                                          update=False).inserted
        w.rows_unchanged = n_valid - w.rows_inserted - w.rows_updated
        return w

    def versions(self) -> dict[str, list[int]]:
        """The versions of bronze and quarantine this run committed (``audit verify --against`` binds each commit
        to its run by version)."""
        return {name: DeltaRsTable(t).run_versions(self.spec.run_id)
                for name, t in (("bronze", self.spec.bronze), ("quarantine", self.spec.quarantine))}



def _rows_in(spool: Any) -> int:
    """The rows a spool holds, counted from its files (Parquet metadata, bucket by bucket) for a bucketed spool;
    the other spools count their rows when they are made."""
    if not isinstance(spool, BucketedSpool):
        return int(spool.num_rows)
    return spool.count_rows()


def choose_writer(spark: Any, bronze: Target, table_format: str, wanted: str = "auto") -> str:
    """``spark`` or ``delta-rs``: what writes this run's Delta (Parquet: always ``spark``).

    ``auto`` takes the best the engine supports: Spark SQL where the engine itself writes Delta (Databricks, the
    Delta extension) or the target is a catalog table; delta-rs for a Delta path elsewhere (pysail, classic Spark
    without the Delta jars), which also records streaming app transactions. ``spark`` on pysail runs the same
    ``MERGE INTO`` Databricks runs (pysail ignores ``txnAppId``: a replayed micro-batch is then skipped by the
    fingerprint rule alone).
    """
    if wanted not in WRITERS:
        raise UsageError(f"--writer {wanted!r}; allowed: {', '.join(WRITERS)}")
    if table_format != "delta":
        if wanted == "delta-rs":
            raise UsageError("--writer delta-rs writes Delta only; this run writes parquet (--table-format)")
        return "spark"
    if wanted == "auto":
        return "delta-rs" if uses_deltars(spark, bronze, table_format) else "spark"
    if wanted == "delta-rs" and not bronze.is_path:
        raise UsageError(f"--writer delta-rs writes Delta paths; bronze {bronze} is a catalog table: use --writer "
                         "spark")
    engine = caps(spark)
    if wanted == "spark" and bronze.is_path and not (engine.delta_sql_on_paths or engine.sail):
        raise UsageError("--writer spark needs an engine that writes Delta with SQL (Databricks, Spark with the "
                         "Delta extension, pysail); this session has none: use --writer delta-rs")
    return wanted


def make_flow(spark: Any, result: MaskResult, spec: WriteSpec) -> SparkFlow:
    """The writer of an evaluated batch (``result.tally`` set)."""
    if spec.table_format == "delta" and spec.bronze.is_path != spec.quarantine.is_path:
        raise UsageError("bronze and quarantine must both be paths or both be table names")
    if spec.writer == "delta-rs":
        try:
            import deltalake  # noqa: F401
        except ImportError:
            raise UsageError("writing Delta paths on this engine needs delta-rs: pip install 'lakehouse-phi[local]'"
                             ) from None
        return DeltaRsFlow(result, spec)
    return SparkFlow(result, spec)
