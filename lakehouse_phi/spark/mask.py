"""``lakehouse_phi.mask(df, policy, table)``: the one engine under the batch job, the streaming job, the notebooks
and Lakeflow Declarative Pipelines. DataFrame in, a ``MaskResult`` (``valid``, ``quarantine``) out, like DQX's
``apply_checks_and_split``.

Lazy: no Spark action runs (the drift check reads the schema only), so it works on batch and streaming frames.
One ``mapInArrow`` over :class:`~lakehouse_phi.engine.plan.IngestPlan` parses, checks, masks, fingerprints and
scans every row in one Python pass.
"""

from __future__ import annotations

import dataclasses
import functools
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lakehouse_phi.engine.drift import check_drift
from lakehouse_phi.engine.plan import IngestPlan, TablePlan, key_needs
from lakehouse_phi.errors import UsageError
from lakehouse_phi.keys.providers import Fetchers, KeyRing, load_keys
from lakehouse_phi.policy import columns
from lakehouse_phi.policy.load import LoadedPolicy
from lakehouse_phi.policy.model import KeySpec
from lakehouse_phi.spark.session import functions
from lakehouse_phi.spark.tally import Tally

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

RUN_ID_COL = columns.RUN_ID
INGESTED_AT_COL = columns.INGESTED_AT
QUARANTINED_AT_COL = columns.QUARANTINED_AT
KEY_VERSIONS_COL = columns.KEY_VERSIONS


@dataclass
class MaskResult:
    """The two halves of one masked frame: exactly what the writers write.

    ``valid`` and ``quarantine`` are split from ``masked`` when first read (:func:`split_masked`; building the two
    frames costs a dozen plan analyses in the driver, which a caller that reads one half, or only ``masked``, does
    not pay).

    Attributes:
        valid: bronze rows: the policy's output columns, ``_source_file``, ``_row_fingerprint``,
            ``_ingest_run_id``, ``_key_versions``, ``_ingested_at``; under ``bronze_mode: latest`` also
            ``_lhp_order_file``/``_lhp_order_pos`` (the writers order versions of a key by them, then drop them).
        quarantine: rows that failed a check, masked like bronze, with ``_phi_errors`` (column and rule, never a
            value) and ``_quarantined_at`` instead of ``_ingested_at``.
        masked: every row of the pass once, before the split (with ``_phi_errors`` and ``_phi_scan_hits``): what
            is evaluated once (:mod:`lakehouse_phi.spark.staging`) and then split; benchmarks measure it.
        plan: the compiled pass (its ``plan.column_report()`` feeds the audit event).
        run_id: the value of ``_ingest_run_id``.
        dropped: undeclared source columns dropped under ``on_unclassified: drop``.
        tally: counts of the pass (rows, quarantined, reasons, PHI-scan hits); ``None`` until the pass is
            evaluated once (:func:`lakehouse_phi.spark.staging.evaluated`, which the job runs before any decision).
    """

    masked: DataFrame
    plan: IngestPlan
    run_id: str
    dropped: list[str] = field(default_factory=list)
    tally: Tally | None = None

    @functools.cached_property
    def _halves(self) -> tuple[DataFrame, DataFrame]:
        return split_masked(self.masked, ordered=self.plan.ordered)

    @property
    def valid(self) -> DataFrame:
        return self._halves[0]

    @property
    def quarantine(self) -> DataFrame:
        return self._halves[1]

    @property
    def key_versions(self) -> dict[str, int]:
        return key_versions(self.plan)

    def over(self, masked: DataFrame, tally: Tally | None = None) -> MaskResult:
        """The same result over another frame of the pass's rows (the staged copy, a micro-batch): split again."""
        return dataclasses.replace(self, masked=masked, tally=tally)


def key_versions(plan: IngestPlan) -> dict[str, int]:
    """Output column -> key version for every keyed output (hmac, encrypt, fpe, date_shift), and the fingerprint."""
    out = plan.plan.key_versions()
    out[columns.FINGERPRINT] = plan.fingerprint_key_version
    return out


def resolve_keys(loaded: LoadedPolicy, table: str, *, key_overrides: Mapping[str, KeySpec] | None = None,
                 fetchers: Fetchers | None = None) -> KeyRing:
    """Every key the table needs (strategies and the fingerprint), before any data is read."""
    spec = loaded.policy.tables[table]
    return load_keys({**loaded.policy.keys, **(key_overrides or {})}, key_needs(spec), fetchers)


def build_plan(loaded: LoadedPolicy, table: str, keys: KeyRing,
               rosters: Mapping[str, Sequence[str | None]] | None = None) -> IngestPlan:
    try:
        return IngestPlan(TablePlan(loaded, table, keys, rosters))
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def mask(df: DataFrame, policy: LoadedPolicy, table: str, *, keys: KeyRing | None = None, run_id: str | None = None,
         fetchers: Fetchers | None = None, where: str | None = None,
         source_columns: Sequence[str] | None = None,
         rosters: Mapping[str, Sequence[str | None]] | None = None) -> MaskResult:
    """Mask a DataFrame (batch or streaming) under ``tables.<table>`` of ``policy`` (what ``load_policy`` returns).

    Args:
        df: string-typed (or castable) source columns named as the policy declares; a ``_source_file`` column is
            carried through when present.
        keys: resolved keys (default: resolved now from the policy's providers).
        run_id: the value of ``_ingest_run_id`` (default: a new uuid4).
        where: how messages name the source (default: ``the DataFrame``).
        rosters: ``table.column`` -> values, for ``scrub_text``'s ``known:`` (see
            :func:`lakehouse_phi.engine.plan.roster_refs`; :func:`lakehouse_phi.spark.rosters.read_rosters`).
        source_columns: the source's own column names for the drift check, when ``df`` already holds only the
            declared ones (the landing read maps CSV headers by name); default ``df.columns``.

    Raises:
        UsageError: unknown table.
        JobRefused: schema drift (a declared column missing; an undeclared one under ``on_unclassified: fail``).
        KeyMaterialError: a key cannot be resolved.
    """
    if table not in policy.policy.tables:
        raise UsageError(f"no table {table!r} under tables: in {policy.path} "
                         f"(declared: {', '.join(policy.policy.tables)})")
    spec = policy.policy.tables[table]
    source = [c for c in (df.columns if source_columns is None else source_columns)
              if c not in (columns.SOURCE_FILE, columns.CORRUPT)]
    plan = build_plan(policy, table, keys if keys is not None else resolve_keys(policy, table, fetchers=fetchers),
                      rosters)
    source_types = {f.name: f.dataType.jsonValue() for f in df.schema.fields}
    drift = check_drift(spec, table, source, where or "the DataFrame", plan.plan.names, source_types)
    run_id = run_id or str(uuid.uuid4())
    F = functions(df.sparkSession)
    source_file = (F.col(columns.SOURCE_FILE).cast("string") if columns.SOURCE_FILE in df.columns
                   else F.lit(None).cast("string")).alias(columns.SOURCE_FILE)
    hidden = []
    if plan.ordered:  # latest: the later file, then the later row, wins among versions of one key in a batch
        hidden = [(F.col(columns.SOURCE_FILE).cast("string") if columns.SOURCE_FILE in df.columns
                   else F.lit(None).cast("string")).alias(columns.ORDER_FILE),
                  F.monotonically_increasing_id().alias(columns.ORDER_POS)]
    # a row that did not parse (_corrupt_record, from the landing read or Auto Loader's rescue): quarantined, all NULL
    corrupt = [F.col(columns.CORRUPT).cast("string").alias(columns.CORRUPT)] if columns.CORRUPT in df.columns else []
    selected = df.select(*[_landing_column(F, c, spec.columns[c].nested or spec.columns[c].type == "json",
                                           source_types.get(c)) for c in spec.columns],
                         source_file, *corrupt, *hidden)
    passed = selected.mapInArrow(plan.process_iter, plan.result_ddl([columns.SOURCE_FILE]))
    versions = key_versions(plan)
    pairs = [x for k, v in sorted(versions.items()) for x in (F.lit(k), F.lit(v))]
    masked = passed.select("*", F.lit(run_id).alias(columns.RUN_ID),
                           F.create_map(*pairs).cast("map<string,int>").alias(columns.KEY_VERSIONS))
    return MaskResult(masked=masked, plan=plan, run_id=run_id, dropped=drift.dropped)


def split_masked(masked: DataFrame, *, ordered: bool | None = None) -> tuple[DataFrame, DataFrame]:
    """``(valid, quarantine)`` of the pass's rows (``MaskResult.masked``, a staged copy of it, or a table that
    holds it, as the Lakeflow notebook's staging table does): the one place the bronze/quarantine split is defined.
    ``ordered``: the plan's ``ordered`` (``bronze_mode: latest``: ``valid`` keeps the ordering columns for the
    writer, quarantine never does); ``None`` looks at the frame's columns."""
    F = functions(masked.sparkSession)
    has_errors = F.size(F.col(columns.ERRORS)) > 0
    now = F.current_timestamp()
    if ordered is None:
        ordered = columns.ORDER_POS in masked.columns
    order_cols = [columns.ORDER_FILE, columns.ORDER_POS] if ordered else []
    valid = masked.where(~has_errors).drop(columns.ERRORS, columns.SCAN_HITS).withColumn(columns.INGESTED_AT, now)
    quarantine = masked.where(has_errors).drop(columns.SCAN_HITS, *order_cols).withColumn(columns.QUARANTINED_AT, now)
    return valid, quarantine


def _landing_column(F: Any, name: str, structured: bool, source_type: Any) -> Any:
    """How a declared column enters the pass: a nested or ``json`` column as the source holds it (the engine takes
    it apart); a scalar one as a string, except a struct, array or map, which is passed as it is so that the engine
    quarantines its row instead of a stringified value reaching bronze; an optional column a JSON source lacks as
    NULL."""
    if source_type is None:
        return F.lit(None).cast("string").alias(name)
    complex_type = isinstance(source_type, dict)  # jsonValue(): a dict for struct, array and map, a name otherwise
    col = F.col(_backticked(name))
    return (col if structured or complex_type else col.cast("string")).alias(name)


def _backticked(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"
