"""Rosters for ``scrub_text``'s ``known:``: the values of other tables' columns, read from their landing sources.

``known: [patients.first_name, patients.last_name, patients.mrn, providers.name]`` on a note column makes every
patient's and provider's name and number an identifier to remove from every note, wherever it appears. The values
are read here, on the driver, from each named table's own source (the same reader as its ingest), distinct
values only, and handed to :func:`lakehouse_phi.mask`; the plan folds them into keys (lower case, accents removed)
and ships them with itself to the executors. They are never logged, counted by value, or written anywhere.
"""

from __future__ import annotations

from typing import Any

from lakehouse_phi.engine.plan import roster_refs
from lakehouse_phi.policy.load import LoadedPolicy
from lakehouse_phi.spark.read import read_landing


def read_rosters(spark: Any, loaded: LoadedPolicy, table: str) -> dict[str, list[str]]:
    """``table.column`` -> distinct non-NULL values, for every roster the rules of ``table`` name (``{}`` when none)."""
    by_table: dict[str, list[str]] = {}
    for ref in roster_refs(loaded, table):
        other, _, column = ref.rpartition(".")
        by_table.setdefault(other, []).append(column)
    out: dict[str, list[str]] = {}
    for other, columns in sorted(by_table.items()):
        spec = loaded.policy.tables[other]
        landing = read_landing(spark, spec.source.format, spec.source.path, spec.source.options,
                               declared=list(spec.columns))
        for column in columns:
            rows = landing.df.select(landing.df[column].cast("string").alias("v")).where("v IS NOT NULL").distinct()
            out[f"{other}.{column}"] = [r["v"] for r in rows.collect()]
    return out
