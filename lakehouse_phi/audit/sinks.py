"""Where audit events are kept: an append-only JSON-lines file, or an append-only Delta table.

* :class:`JsonlSink` appends one canonical JSON line per event under an exclusive ``flock``, so two runs on the
  same machine cannot both chain onto the same last event, and fsyncs it.
* :class:`DeltaSink` writes through Spark (classic or Spark Connect; no ``sparkContext``) to a Delta table created
  with ``delta.appendOnly=true``. Each row has typed columns for querying and ``record``, the canonical JSON of the
  whole sealed event, which is what is verified. Rows of a Delta table have no order: the order is the chain
  (``seq`` and ``prev_hash`` inside the hashed record), so a changed ``seq`` breaks the hash and a moved one breaks
  the links. Appends go through ``MERGE ... WHEN NOT MATCHED`` on ``seq``, so two concurrent writers conflict instead
  of silently forking the chain; a fork that slips through is refused on the next append and named by ``verify``.

Reading for verification needs no Spark: JSON lines directly, a local Delta directory through ``deltalake``
(delta-rs).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
from collections.abc import Collection
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import pyarrow as pa

from lakehouse_phi.audit.chain import SealKeys, VerifyResult, canonical_json, event_hash, seal, verify
from lakehouse_phi.errors import JobRefused, UsageError
from lakehouse_phi.policy.model import DEFAULT_AUDIT_RETENTION_DAYS
from lakehouse_phi.storage.delta import Commit, DeltaRsTable, SparkDeltaTable, open_delta
from lakehouse_phi.storage.rules import RETRY
from lakehouse_phi.storage.targets import Target, is_jsonl, local_path

#: Typed columns of the Delta trail (besides ``record``), in table order, with their Spark SQL types.
DELTA_COLUMNS: tuple[tuple[str, str], ...] = (
    ("seq", "BIGINT"), ("event_id", "STRING"), ("run_id", "STRING"), ("ts", "STRING"), ("actor", "STRING"),
    ("event", "STRING"), ("policy_name", "STRING"), ("policy_sha256", "STRING"), ("table", "STRING"),
    ("rows_read", "BIGINT"), ("rows_written", "BIGINT"), ("rows_quarantined", "BIGINT"),
    ("prev_hash", "STRING"), ("hash", "STRING"), ("record", "STRING"),
)


log = logging.getLogger(__name__)


def trail_properties(retention_days: int = DEFAULT_AUDIT_RETENTION_DAYS) -> dict[str, str]:
    """The table properties a Delta trail is created with: append-only, and its transaction log and removed files
    kept at least ``retention_days`` (``audit.retention_days``, default six years), so neither a log cleanup nor a
    ``VACUUM`` can drop the history the chain is checked against."""
    interval = f"interval {retention_days} days"
    return {"delta.appendOnly": "true", "delta.logRetentionDuration": interval,
            "delta.deletedFileRetentionDuration": interval}


#: Delta's defaults when a retention property is not set (30 days of log, 7 days of removed files).
_DELTA_RETENTION_DEFAULTS = {"delta.logRetentionDuration": 30.0, "delta.deletedFileRetentionDuration": 7.0}
_INTERVAL_RE = re.compile(r"^\s*(?:interval\s+)?(\d+(?:\.\d+)?)\s*(\w+?)s?\s*$", re.IGNORECASE)
_UNIT_DAYS = {"second": 1 / 86400, "sec": 1 / 86400, "minute": 1 / 1440, "min": 1 / 1440, "hour": 1 / 24, "day": 1.0,
              "week": 7.0, "month": 30.0, "year": 365.0}


def _interval_days(text: str) -> float | None:
    """``interval 2190 days`` (Delta's CalendarInterval text) in days; None when it cannot be read."""
    m = _INTERVAL_RE.match(text or "")
    if not m or m.group(2).lower() not in _UNIT_DAYS:
        return None
    return float(m.group(1)) * _UNIT_DAYS[m.group(2).lower()]


def retention_problems(properties: dict[str, str], retention_days: int = DEFAULT_AUDIT_RETENTION_DAYS) -> list[str]:
    """What in a Delta trail's table properties lets its history go sooner than ``retention_days`` (or lets it be
    rewritten): each problem names the property, what it is and what it must be; empty when the trail is safe."""
    problems = []
    if str(properties.get("delta.appendOnly", "false")).lower() != "true":
        problems.append("delta.appendOnly is not true: rows of the trail can be updated or deleted; set it with "
                        "ALTER TABLE ... SET TBLPROPERTIES ('delta.appendOnly' = 'true')")
    for prop, default in _DELTA_RETENTION_DEFAULTS.items():
        raw = properties.get(prop)
        days = default if raw is None else _interval_days(raw)
        shown = f"{raw!r}" if raw is not None else f"not set (Delta's default: {default:g} days)"
        if days is None or days < retention_days:
            problems.append(f"{prop} is {shown}, shorter than the {retention_days} days the trail must be kept "
                            f"(audit.retention_days); set it to 'interval {retention_days} days'")
    return problems


@runtime_checkable
class AuditSink(Protocol):
    def last(self) -> dict | None:
        """The last sealed event, or None for an empty or missing trail."""

    def append(self, event: dict) -> dict:
        """Seal ``event`` after :meth:`last` and write it; return the sealed event."""

    def read_all(self) -> list[dict]:
        """Every sealed event, in chain order."""


def check_tail(prev: dict | None, where: str) -> None:
    """Refuse to chain onto a last event that does not match its own hash (the trail was damaged)."""
    if prev is None:
        return
    try:
        intact = isinstance(prev.get("hash"), str) and event_hash(prev) == prev["hash"]
    except (TypeError, ValueError):
        intact = False
    if not intact:
        raise JobRefused(f"audit trail {where}: its last event does not match its hash, so nothing can be chained "
                         f"onto it; run `lakehouse-phi audit verify {where}` and restore the trail")


# --------------------------------------------------------------------------------------------------- JSON lines
def _parse_line(line: bytes) -> dict | None:
    try:
        obj = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return None
    return obj if isinstance(obj, dict) else None


def _read_jsonl(path: Path) -> list[dict | None]:
    """Every non-blank line, parsed; None for a line that is not a JSON object (verify names it)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"audit trail {path}: no such file; pass the .jsonl file the ingest job wrote "
                         "(--audit)") from None
    except OSError as exc:
        raise UsageError(f"audit trail {path}: cannot read it ({exc.strerror}); check the path and "
                         "permissions") from None
    return [_parse_line(line) for line in data.split(b"\n") if line.strip()]


def _last_line(fd: int, path: Path) -> dict | None:
    """The last event of an open JSON-lines file, reading backwards from the end."""
    size = os.fstat(fd).st_size
    if size == 0:
        return None
    block, tail = 1 << 16, b""
    pos = size
    while pos > 0:
        step = min(block, pos)
        pos -= step
        tail = os.pread(fd, step, pos) + tail
        body = tail.rstrip(b"\n")
        if b"\n" in body or pos == 0:
            break
    if not tail.endswith(b"\n"):
        raise JobRefused(f"audit trail {path}: the last line is incomplete (an interrupted write or an edit); run "
                         f"`lakehouse-phi audit verify {path}` before appending")
    body = tail.rstrip(b"\n")
    last = body.rsplit(b"\n", 1)[-1]
    if not last.strip():
        return None
    event = _parse_line(last)
    if event is None:
        raise JobRefused(f"audit trail {path}: the last line is not a JSON object; run "
                         f"`lakehouse-phi audit verify {path}`")
    return event


class JsonlSink:
    """An append-only JSON-lines audit trail (one canonical JSON object per line)."""

    def __init__(self, path: str | os.PathLike, seal_key: Any = None) -> None:
        self.path = Path(path)
        self.seal_key = seal_key  # a SecretKey: events are sealed with HMAC-SHA256 under it (audit.key)

    def __repr__(self) -> str:
        return f"JsonlSink({str(self.path)!r})"

    def last(self) -> dict | None:
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            return _last_line(fd, self.path)
        finally:
            os.close(fd)

    def append(self, event: dict) -> dict:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        created = not self.path.exists()
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # held until close: read-last, seal and write are one step
            prev = _last_line(fd, self.path)
            check_tail(prev, str(self.path))
            sealed = seal(event, prev, self.seal_key)
            data = (canonical_json(sealed) + "\n").encode("utf-8")
            written = os.write(fd, data)
            if written != len(data):  # pragma: no cover - a full disk
                raise JobRefused(f"audit trail {self.path}: short write; free disk space and verify the trail")
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:  # make the new directory entry durable too
            dfd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        return sealed

    def read_all(self) -> list[dict]:
        if not self.path.exists():
            return []
        events = _read_jsonl(self.path)
        for n, ev in enumerate(events):
            if ev is None:
                raise UsageError(f"audit trail {self.path}: event {n} is not a JSON object; run "
                                 f"`lakehouse-phi audit verify {self.path}`")
        return events  # type: ignore[return-value]


# --------------------------------------------------------------------------------------------------------- Delta
#: The trail's Arrow schema (the typed columns and ``record``), built once from :data:`DELTA_COLUMNS`.
DELTA_SCHEMA = pa.schema([pa.field(n, pa.int64() if t == "BIGINT" else pa.string()) for n, t in DELTA_COLUMNS])


def delta_row(sealed: dict) -> dict:
    """One sealed event as a row of the Delta trail: its typed columns plus ``record`` (the canonical JSON)."""
    values = {name: sealed.get(name) for name, _ in DELTA_COLUMNS[:-1]}
    values["record"] = canonical_json(sealed)
    return values


def _arrow_rows(events: list[dict]) -> pa.Table:
    return pa.Table.from_pylist([delta_row(e) for e in events], schema=DELTA_SCHEMA)


class DeltaSink:
    """An append-only Delta audit trail at a path (``/...``, ``s3://...``, ``dbfs:/...``) or a table name, written
    through the storage layer's one Delta adapter (:func:`lakehouse_phi.storage.delta.open_delta`): Spark SQL where
    the engine has Delta, delta-rs for a path elsewhere or without any Spark session (``erase``, ``purge``,
    ``rekey``).

    Args:
        spark: a SparkSession (classic or Spark Connect), or None for a path written through delta-rs.
        target: a path/URI (anything with ``/``) or a table name (``catalog.schema.table``; needs ``spark``).
        location: for a table name only, where to create it (engines such as pysail need one; Unity Catalog
            managed tables do not).
        seal_key: a SecretKey (``audit.key``): events are sealed with HMAC-SHA256 under it.
        run_id: recorded in each append's commit (``userMetadata``), so ``audit verify --against`` can tie it.
        retention_days: a new trail keeps its log and removed files this long (``audit.retention_days``).
    """

    def __init__(self, spark: Any, target: str, location: str | None = None, seal_key: Any = None,
                 run_id: str | None = None, retention_days: int = DEFAULT_AUDIT_RETENTION_DAYS) -> None:
        self.spark, self.target = spark, str(target)
        self.table = open_delta(Target.parse(self.target), spark, location=location)
        self.seal_key, self.run_id = seal_key, run_id
        self.retention_days = retention_days

    def __repr__(self) -> str:
        return f"DeltaSink({self.target!r})"

    def _rows(self, **query: Any) -> list[dict]:
        if not self.table.exists():
            return []
        return self.table.read_arrow([n for n, _ in DELTA_COLUMNS], **query).to_pylist()

    def _hashes_at(self, seq: int) -> set[str]:
        return {r["hash"] for r in self._rows(where_equals={"seq": seq})}

    def last(self) -> dict | None:
        rows = self._rows(newest=("seq", 2))
        if not rows:
            return None
        if len(rows) == 2 and rows[0]["seq"] == rows[1]["seq"]:
            raise JobRefused(f"audit trail {self.target}: two events record seq {rows[0]['seq']} (a fork); run "
                             f"`lakehouse-phi audit verify {self.target}`")
        event = _parse_line(rows[0]["record"].encode("utf-8")) if rows[0]["record"] else None
        if event is None:
            raise JobRefused(f"audit trail {self.target}: the record of its last event is not a JSON object; run "
                             f"`lakehouse-phi audit verify {self.target}`")
        return event

    def _source(self, sealed: dict) -> Any:
        rows = _arrow_rows([sealed])
        if isinstance(self.table, SparkDeltaTable):
            ddl = ", ".join(f"`{n}` {t}" for n, t in DELTA_COLUMNS)
            return self.spark.createDataFrame([tuple(delta_row(sealed).values())], schema=ddl)
        return rows

    def append(self, event: dict) -> dict:
        """Seal ``event`` after the last one and insert it unless its seq is taken (a MERGE on ``seq``); when
        another writer took that seq first, chain after it. Only a lost commit race is retried (the adapter's
        rule); any other error surfaces at once."""
        commit = Commit(run_id=self.run_id)
        self.table.create(DELTA_SCHEMA, trail_properties(self.retention_days), commit)

        def attempt(_n: int) -> dict:
            prev = self.last()
            check_tail(prev, self.target)
            sealed = seal(event, prev, self.seal_key)
            if not self._hashes_at(sealed["seq"]):
                self.table.merge(self._source(sealed), ["seq"], commit=commit)
            hashes = self._hashes_at(sealed["seq"])
            if hashes == {sealed["hash"]}:
                return sealed
            if sealed["hash"] in hashes:
                raise JobRefused(f"audit trail {self.target}: another writer appended seq {sealed['seq']} at the "
                                 "same time (a fork); run `lakehouse-phi audit verify` and serialize the writers")
            raise _SeqTaken(f"audit trail {self.target}: seq {sealed['seq']} was taken by another writer")

        return RETRY.run(attempt, f"audit trail {self.target}", retry_on=(_SeqTaken,))

    def read_all(self) -> list[dict]:
        return _strict(_events_from_rows(self._rows())[0], self.target)


class _SeqTaken(Exception):
    """Another writer appended this seq first: a lost race, retried like a commit conflict."""



def _strict(events: list[dict | None], where: str) -> list[dict]:
    for n, ev in enumerate(events):
        if ev is None:
            raise UsageError(f"audit trail {where}: event {n} is not a JSON object; run "
                             f"`lakehouse-phi audit verify {where}`")
    return events  # type: ignore[return-value]


def _events_from_rows(rows: list[dict]) -> tuple[list[dict | None], list[str | None]]:
    """Parse ``record`` of each Delta row and put them in chain order (the seq inside the hashed record).

    Returns the events (None where a record is unreadable) and, per event, which typed column disagrees with its
    record (None when all agree).
    """
    parsed = []
    for row in rows:
        record = row.get("record")
        event = _parse_line(record.encode("utf-8")) if isinstance(record, str) else None
        mismatch = None
        if event is None:
            mismatch = "record"
        else:
            for name, _ in DELTA_COLUMNS[:-1]:
                if row.get(name) != event.get(name):
                    mismatch = name
                    break
        seq = event.get("seq") if event is not None else row.get("seq")
        key = (0, seq, str(event.get("hash"))) if isinstance(seq, int) and event is not None else (1, 0, "")
        parsed.append((key, event, mismatch))
    parsed.sort(key=lambda t: t[0])
    return [p[1] for p in parsed], [p[2] for p in parsed]


def _delta_rows_local(path: str | Path) -> list[dict]:
    """Rows of a Delta trail through delta-rs (no Spark); object-store URIs use the usual environment
    credentials."""
    try:
        import deltalake  # noqa: F401
    except ImportError:
        raise UsageError(f"audit trail {path}: reading a Delta trail without Spark needs deltalake: "
                         "pip install 'lakehouse-phi[local]'") from None
    try:
        table = DeltaRsTable(str(path)).read_arrow([n for n, _ in DELTA_COLUMNS])
        if not table.num_columns:
            raise FileNotFoundError(str(path))
    except Exception as exc:  # noqa: BLE001 - delta-rs raises several types
        raise UsageError(f"audit trail {path}: not a readable Delta audit table ({type(exc).__name__}); pass the "
                         "directory the ingest job wrote (--audit)") from None
    return table.to_pylist()


def open_sink(target: str, spark: Any = None, seal_key: Any = None,
              retention_days: int = DEFAULT_AUDIT_RETENTION_DAYS) -> AuditSink:
    """A JSON-lines sink for ``*.jsonl`` / ``*.json``; a Delta sink (through ``spark``) for anything else.
    ``seal_key`` (a SecretKey, the policy's ``audit.key``) seals every event with HMAC-SHA256; a new Delta trail
    keeps its log and removed files ``retention_days`` (``audit.retention_days``).

    Raises:
        UsageError: a Delta target without a Spark session.
    """
    if is_jsonl(str(target)):
        return JsonlSink(target, seal_key)
    if spark is None:
        raise UsageError(f"audit trail {target}: not a .jsonl/.json file, so it is a Delta table, which needs a "
                         "Spark session; pass spark=, or give a path ending in .jsonl")
    return DeltaSink(spark, target, seal_key=seal_key, retention_days=retention_days)


def open_audit(target: str, seal_key: Any = None, run_id: str | None = None,
               retention_days: int = DEFAULT_AUDIT_RETENTION_DAYS) -> AuditSink:
    """A sink for commands that run without Spark (``erase``, ``purge``, ``rekey``): a JSON-lines file, or a Delta
    trail by path through delta-rs, each commit naming ``run_id``."""
    if is_jsonl(str(target)):
        return JsonlSink(target, seal_key)
    return DeltaSink(None, target, seal_key=seal_key, run_id=run_id, retention_days=retention_days)


def delta_trail_properties(target: str) -> dict[str, str] | None:
    """The table properties of a Delta trail at a local path or object-store URI (through delta-rs), or None for a
    JSON-lines trail or anything delta-rs cannot open (a table name is checked where Spark runs)."""
    if is_jsonl(str(target)) or not Target.parse(str(target)).is_path:
        return None
    try:
        table = DeltaRsTable(str(target))
        return table.properties() if table.exists() else None
    except Exception as exc:  # noqa: BLE001 - delta-rs raises several types; verify names the trail itself
        log.debug("no table properties for %s (%s)", target, type(exc).__name__)
        return None


def _trail_rows(target: str, spark: Any) -> tuple[list[dict | None], list[str | None]]:
    """Events in stored/chain order plus per-event typed-column disagreement (Delta only)."""
    if is_jsonl(target):
        events = _read_jsonl(Path(target))
        return events, [None] * len(events)
    local = local_path(target)
    remote_path = local is None and Target.parse(target).is_path
    if (local is not None and (Path(local) / "_delta_log").is_dir()) or (spark is None and remote_path):
        return _events_from_rows(_delta_rows_local(local or target))  # delta-rs: local, s3://, abfss://, dbfs: ...
    if spark is None:
        what = "no such file or directory" if not Path(target).exists() else "not a .jsonl file or a Delta directory"
        raise UsageError(f"audit trail {target}: {what}; pass the .jsonl file or the Delta directory the ingest "
                         "job wrote (a Delta table name needs a Spark session)")
    sink = DeltaSink(spark, target)
    if not sink.table.exists():
        raise UsageError(f"audit trail {target}: no such Delta table; check the name or path")
    return _events_from_rows(sink._rows())


def read_trail(target: str, spark: Any = None) -> list[dict]:
    """Every event of a trail in chain order: a ``.jsonl`` file directly, a local Delta directory through delta-rs
    (no Spark; also ``s3://``/``abfss://`` URIs with environment credentials), or a Delta path/table name through
    ``spark``. Delta rows are ordered by the ``seq`` inside their
    hashed ``record``; :func:`~lakehouse_phi.audit.chain.verify` still catches moved events through the links.

    Raises:
        UsageError: the trail is missing or unreadable, or an event is not a JSON object.
    """
    return _strict(_trail_rows(str(target), spark)[0], str(target))


def verify_trail(target: str, spark: Any = None, keys: SealKeys | None = None,
                 expect_key: str | Collection[str] | None = None) -> VerifyResult:
    """Read and verify a trail; for Delta also check every typed column agrees with the hashed ``record``.
    ``keys``/``expect_key``: see :func:`~lakehouse_phi.audit.chain.verify` (keyed trails).

    Raises:
        UsageError: the trail is missing or unreadable.
    """
    events, mismatches = _trail_rows(str(target), spark)
    result = verify(events, keys, expect_key)  # type: ignore[arg-type]
    bad_col = next((i for i, m in enumerate(mismatches) if m is not None and events[i] is not None), None)
    if bad_col is not None and (result.first_bad is None or bad_col < result.first_bad):
        ev = events[bad_col] or {}
        return VerifyResult(False, len(events), bad_col, ev.get("event_id"),
                            f"typed column {mismatches[bad_col]!r} disagrees with the hashed record", ev.get("seq"))
    return result
