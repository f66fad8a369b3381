"""Schema drift: the source's columns against the policy's declared columns, checked before any value is read."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lakehouse_phi.errors import JobRefused
from lakehouse_phi.policy.model import TableSpec


@dataclass(frozen=True)
class Drift:
    """What the source holds beyond the policy: the undeclared columns to drop (``on_unclassified: drop``)."""

    dropped: list[str]


def check_drift(spec: TableSpec, table: str, source_columns: Sequence[str], where: str) -> Drift:
    """Stop on a declared column missing from the source, and on an undeclared one under ``on_unclassified: fail``.

    Args:
        spec: the policy table.
        table: its name under ``tables:``.
        source_columns: the source's column names, in source order.
        where: the source, for messages (a path or a stream name).

    Raises:
        JobRefused: naming the missing or undeclared columns and the fix.
    """
    declared = list(spec.columns)
    undeclared = [c for c in source_columns if c not in spec.columns and not c.startswith("_corrupt")]
    missing = [c for c in declared if c not in source_columns]
    if missing:
        raise JobRefused(f"declared column(s) missing from the source {where}: {', '.join(missing)}; "
                         f"fix the extract or the policy's tables.{table}.columns")
    if undeclared and spec.on_unclassified == "fail":
        raise JobRefused(f"source column(s) not declared in tables.{table}.columns: {', '.join(undeclared)}; "
                         "declare each (with phi: and an ingest strategy if it may hold PHI) or set "
                         f"tables.{table}.on_unclassified: drop")
    return Drift(dropped=undeclared)
