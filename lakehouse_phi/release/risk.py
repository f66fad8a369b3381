"""Re-identification risk of a masked table: k-anonymity and l-diversity over its quasi-identifiers, with Spark.

* An *equivalence class* is a set of records with the same values of every quasi-identifier (NULL is a value).
* ``k`` is the size of the smallest class; ``l`` the fewest distinct values of a sensitive column within one class,
  the minimum over the sensitive columns (NULL counts as a value). A table with no sensitive column has no ``l``.
* Which columns: the bronze outputs of the columns flagged ``quasi_identifier`` / ``sensitive``. When the table has
  an ``export``, the measured columns are the exported outputs of those columns (``birth_year`` for a ``dob``
  kept raw in bronze but released generalized), so ``risk`` measures what ``export`` releases; otherwise each
  flagged column's own bronze column.

When the table has an ``export``, an exported output of a PHI column of a quasi-identifying category (ZIP, date,
date of birth, age) counts as a quasi-identifier even when not flagged: it links like one.

The smallest classes are listed by their quasi-identifier values only; a quasi-identifier that is a direct
identifier category (name, SSN, phone...) is shown as ``<hidden>``, and so is a quasi-identifier kept raw
(strategy ``keep``, such as an exact date of birth) in a class smaller than the required ``k`` (in every listed class
when the table has no ``risk.k``): for those only the counts are shown; generalized values (a year, a ZIP3) are
shown. Nothing here imports PySpark: the session's
``functions`` module comes from :func:`lakehouse_phi.spark.session.functions`.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import asdict, dataclass, field
from typing import Any

from lakehouse_phi.errors import JobRefused, UsageError
from lakehouse_phi.policy.model import QUASI_PHI, IngestRule, LeafSpec, TableSpec
from lakehouse_phi.policy.nested import Field, Index, column_tree, leaf_at, release_name, split_reference

log = logging.getLogger(__name__)

#: phi categories whose values may be shown in the smallest-classes listing (generalized quasi-identifiers).
SHOWABLE_PHI = (None, "zip", "date", "date_of_birth", "age")
#: Stands for NULL when counting distinct sensitive values (Spark's count(DISTINCT) skips NULL).
_NULL = "\u0000lakehouse_phi:null"
HIDDEN = "<hidden>"


@dataclass(frozen=True)
class ReleaseColumns:
    """The bronze columns measured: quasi-identifiers, sensitive columns, and those whose values may be shown."""

    quasi_identifiers: tuple[str, ...]
    sensitive: tuple[str, ...]
    showable: frozenset[str] = field(default_factory=frozenset)
    #: quasi-identifiers whose values are raw (strategy keep): hidden in a class smaller than k
    raw: frozenset[str] = field(default_factory=frozenset)


def release_columns(spec: TableSpec) -> ReleaseColumns:
    """Resolve the measured columns of a policy table (see the module docstring)."""
    qi: list[str] = []
    sens: list[str] = []
    show: set[str] = set()
    raw: set[str] = set()
    exported = {release_name(c) for c in spec.export.columns} if spec.export else None
    for name, src, rules in _release_sources(spec):
        col = src
        outputs = list(rules) if exported is not None or name not in rules else [name]
        chosen = [o for o in outputs if exported is None or o in exported]
        if col.quasi_identifier or (exported is not None and col.phi in QUASI_PHI and not col.sensitive):
            qi += chosen
            if col.phi in SHOWABLE_PHI:
                show.update(chosen)
            raw.update(o for o in chosen if rules[o].strategy == "keep")
        if col.sensitive:
            sens += chosen
    return ReleaseColumns(tuple(qi), tuple(sens), frozenset(show), frozenset(raw))


def _release_sources(spec: TableSpec) -> list[tuple[str, LeafSpec, dict[str, IngestRule]]]:
    """(column, the spec its outputs take their flags from, output -> rule): each column with its own output and
    derived outputs, and each output derived from a leaf of a nested column (``from: address[0].postalCode``) on
    its own, flagged as that leaf is (a leaf with ``quasi_identifier: true`` is measured through it), and each
    leaf an export names (``address[0].postalCode``, released as ``address_0_postalCode``), flagged as it is."""
    out: list[tuple[str, LeafSpec, dict[str, IngestRule]]] = []
    for name, col in spec.columns.items():
        own = {} if col.nested else {name: col.effective_ingest}
        own.update({d: r for d, r in col.derive.items() if r.source is None})
        if own:
            out.append((name, col, own))
        for dname, rule in col.derive.items():
            if rule.source is not None:
                leaf = leaf_at(column_tree(name, col), split_reference(rule.source)[1])
                if leaf is not None:
                    out.append((dname, leaf.spec, {dname: rule}))
    for ref in spec.export.columns if spec.export else ():
        column, steps = split_reference(ref)
        source = spec.columns.get(column)
        leaf = leaf_at(column_tree(column, source), steps) if steps and source is not None else None
        if leaf is not None:
            out.append((release_name(ref), leaf.spec, {release_name(ref): leaf.spec.effective_ingest}))
    return out


def with_leaves(df: Any, refs: list[str], F: Any) -> Any:
    """``df`` with each leaf reference among ``refs`` (``address[0].postalCode``) as a column of its
    :func:`release_name` (``address_0_postalCode``): NULL when the element or a parent is missing (``get``, which
    tolerates an index past the end even under ANSI). A reference to a column the table lacks is left out (the
    caller reports the missing column)."""
    for ref in refs:
        column, steps = split_reference(ref)
        if not steps or column not in df.columns:
            continue
        expr = F.col(column)
        for step in steps:
            if isinstance(step, Index):
                expr = F.get(expr, F.lit(step.i))
            elif isinstance(step, Field):
                expr = expr.getField(step.name)
        df = df.withColumn(release_name(ref), expr)
    return df


@dataclass
class RiskReport:
    table: str
    source: str
    quasi_identifiers: list[str]
    sensitive: list[str]
    records: int
    classes: int
    k: int | None
    l: int | None  # noqa: E741
    k_required: int | None
    l_required: int | None
    classes_below_k: int
    records_below_k: int
    classes_below_l: int
    records_below_l: int
    smallest: list[dict[str, Any]]

    @property
    def ok(self) -> bool:
        k_ok = self.k_required is None or self.k is None or self.k >= self.k_required
        l_ok = self.l_required is None or self.l is None or self.l >= self.l_required
        return k_ok and l_ok

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def read_masked(spark: Any, source: str) -> Any:
    """The masked table to measure or release: a Delta or Parquet path (Delta when it has a ``_delta_log``, or when
    Delta can read it), or a table name."""
    from lakehouse_phi.storage.targets import Target

    target = Target.parse(source)
    if not target.is_path:
        return spark.table(target.location)
    local = target.local
    if local is not None:
        if not os.path.exists(local):
            raise UsageError(f"--source {source!r}: no such path; give a bronze table name or a Delta/Parquet path")
        fmt = "delta" if os.path.isdir(os.path.join(local, "_delta_log")) else "parquet"
        return spark.read.format(fmt).load(target.location)
    try:
        df = spark.read.format("delta").load(target.location)
        df.schema  # noqa: B018 - analysis only
        return df
    except Exception:  # noqa: BLE001 - not a Delta table; the error class differs by engine (classic, Connect)
        log.debug("the release source is not readable as Delta; reading it as Parquet")
        return spark.read.format("parquet").load(target.location)


def class_frame(df: Any, qi: tuple[str, ...], sensitive: tuple[str, ...], F: Any) -> Any:
    """One row per equivalence class: the quasi-identifiers, ``_n`` (records) and ``_l_<col>`` per sensitive
    column."""
    aggs = [F.count(F.lit(1)).alias("_n")]
    aggs += [F.countDistinct(F.coalesce(F.col(s).cast("string"), F.lit(_NULL))).alias(f"_l_{s}") for s in sensitive]
    return df.groupBy(*[F.col(c) for c in qi]).agg(*aggs)


def cached(df: Any) -> Any:
    """``df.cache()`` where the engine has it (a Spark Connect server may not): it is read twice."""
    try:
        return df.cache()
    except Exception:  # noqa: BLE001 - an engine without persist; correctness does not depend on it
        return df


def uncache(df: Any) -> None:
    try:
        df.unpersist()
    except Exception:  # noqa: BLE001 - an engine without persist (see cached); nothing was cached
        log.debug("this engine has no unpersist; nothing to release")


def _class_l(sensitive: tuple[str, ...], F: Any) -> Any:
    return F.least(*[F.col(f"_l_{s}") for s in sensitive]) if len(sensitive) > 1 else F.col(f"_l_{sensitive[0]}")


def compute_risk(spark: Any, df: Any, table: str, source: str, cols: ReleaseColumns, k_required: int | None,
                 l_required: int | None, top: int = 10) -> RiskReport:
    """k, l and the smallest classes of ``df`` (a Spark DataFrame of the masked table)."""
    from lakehouse_phi.spark.session import functions

    F = functions(spark)
    if not cols.quasi_identifiers:
        raise UsageError(f"tables.{table}: no column has quasi_identifier: true; flag the columns an attacker could "
                         "link (birth year, ZIP, sex...)")
    missing = [c for c in (*cols.quasi_identifiers, *cols.sensitive) if c not in df.columns]
    if missing:
        raise JobRefused(f"{source}: column(s) {missing} are not in the table; is it the bronze of tables.{table}?")
    classes = class_frame(df, cols.quasi_identifiers, cols.sensitive, F)
    if cols.sensitive:
        classes = classes.withColumn("_l", _class_l(cols.sensitive, F))
    else:
        classes = classes.withColumn("_l", F.lit(None).cast("long"))
    classes = cached(classes)
    stats = _class_stats(classes, k_required or 1, l_required or 1, F)
    report = RiskReport(
        table=table, source=source, quasi_identifiers=list(cols.quasi_identifiers), sensitive=list(cols.sensitive),
        records=_int(stats["records"]) or 0, classes=_int(stats["classes"]) or 0,
        k=_int(stats["k"]), l=_int(stats["l"]), k_required=k_required,
        l_required=l_required if cols.sensitive else None,
        classes_below_k=_int(stats["classes_below_k"]) or 0, records_below_k=_int(stats["records_below_k"]) or 0,
        classes_below_l=(_int(stats["classes_below_l"]) or 0) if cols.sensitive else 0,
        records_below_l=(_int(stats["records_below_l"]) or 0) if cols.sensitive else 0,
        # without a k target every listed class counts as small: raw values are never shown for them
        smallest=_smallest(classes, cols, top, F, k_required if k_required is not None else sys.maxsize))
    uncache(classes)
    log.info("risk of %s: k=%s l=%s over %d classes", table, report.k, report.l, report.classes)
    return report


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _class_stats(classes: Any, k_req: int, l_req: int, F: Any) -> Any:
    """One row: classes, records, k, l, and the classes and records below the required k and l."""
    return classes.agg(
        F.count(F.lit(1)).alias("classes"), F.sum("_n").alias("records"), F.min("_n").alias("k"),
        F.min("_l").alias("l"),
        F.sum(F.when(F.col("_n") < k_req, 1).otherwise(0)).alias("classes_below_k"),
        F.sum(F.when(F.col("_n") < k_req, F.col("_n")).otherwise(0)).alias("records_below_k"),
        F.sum(F.when(F.col("_l") < l_req, 1).otherwise(0)).alias("classes_below_l"),
        F.sum(F.when(F.col("_l") < l_req, F.col("_n")).otherwise(0)).alias("records_below_l"),
    ).collect()[0]


def _smallest(classes: Any, cols: ReleaseColumns, top: int, F: Any, k: int) -> list[dict[str, Any]]:
    """The ``top`` smallest classes; a quasi-identifier not in ``cols.showable``, or raw (``cols.raw``) in a class
    smaller than ``k``, is shown as hidden."""
    order = [F.col("_n").asc(), F.col("_l").asc_nulls_last()] + [F.col(c).asc_nulls_first() for c in
                                                                   cols.quasi_identifiers]
    smallest = []
    for row in classes.orderBy(*order).limit(top).collect():
        small = int(row["_n"]) < k
        values = {c: (None if row[c] is None else str(row[c]))
                  if c in cols.showable and not (small and c in cols.raw) else HIDDEN
                  for c in cols.quasi_identifiers}
        smallest.append({"values": values, "records": int(row["_n"]), "l": _int(row["_l"])})
    return smallest


def risk_of_table(spark: Any, spec: TableSpec, table: str, source: str | None = None, top: int = 10) -> RiskReport:
    """:func:`compute_risk` for a policy table, over ``source`` (default: its bronze)."""
    from lakehouse_phi.spark.session import functions

    src = source or spec.bronze
    df = with_leaves(read_masked(spark, src), spec.export.columns if spec.export else [], functions(spark))
    return compute_risk(spark, df, table, src, release_columns(spec), spec.risk.k if spec.risk else None,
                        spec.risk.l if spec.risk else None, top)
