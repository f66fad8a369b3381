"""``lakehouse_phi.mask(df, policy, table)``: the one engine under the batch job, the streaming job, the notebooks
and Lakeflow Declarative Pipelines. DataFrame in, ``MaskResult(valid, quarantine)`` out, like DQX's
``apply_checks_and_split``.

Lazy: no Spark action runs (the drift check reads the schema only), so it works on batch and streaming frames.
One ``mapInArrow`` over :class:`~lakehouse_phi.engine.plan.IngestPlan` parses, checks, masks, fingerprints and
scans every row in one Python pass.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lakehouse_phi.engine.drift import CORRUPT_COL, check_drift
from lakehouse_phi.engine.plan import (
    ERRORS_COL,
    FINGERPRINT_COL,
    ORDER_FILE_COL,
    ORDER_POS_COL,
    SCAN_COL,
    SOURCE_FILE_COL,
    IngestPlan,
    TablePlan,
    key_needs,
)
from lakehouse_phi.errors import UsageError
from lakehouse_phi.keys.providers import Fetchers, KeyRing, load_keys
from lakehouse_phi.policy.load import LoadedPolicy
from lakehouse_phi.policy.model import KeySpec
from lakehouse_phi.spark.session import functions

RUN_ID_COL = "_ingest_run_id"
INGESTED_AT_COL = "_ingested_at"
QUARANTINED_AT_COL = "_quarantined_at"
KEY_VERSIONS_COL = "_key_versions"


@dataclass
class MaskResult:
    """The two halves of one masked frame, plus what the writers need.

    Attributes:
        valid: bronze rows: the policy's output columns, ``_source_file``, ``_row_fingerprint``,
            ``_ingest_run_id``, ``_ingested_at``, ``_key_versions``.
        quarantine: rows that failed a check, masked like bronze, with ``_phi_errors`` (column and rule, never a
            value) and ``_quarantined_at`` instead of ``_ingested_at``.
        masked: every row once, with ``_phi_errors`` and ``_phi_scan_hits`` (the writers split it themselves so
            that the pass runs once).
        plan: the compiled pass (its ``plan.column_report()`` feeds the audit event).
        run_id: the value of ``_ingest_run_id``.
        dropped: undeclared source columns dropped under ``on_unclassified: drop``.
    """

    valid: Any
    quarantine: Any
    masked: Any
    plan: IngestPlan
    run_id: str
    dropped: list[str] = field(default_factory=list)

    @property
    def key_versions(self) -> dict[str, int]:
        return key_versions(self.plan)


def key_versions(plan: IngestPlan) -> dict[str, int]:
    """Output column -> key version for every keyed output (hmac, encrypt, fpe, date_shift), and the fingerprint."""
    out = plan.plan.key_versions()
    out[FINGERPRINT_COL] = plan.fingerprint_key_version
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


def mask(df: Any, policy: LoadedPolicy, table: str, *, keys: KeyRing | None = None, run_id: str | None = None,
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
    columns = [c for c in (df.columns if source_columns is None else source_columns)
               if c not in (SOURCE_FILE_COL, CORRUPT_COL)]
    plan = build_plan(policy, table, keys if keys is not None else resolve_keys(policy, table, fetchers=fetchers),
                      rosters)
    source_types = {f.name: f.dataType.jsonValue() for f in df.schema.fields}
    drift = check_drift(spec, table, columns, where or "the DataFrame", plan.plan.names, source_types)
    run_id = run_id or str(uuid.uuid4())
    F = functions(df.sparkSession)
    source_file = (F.col(SOURCE_FILE_COL).cast("string") if SOURCE_FILE_COL in df.columns
                   else F.lit(None).cast("string")).alias(SOURCE_FILE_COL)
    hidden = []
    if plan.ordered:  # latest: the later file, then the later row, wins among versions of one key in a batch
        hidden = [(F.col(SOURCE_FILE_COL).cast("string") if SOURCE_FILE_COL in df.columns
                   else F.lit(None).cast("string")).alias(ORDER_FILE_COL),
                  F.monotonically_increasing_id().alias(ORDER_POS_COL)]
    # a row that did not parse (_corrupt_record, from the landing read or Auto Loader's rescue): quarantined, all NULL
    corrupt = [F.col(CORRUPT_COL).cast("string").alias(CORRUPT_COL)] if CORRUPT_COL in df.columns else []
    selected = df.select(*[_landing_column(F, c, spec.columns[c].nested or spec.columns[c].type == "json",
                                           source_types.get(c)) for c in spec.columns],
                         source_file, *corrupt, *hidden)
    passed = selected.mapInArrow(plan.process_iter, plan.result_ddl([SOURCE_FILE_COL]))
    versions = key_versions(plan)
    pairs = [x for k, v in sorted(versions.items()) for x in (F.lit(k), F.lit(v))]
    masked = (passed.withColumn(RUN_ID_COL, F.lit(run_id))
              .withColumn(KEY_VERSIONS_COL, F.create_map(*pairs).cast("map<string,int>")))
    valid, quarantine = split_masked(masked, ordered=plan.ordered)
    return MaskResult(valid=valid, quarantine=quarantine, masked=masked, plan=plan, run_id=run_id,
                      dropped=drift.dropped)


def split_masked(masked: Any, *, ordered: bool | None = None) -> tuple[Any, Any]:
    """``(valid, quarantine)`` of a masked frame (``MaskResult.masked``, or a table that holds it, as the Lakeflow
    notebook's staging table does): the one place the split is defined. ``ordered``: the plan's ``ordered`` (its
    ordering columns are dropped too); ``None`` looks at the frame's columns."""
    F = functions(masked.sparkSession)
    has_errors = F.size(F.col(ERRORS_COL)) > 0
    now = F.current_timestamp()
    if ordered is None:
        ordered = ORDER_POS_COL in masked.columns
    hidden_cols = [SCAN_COL, ORDER_FILE_COL, ORDER_POS_COL] if ordered else [SCAN_COL]
    valid = masked.where(~has_errors).drop(ERRORS_COL, *hidden_cols).withColumn(INGESTED_AT_COL, now)
    quarantine = masked.where(has_errors).drop(*hidden_cols).withColumn(QUARANTINED_AT_COL, now)
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
