"""The three rules every storage call shares, each written once:

* :func:`is_not_found` -- "there is no table there" (a narrow set: taking an existing table for a missing one would
  write without the record-key rule, or start a second audit chain at seq 0);
* :func:`is_conflict` -- "another writer committed first" (delta-rs ``CommitFailedError``, a lost create race,
  Delta's ``DELTA_CONCURRENT_*`` error classes / ``Concurrent*Exception``); never a catch-all, so a permission,
  schema or I/O error is not one;
* :class:`RetryPolicy` -- retries what :func:`is_conflict` accepts, with jittered backoff, and nothing else: any
  other error surfaces at once as itself. When every attempt lost, :class:`ConcurrentWriters` says so.

Errors are classified by type and Spark error class, never by reading a message that could quote data; the one
exception is engines that give no class at all (pysail, delta-rs's generic ``DeltaError``), where a fixed marker
list is matched against the message, which is then not shown.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from lakehouse_phi.errors import JobRefused

log = logging.getLogger(__name__)
T = TypeVar("T")


def spark_error_class(exc: BaseException) -> str:
    """The error class of a Spark exception, never its message (which may quote data); the Python class name when
    the engine gives none."""
    for getter in ("getCondition", "getErrorClass"):
        fn = getattr(exc, getter, None)
        if callable(fn):
            try:
                value = fn()
            except Exception:  # noqa: BLE001 - pragma: no cover; an accessor that fails has no class to give
                value = None
            if value:
                return str(value)
    m = re.match(r"^\s*\[([A-Z0-9_.]+)\]", str(exc))
    return m.group(1) if m else type(exc).__name__


def _java_class(exc: BaseException) -> str:
    """The Java exception class behind a Py4J error (classic Spark), else ''."""
    java = getattr(exc, "java_exception", None)
    try:
        return str(java.getClass().getName()) if java is not None else ""
    except Exception:  # noqa: BLE001 - a dead gateway: no class to give
        return ""


# ------------------------------------------------------------------------------------------------------ not found
#: Spark / Delta error classes meaning "no table or no data at that location".
NOT_FOUND_CLASSES = frozenset({
    "PATH_NOT_FOUND", "DELTA_PATH_DOES_NOT_EXIST", "DELTA_MISSING_DELTA_TABLE", "DELTA_TABLE_NOT_FOUND",
    "DELTA_MISSING_TRANSACTION_LOG", "TABLE_OR_VIEW_NOT_FOUND", "UNABLE_TO_INFER_SCHEMA",
})
#: Messages of engines that give no error class (pysail, older Delta) for the same situations.
NOT_FOUND_MARKERS = ("path_not_found", "path does not exist", "delta_path_does_not_exist", "no commit files found",
                     "delta_missing_delta_table", "is not a delta table", "unable_to_infer_schema",
                     "table_or_view_not_found", "no files found", "not a delta table")


def is_not_found(exc: BaseException) -> bool:
    """True when ``exc`` says the table (or path) does not exist; every other error is not this."""
    try:
        from deltalake.exceptions import TableNotFoundError

        if isinstance(exc, TableNotFoundError):
            return True
    except ImportError:  # pragma: no cover - Spark-only installs
        pass
    if isinstance(exc, FileNotFoundError):
        return True
    cls = spark_error_class(exc)
    if cls.split(".")[0] in NOT_FOUND_CLASSES:
        return True
    if isinstance(exc, PermissionError) or cls.startswith(("PERMISSION", "INSUFFICIENT")):
        return False
    text = f"{type(exc).__name__} {exc}".lower()
    return any(m in text for m in NOT_FOUND_MARKERS)


# ------------------------------------------------------------------------------------------------------- conflict
#: Delta's concurrency exceptions (delta-spark ``io.delta.exceptions``, Databricks ``com.databricks.sql...``).
CONFLICT_JAVA_CLASSES = ("ConcurrentAppendException", "ConcurrentDeleteReadException",
                         "ConcurrentDeleteDeleteException", "ConcurrentTransactionException",
                         "MetadataChangedException", "ProtocolChangedException", "ConcurrentWriteException")
#: A create that lost: the table (or its first commit) appeared between the existence check and the write.
CREATE_RACE_CLASSES = frozenset({"DELTA_TABLE_ALREADY_EXISTS", "TABLE_OR_VIEW_ALREADY_EXISTS", "PATH_ALREADY_EXISTS",
                                 "DELTA_PATH_EXISTS"})


def is_conflict(exc: BaseException) -> bool:
    """True when another writer won the commit (retry after re-reading); False for everything else."""
    try:
        from deltalake.exceptions import CommitFailedError, DeltaError, DeltaProtocolError

        if isinstance(exc, CommitFailedError):
            return True
        if isinstance(exc, DeltaError) and not isinstance(exc, DeltaProtocolError):
            # delta-rs's create with mode="error" that found version 0 written meanwhile
            return "already exists" in str(exc).lower() and "permission" not in str(exc).lower()
    except ImportError:  # pragma: no cover - Spark-only installs
        pass
    cls = spark_error_class(exc).split(".")[0]
    if cls.startswith("DELTA_CONCURRENT_") or cls in ("DELTA_METADATA_CHANGED", "DELTA_PROTOCOL_CHANGED"):
        return True
    if cls in CREATE_RACE_CLASSES:
        return True
    names = {type(exc).__name__, _java_class(exc).rsplit(".", 1)[-1]}
    return any(n in CONFLICT_JAVA_CLASSES for n in names)


class ConcurrentWriters(JobRefused):
    """Every attempt of a commit lost to another writer."""


@dataclass(frozen=True)
class RetryPolicy:
    """Retry a commit that another writer won (and nothing else).

    Attributes:
        attempts: tries in all (the first included).
        base_delay: seconds; attempt ``n`` waits ``base_delay * n`` times a jitter in [0.5, 1.5).
    """

    attempts: int = 8
    base_delay: float = 0.05

    def run(self, fn: Callable[[int], T], what: str, retry_on: tuple[type[BaseException], ...] = ()) -> T:
        """``fn(attempt)`` until it returns; a conflict (or an instance of ``retry_on``: a caller's own "another
        writer won", such as an audit seq taken) is retried, any other error propagates unchanged.

        Raises:
            ConcurrentWriters: every attempt lost to another writer (``what`` names the table).
        """
        for attempt in range(self.attempts):
            try:
                return fn(attempt)
            except Exception as exc:
                if not (isinstance(exc, retry_on) or is_conflict(exc)):
                    raise
                log.info("another writer committed to %s first (%s); attempt %d of %d", what,
                         spark_error_class(exc), attempt + 1, self.attempts)
                if attempt + 1 < self.attempts:
                    time.sleep(self.base_delay * (attempt + 1) * random.uniform(0.5, 1.5))
        raise ConcurrentWriters(f"{what}: another writer committed first on each of {self.attempts} attempts "
                                "(concurrent writers); rerun, or serialize the writers")


#: The project's one retry policy.
RETRY = RetryPolicy()
