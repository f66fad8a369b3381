"""A mask pass that counts the rows it processes into a file (one line per Arrow batch), for the tests that hold
the pass to one evaluation per run. Pickled by value, so Spark's Python workers need not import this module."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from lakehouse_phi.engine.plan import IngestPlan, TablePlan


class CountingPlan(IngestPlan):
    def __init__(self, plan: TablePlan, log: str) -> None:
        super().__init__(plan)
        self.log = log

    def __reduce__(self) -> tuple[Any, ...]:
        return (CountingPlan, (self.plan, self.log))

    def process_iter(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            fd = os.open(self.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, f"{batch.num_rows}\n".encode())
            finally:
                os.close(fd)
            if batch.num_rows:
                yield self.process(batch)


def rows_processed(log: Path) -> int:
    """Rows the pass processed, over every evaluation."""
    return sum(int(x) for x in log.read_text().split()) if log.exists() else 0


def counting_build_plan(log: Path) -> Any:
    """A replacement for ``lakehouse_phi.spark.mask.build_plan`` that builds a counting pass writing to ``log``."""
    from pyspark import cloudpickle

    import lakehouse_phi.spark.mask as mask_module
    import tests.spark.passcount as me

    cloudpickle.register_pickle_by_value(me)
    original = mask_module.build_plan

    def build(loaded: Any, table: str, keys: Any, rosters: Any = None) -> IngestPlan:
        return CountingPlan(original(loaded, table, keys, rosters).plan, str(log))

    return build
