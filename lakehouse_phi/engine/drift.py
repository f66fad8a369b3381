"""Schema drift: the source's columns against the policy's declared columns, checked before any value is read.

An undeclared column's *name* may itself be PHI (a JSON key, a stray CSV header), so undeclared columns are only
ever reported by position and a short keyed hash (:class:`~lakehouse_phi.engine.names.NameHasher`), never
verbatim: in messages, in ``details.dropped_columns`` and on stderr. Declared columns are named: their names come
from the policy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lakehouse_phi.engine.names import NameHasher
from lakehouse_phi.errors import JobRefused
from lakehouse_phi.policy import columns
from lakehouse_phi.policy.model import TableSpec

#: The column the landing reader puts a row's parse failure in (Spark's ``columnNameOfCorruptRecord``).
CORRUPT_COL = columns.CORRUPT


@dataclass(frozen=True)
class Drift:
    """What the source holds beyond the policy: the undeclared columns to drop (``on_unclassified: drop``), as
    labels ``#<position> h:<keyed hash>`` (position 1-based in source order)."""

    dropped: list[str]


def check_drift(spec: TableSpec, table: str, source_columns: Sequence[str], where: str,
                names: NameHasher | None = None, source_types: Mapping[str, Any] | None = None) -> Drift:
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
    missing = [c for c in declared if c not in source_columns and not _may_be_absent(spec, c)]
    if missing:
        raise JobRefused(f"declared column(s) missing from the source {where}: {', '.join(missing)}; "
                         f"fix the extract or the policy's tables.{table}.columns")
    if undeclared and spec.on_unclassified == "fail":
        raise JobRefused(f"{len(undeclared)} source column(s) not declared in tables.{table}.columns, by position "
                         f"and keyed hash (names are not shown: they may be PHI): {', '.join(labels)}; declare "
                         "each (with phi: and an ingest strategy if it may hold PHI) or set "
                         f"tables.{table}.on_unclassified: drop")
    inner = _undeclared_fields(spec, table, source_types or {}, names)
    return Drift(dropped=labels + inner)


def _may_be_absent(spec: TableSpec, column: str) -> bool:
    """A JSON source (FHIR resources, one object a line) omits a key no record of the file has: an optional
    declared column absent from the whole source is read as NULL; a required one is still missing."""
    return spec.source.format == "json" and not spec.columns[column].required


def _undeclared_fields(spec: TableSpec, table: str, source_types: Mapping[str, Any], names: NameHasher) -> list[str]:
    """Struct fields below nested columns that the policy does not declare: refused (``fail``) or dropped from
    the struct (``drop``), named by their parent's path, position and keyed hash, never by name."""
    from lakehouse_phi.engine.nested import spark_tree, undeclared_fields

    found: list[str] = []
    for cname, col in spec.columns.items():
        if col.nested and cname in source_types:
            found += undeclared_fields(cname, col, spark_tree(source_types[cname]), names)
    if found and spec.on_unclassified == "fail":
        raise JobRefused(f"{len(found)} field(s) inside nested columns not declared in tables.{table}.columns, by "
                         f"parent path, position and keyed hash (names are not shown: they may be PHI): "
                         f"{', '.join(found)}; declare each under the column's fields: (with phi: and an ingest "
                         f"strategy if it may hold PHI) or set tables.{table}.on_unclassified: drop")
    return found
