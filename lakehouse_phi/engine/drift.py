"""Schema drift: the source's columns against the policy's declared columns, checked before any value is read.

An undeclared column's *name* may itself be PHI (a JSON key, a stray CSV header), so undeclared columns are only
ever reported by position and a short keyed hash (:class:`~lakehouse_phi.engine.names.NameHasher`), never
verbatim: in messages, in ``details.dropped_columns`` and on stderr. Declared columns are named: their names come
from the policy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lakehouse_phi.engine.names import NameHasher
from lakehouse_phi.errors import JobRefused
from lakehouse_phi.policy.model import TableSpec

#: The column the landing reader puts a row's parse failure in (Spark's ``columnNameOfCorruptRecord``).
CORRUPT_COL = "_corrupt_record"


@dataclass(frozen=True)
class Drift:
    """What the source holds beyond the policy: the undeclared columns to drop (``on_unclassified: drop``), as
    labels ``#<position> h:<keyed hash>`` (position 1-based in source order)."""

    dropped: list[str]


def check_drift(spec: TableSpec, table: str, source_columns: Sequence[str], where: str,
                names: NameHasher | None = None) -> Drift:
    """Stop on a declared column missing from the source, and on an undeclared one under ``on_unclassified: fail``.

    Args:
        spec: the policy table.
        table: its name under ``tables:``.
        source_columns: the source's column names, in source order.
        where: the source, for messages (a path or a stream name).
        names: hashes undeclared names under the table's fingerprint key; ``None``: position only.

    Raises:
        JobRefused: naming the missing columns, or labelling the undeclared ones, and the fix.
    """
    names = names or NameHasher(None)
    declared = list(spec.columns)
    undeclared = [c for c in source_columns if c not in spec.columns and c != CORRUPT_COL]
    labels = names.column_labels(undeclared, source_columns)
    missing = [c for c in declared if c not in source_columns]
    if missing:
        raise JobRefused(f"declared column(s) missing from the source {where}: {', '.join(missing)}; "
                         f"fix the extract or the policy's tables.{table}.columns")
    if undeclared and spec.on_unclassified == "fail":
        raise JobRefused(f"{len(undeclared)} source column(s) not declared in tables.{table}.columns, by position "
                         f"and keyed hash (names are not shown: they may be PHI): {', '.join(labels)}; declare "
                         "each (with phi: and an ingest strategy if it may hold PHI) or set "
                         f"tables.{table}.on_unclassified: drop")
    return Drift(dropped=labels)
