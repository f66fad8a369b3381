"""An append-only Delta audit trail written through delta-rs, for commands that run without Spark (``erase``,
``purge``, ``rekey``). Same table layout as :class:`~lakehouse_phi.audit.sinks.DeltaSink` (typed columns plus the
hashed ``record``), created with ``delta.appendOnly=true``; appends go through a delta-rs ``MERGE ... WHEN NOT
MATCHED`` on ``seq``, so two concurrent writers cannot both take the same ``seq`` (the loser re-reads and chains
after the winner).
"""

from __future__ import annotations

import logging
import random
import time
from typing import Any

import pyarrow as pa

from lakehouse_phi.audit.chain import seal
from lakehouse_phi.audit.sinks import DELTA_COLUMNS, _check_tail, _delta_row, read_trail
from lakehouse_phi.errors import JobRefused

log = logging.getLogger(__name__)
SCHEMA = pa.schema([pa.field(n, pa.int64() if t == "BIGINT" else pa.string()) for n, t in DELTA_COLUMNS])


class DeltaRsSink:
    """A Delta audit trail at a local path or object-store URI, through delta-rs."""

    retries = 8

    def __init__(self, target: str, seal_key: Any = None, commit_metadata: str | None = None) -> None:
        self.target, self.seal_key, self.commit_metadata = str(target), seal_key, commit_metadata

    def __repr__(self) -> str:
        return f"DeltaRsSink({self.target!r})"

    def _exists(self) -> bool:
        from deltalake import DeltaTable

        return DeltaTable.is_deltatable(self.target)

    def read_all(self) -> list[dict]:
        return read_trail(self.target) if self._exists() else []

    def last(self) -> dict | None:
        events = self.read_all()
        return events[-1] if events else None

    def append(self, event: dict) -> dict:
        from deltalake import CommitProperties, DeltaTable, write_deltalake

        props = CommitProperties(custom_metadata={"userMetadata": self.commit_metadata}) \
            if self.commit_metadata else None
        for attempt in range(self.retries):
            prev = self.last()
            _check_tail(prev, self.target)
            sealed = seal(event, prev, self.seal_key)
            row = pa.Table.from_pylist([dict(zip([n for n, _ in DELTA_COLUMNS], _delta_row(sealed)))], SCHEMA)
            try:
                if not self._exists():
                    write_deltalake(self.target, row, mode="error", configuration={"delta.appendOnly": "true"},
                                    commit_properties=props)
                else:
                    (DeltaTable(self.target).merge(row, "t.seq = s.seq", source_alias="s", target_alias="t",
                                                   commit_properties=props)
                     .when_not_matched_insert_all().execute())
            except Exception as exc:  # noqa: BLE001 - a concurrent writer won; re-read and chain after it
                log.debug("audit append attempt %d failed (%s)", attempt, type(exc).__name__)
                time.sleep(random.uniform(0.05, 0.3) * (attempt + 1))
                continue
            events = self.read_all()
            at_seq = [e for e in events if e.get("seq") == sealed["seq"]]
            if [e.get("hash") for e in at_seq] == [sealed["hash"]]:
                return sealed
        raise JobRefused(f"audit trail {self.target}: could not append after {self.retries} attempts (concurrent "
                         "writers); retry the command")
