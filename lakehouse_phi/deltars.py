"""Reading Delta tables without Spark, through delta-rs (``deltalake``): the audit verifier and the tests use it as
an independent Delta implementation.

Reads go through delta-rs's own query engine (``QueryBuilder``) and come back as a pyarrow Table over the Arrow
C stream. ``DeltaTable.to_pyarrow_table()`` / ``to_pyarrow_dataset()`` are avoided on purpose: with deltalake 1.6.6
and pyarrow 26 a process that scanned through them aborts at interpreter exit about half the time
("terminate called without an active exception"), which would turn a passing CLI run or test session into exit 134.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa


def read_delta(path: str | Path, columns: Sequence[str] | None = None) -> pa.Table:
    """The current version of the Delta table at ``path`` (a local path or an object-store URI)."""
    from deltalake import DeltaTable, QueryBuilder

    table = DeltaTable(str(path))
    select = ", ".join(f'"{c}"' for c in columns) if columns else "*"
    return pa.table(QueryBuilder().register("t", table).execute(f"SELECT {select} FROM t").read_all())
