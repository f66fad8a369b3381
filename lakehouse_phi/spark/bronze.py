"""Writing one masked batch: tallies first (from the single pass), then quarantine, then bronze.

Two flows, chosen per target (see :func:`lakehouse_phi.storage.delta.uses_deltars`); both write Delta through the
one adapter of :mod:`lakehouse_phi.storage.delta` (its conflict rule and retry policy):

* :class:`DeltaRsFlow`: Delta paths on engines without Delta SQL on paths (pysail, classic Spark without the Delta
  jars): the masked batch is staged once (local engines), split, deduplicated and counted by Spark, and each
  write's rows are streamed to delta-rs in Arrow batches (bounded driver memory): counts from the tally and MERGE
  metrics, commits tagged with the run id (``userMetadata``) and, for streams, an app transaction
  (``txnAppId``/``txnVersion``) so a replayed micro-batch is skipped.
* :class:`SparkFlow`: the masked frame is persisted where the engine can and counted with one aggregation; Delta
  through Spark SQL ``MERGE`` (Databricks, the Delta extension, catalog tables), Parquet through an emulated merge
  (anti-join + append for ``history``, a locked rewrite for ``latest``).

The rules (both flows): ``history`` appends a valid row unless bronze holds its (record key, fingerprint);
``latest`` keeps one row per record key (new key: insert; other fingerprint: update; same: untouched), the newest
version in a batch chosen by ``sequence_by`` else the later file, then the later row; quarantine skips a row whose
fingerprint it already holds. ``rows_read = inserted + updated + unchanged + quarantined``, where unchanged counts
rows already in bronze, duplicates within the batch and superseded versions (``rows_superseded`` says how many).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from lakehouse_phi.engine.plan import ERRORS_COL, FINGERPRINT_COL, ORDER_FILE_COL, ORDER_POS_COL, SCAN_COL
from lakehouse_phi.errors import UsageError
from lakehouse_phi.spark.mask import INGESTED_AT_COL, QUARANTINED_AT_COL, MaskResult
from lakehouse_phi.spark.scrub_counts import scrub_counts_spark
from lakehouse_phi.spark.session import functions
from lakehouse_phi.storage import tables
from lakehouse_phi.storage.delta import Commit, DeltaRsTable, MergeMetrics, SparkDeltaTable, open_delta, uses_deltars
from lakehouse_phi.storage.engines import caps
from lakehouse_phi.storage.spool import ParquetSpool, spooled
from lakehouse_phi.storage.sqltext import ident
from lakehouse_phi.storage.tables import path_lock
from lakehouse_phi.storage.targets import Target

log = logging.getLogger(__name__)

HIDDEN = (ORDER_FILE_COL, ORDER_POS_COL, SCAN_COL)


@dataclass
class Tally:
    """What the pass saw, counted once: no value, only counts."""

    rows_read: int = 0
    rows_quarantined: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    phi_scan: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def rows_valid(self) -> int:
        return self.rows_read - self.rows_quarantined


@dataclass
class Written:
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


def _tally_from_tags(tags: dict[str, int]) -> Tally:
    t = Tally(rows_quarantined=tags.get("q", 0))
    t.rows_read = t.rows_quarantined + tags.get("v", 0)
    for tag, n in sorted(tags.items()):
        kind, _, rest = tag.partition("|")
        if kind == "r":
            t.reasons[rest] = t.reasons.get(rest, 0) + n
        elif kind == "s":
            col, _, det = rest.rpartition(":")
            t.phi_scan.setdefault(col, {})[det] = n
    return t


def tally_arrow(table: pa.Table, scan_columns: list[str]) -> Tally:
    errors = table.column(ERRORS_COL)
    n_err = pc.list_value_length(errors)
    q = int(pc.sum(pc.greater(n_err, 0)).as_py() or 0)
    tags = {"q": q, "v": table.num_rows - q}
    flat = pc.list_flatten(errors)
    if len(flat):
        labels = pc.binary_join_element_wise(pc.struct_field(flat, "column"), pc.struct_field(flat, "rule"), ":")
        for item in pc.value_counts(labels).to_pylist():
            tags[f"r|{item['values']}"] = item["counts"]
    hits = pc.list_flatten(table.column(SCAN_COL))
    if len(hits):
        for item in pc.value_counts(hits).to_pylist():
            tags[f"s|{item['values']}"] = item["counts"]
    out = _tally_from_tags(tags)
    for c in scan_columns:
        out.phi_scan.setdefault(c, {})
        for det in ("ssn", "email", "phone"):
            out.phi_scan[c].setdefault(det, 0)
    return out


def tally_spark(masked: Any, scan_columns: list[str]) -> Tally:
    """One aggregation over the (persisted) masked frame: valid/quarantined, reasons and scan hits as tags."""
    F = functions(masked.sparkSession)
    errors, scan = F.col(ERRORS_COL), F.col(SCAN_COL)
    tags = F.concat(
        F.array(F.when(F.size(errors) > 0, F.lit("q")).otherwise(F.lit("v"))),
        F.transform(errors, lambda e: F.concat(F.lit("r|"), e["column"], F.lit(":"), e["rule"])),
        F.transform(scan, lambda s: F.concat(F.lit("s|"), s)))
    rows = masked.select(F.explode(tags).alias("tag")).groupBy("tag").count().collect()
    out = _tally_from_tags({r[0]: int(r[1]) for r in rows})
    for c in scan_columns:
        out.phi_scan.setdefault(c, {})
        for det in ("ssn", "email", "phone"):
            out.phi_scan[c].setdefault(det, 0)
    return out


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
    """Persist where the engine can, count once, write with Spark (Delta SQL MERGE, or emulated on Parquet)."""

    def __init__(self, result: MaskResult, spec: WriteSpec) -> None:
        self.result, self.spec = result, spec
        self.spark = result.masked.sparkSession
        self.F = functions(self.spark)
        self._masked = result.masked
        self._persisted = False

    def materialize(self) -> Tally:
        if caps(self.spark).can_persist:
            self._masked = self._masked.persist()
            self._persisted = True
        tally = tally_spark(self._masked, self.result.plan.scan_columns)
        self.result_tally_valid = tally.rows_valid
        return tally

    def scrub_counts(self) -> dict[str, dict[str, int]]:
        """Replacements per ``scrub_text`` column and tag (counts only), one aggregation after :meth:`materialize`."""
        return scrub_counts_spark(self._masked, self.result.plan.plan)

    def _valid(self) -> Any:
        F, has_errors = self.F, self.F.size(self.F.col(ERRORS_COL)) > 0
        return self._masked.where(~has_errors).drop(ERRORS_COL, SCAN_COL).withColumn(INGESTED_AT_COL,
                                                                                     F.current_timestamp())

    def _quarantine(self) -> Any:
        F, has_errors = self.F, self.F.size(self.F.col(ERRORS_COL)) > 0
        return (self._masked.where(has_errors).drop(*HIDDEN)
                .withColumn(QUARANTINED_AT_COL, F.current_timestamp()))

    def write_quarantine(self) -> int:
        rows = self._quarantine().dropDuplicates([FINGERPRINT_COL])
        return self._insert_new(self.spec.quarantine, rows, [FINGERPRINT_COL])

    def write_bronze(self) -> Written:
        spec, w = self.spec, Written()
        valid = self._valid()
        n_valid = self.result_tally_valid
        if spec.bronze_mode == "latest":
            winners, w.rows_superseded = self._latest_winners(valid)
            w.rows_inserted, w.rows_updated = self._upsert(winners)
        else:
            keys = [*spec.record_key, FINGERPRINT_COL]
            rows = valid.drop(ORDER_FILE_COL, ORDER_POS_COL).dropDuplicates(keys)
            w.rows_inserted = self._insert_new(spec.bronze, rows, keys)
        w.rows_unchanged = n_valid - w.rows_inserted - w.rows_updated
        return w

    result_tally_valid: int = 0

    def _latest_winners(self, valid: Any) -> tuple[Any, int]:
        from pyspark.sql import Window  # noqa: F401 - classic and Connect share the name

        F = self.F
        order = []
        if self.spec.sequence_by and self.spec.sequence_by in valid.columns:
            order.append(F.col(ident(self.spec.sequence_by)).desc_nulls_last())
        order += [F.col(c).desc() for c in (ORDER_FILE_COL, ORDER_POS_COL) if c in valid.columns]
        window = _window(self.spark).partitionBy(*[F.col(ident(k)) for k in self.spec.record_key]).orderBy(*order)
        ranked = valid.withColumn("__lhp_rn", F.row_number().over(window))
        winners = ranked.where(F.col("__lhp_rn") == 1).drop("__lhp_rn", ORDER_FILE_COL, ORDER_POS_COL)
        if caps(self.spark).can_persist:
            winners = winners.persist()
        superseded = self.result_tally_valid - winners.count()
        return winners, superseded

    def _insert_new(self, target: Target, rows: Any, keys: list[str]) -> int:
        """Rows whose ``keys`` the target does not hold: appended (Parquet) or merged (Delta)."""
        fmt = self.spec.table_format
        with path_lock(target):
            if not tables.exists(self.spark, target, fmt):
                new = rows
            else:
                existing = tables.read(self.spark, target, fmt).select(*[ident(k) for k in keys])
                new = rows.join(existing, on=keys, how="left_anti")
            cached = caps(self.spark).can_persist
            if cached:
                new = new.persist()
            try:
                count = new.count()  # the rows this run adds (Parquet has no write metrics to read back)
                if count == 0:
                    return 0
                if fmt == "delta":
                    self._delta(target).merge(new, keys, commit=commit_of(self.spec))
                else:
                    tables.append(new, target, fmt)
                return count
            finally:
                if cached:
                    new.unpersist()

    def _upsert(self, winners: Any) -> tuple[int, int]:
        """``latest``: (inserted, updated). Delta: one MERGE; Parquet: a locked rewrite of the table."""
        F, fmt, keys = self.F, self.spec.table_format, self.spec.record_key
        target = self.spec.bronze
        with path_lock(target):
            if not tables.exists(self.spark, target, fmt):
                if fmt == "delta":
                    m = self._delta(target).merge(winners, keys, update_if_differs=FINGERPRINT_COL,
                                                  commit=commit_of(self.spec))
                    return m.inserted, m.updated
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
            if fmt == "delta":
                self._delta(target).merge(changed, keys, update_if_differs=FINGERPRINT_COL,
                                          commit=commit_of(self.spec))
                return inserted, updated
            kept = existing.join(changed.select(*keys), on=keys, how="left_anti")
            rows = kept.unionByName(changed.select(*existing.columns))
            tables.replace_parquet(target, lambda folder: rows.write.mode("error").parquet(folder))
            return inserted, updated

    def _delta(self, target: Target) -> SparkDeltaTable:
        table = open_delta(target, self.spark)
        assert isinstance(table, SparkDeltaTable), "SparkFlow writes Delta through Spark SQL"
        return table

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
        if self._persisted:
            self._masked.unpersist()


def _window(spark: Any) -> Any:
    if caps(spark).connect:
        from pyspark.sql.connect.window import Window as ConnectWindow

        return ConnectWindow
    from pyspark.sql.window import Window

    return Window


class DeltaRsFlow(SparkFlow):
    """Delta paths on an engine without Delta SQL on paths (pysail, classic Spark without the Delta jars), written
    through delta-rs in bounded memory. Where the engine writes this machine's files, the masked batch is staged once
    as Parquet (one evaluation of the pass) and every step reads the stage. Each write's rows are spooled by Spark in
    hash buckets of the columns that decide duplicates (record key and fingerprint; the record key for ``latest``;
    the fingerprint for quarantine), and streamed to a delta-rs MERGE bucket by bucket, each bucket deduplicated (or
    reduced to each key's newest version) in Arrow on the way: the driver holds one bucket, never the run.
    Counts come from the tally and the MERGE metrics."""

    def __init__(self, result: MaskResult, spec: WriteSpec) -> None:
        super().__init__(result, spec)
        self._stage: contextlib.ExitStack | None = None
        self._tally: Tally | None = None

    def materialize(self) -> Tally:
        if not caps(self.spark).local_files:
            self._tally = super().materialize()
            return self._tally
        self._stage = contextlib.ExitStack()
        staged = self._stage.enter_context(spooled(self._masked))  # the one evaluation of the pass
        assert isinstance(staged, ParquetSpool)
        self._masked = self.spark.read.parquet("file://" + staged.folder)
        self._tally = tally_spark(self._masked, self.result.plan.scan_columns)
        self.result_tally_valid = self._tally.rows_valid
        return self._tally

    def _merge(self, target: Target, rows: Any, keys: list[str], n: int | None, per_bucket: Any, *,
               update: bool, on_read: Any = None) -> MergeMetrics:
        """Spool ``rows`` in buckets of ``keys``, pass each bucket through ``per_bucket`` and MERGE the stream on
        ``keys`` (``on_read``: called before each read of the stream, a retried commit reads it again)."""
        with path_lock(target), spooled(rows, bucket_by=keys, rows=n) as spool:
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
            return _first_per_key(t, [FINGERPRINT_COL], [])[0]

        n = self._tally.rows_quarantined if self._tally is not None else None
        return self._merge(self.spec.quarantine, self._quarantine(), [FINGERPRINT_COL], n, first,
                           update=False).inserted

    def write_bronze(self) -> Written:
        spec, w = self.spec, Written()
        n_valid = self.result_tally_valid
        order_cols = (ORDER_FILE_COL, ORDER_POS_COL)
        if spec.bronze_mode == "latest":
            superseded = [0]

            def newest(t: pa.Table) -> pa.Table:
                winners, dropped = _first_per_key(t, spec.record_key, _version_order(t, spec))
                superseded[0] += dropped
                return winners.drop_columns([c for c in order_cols if c in winners.column_names])

            m = self._merge(spec.bronze, self._valid(), spec.record_key, n_valid, newest, update=True,
                            on_read=lambda: superseded.__setitem__(0, 0))
            w.rows_inserted, w.rows_updated = m.inserted, m.updated
            w.rows_superseded = superseded[0]
        else:
            keys = [*spec.record_key, FINGERPRINT_COL]

            def first(t: pa.Table) -> pa.Table:
                return _first_per_key(t, keys, [])[0]

            w.rows_inserted = self._merge(spec.bronze, self._valid().drop(*order_cols), keys, n_valid, first,
                                          update=False).inserted
        w.rows_unchanged = n_valid - w.rows_inserted - w.rows_updated
        return w

    def versions(self) -> dict[str, list[int]]:
        """The versions of bronze and quarantine this run committed (``audit verify --against`` binds each commit
        to its run by version)."""
        return {name: DeltaRsTable(t).run_versions(self.spec.run_id)
                for name, t in (("bronze", self.spec.bronze), ("quarantine", self.spec.quarantine))}

    def release(self) -> None:
        super().release()
        if self._stage is not None:
            self._stage.close()
            self._stage = None


def make_flow(spark: Any, result: MaskResult, spec: WriteSpec) -> SparkFlow:
    if spec.table_format == "delta" and spec.bronze.is_path != spec.quarantine.is_path:
        raise UsageError("bronze and quarantine must both be paths or both be table names")
    if uses_deltars(spark, spec.bronze, spec.table_format):
        try:
            import deltalake  # noqa: F401
        except ImportError:
            raise UsageError("writing Delta paths on this engine needs delta-rs: pip install 'lakehouse-phi[local]'"
                             ) from None
        return DeltaRsFlow(result, spec)
    return SparkFlow(result, spec)
