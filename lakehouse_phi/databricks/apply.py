"""Apply compiled governance statements on a Databricks SQL warehouse, one statement per request.

The statements are those of the compiled ``apply.sql`` (:class:`lakehouse_phi.sql.Compiled`), planned and run by
:mod:`lakehouse_phi.sql.plan` (shared with the notebook runner): the current state is read from
``information_schema`` first, protections run before every GRANT, a changed signature moves through a versioned
function so no column is ever unmasked, and a failure keeps every protection and revokes only the privileges the run
added, naming the failed statement (:class:`ApplyFailed`).

:class:`Warehouse` runs one statement through the Statement Execution API (``POST /api/2.0/sql/statements``, then
``GET`` while the warehouse works): an overall deadline (``--timeout``) and Ctrl-C cancel the running statement
(``POST …/cancel``); a transient HTTP error while submitting or polling (429, 5xx, a dropped connection) is retried
with exponential backoff until the deadline. Messages carry statement kinds, governed objects and the warehouse's
error code and first message line, never data.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from lakehouse_phi.sql.plan import (
    BINDING_KINDS,
    ApplyFailed,
    Plan,
    State,
    StatementFailed,
    execute,
    make_plan,
    read_state,
    signature_query,
)

log = logging.getLogger(__name__)

#: how long one request waits before the API answers PENDING/RUNNING, and the pause between polls
WAIT_TIMEOUT = "30s"
POLL_SECONDS = 1.0
#: first pause after a transient HTTP error (doubled each retry, at most BACKOFF_MAX)
BACKOFF_SECONDS = 0.5
BACKOFF_MAX = 10.0
#: the overall deadline of a run when --timeout is not given (seconds)
DEFAULT_TIMEOUT = 3600.0

__all__ = ["BINDING_KINDS", "ApplyFailed", "Plan", "State", "StatementFailed", "Warehouse", "execute", "make_plan",
           "read_state", "signature_query"]


def transient(exc: BaseException) -> bool:
    """A 429, a 5xx, or a connection-level error: worth retrying."""
    from databricks.sdk.errors import DatabricksError

    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    if isinstance(exc, DatabricksError):
        status = getattr(getattr(exc, "response", None), "status_code", None) or getattr(exc, "status_code", None)
        code = str(getattr(exc, "error_code", "") or "")
        name = type(exc).__name__
        return (isinstance(status, int) and (status == 429 or status >= 500)) or code in (
            "TEMPORARILY_UNAVAILABLE", "TOO_MANY_REQUESTS", "REQUEST_LIMIT_EXCEEDED", "INTERNAL_ERROR") or name in (
            "TooManyRequests", "TemporarilyUnavailable", "InternalError", "DeadlineExceeded")
    try:
        import requests

        return isinstance(exc, (requests.ConnectionError, requests.Timeout))
    except ImportError:  # pragma: no cover - requests comes with databricks-sdk
        return False


class Warehouse:
    """Runs one statement at a time on a SQL warehouse with a ``databricks.sdk.WorkspaceClient`` (unified
    authentication: ``DATABRICKS_HOST``/``DATABRICKS_TOKEN``, a config profile, OAuth for a service principal).
    ``timeout`` bounds the whole run (every statement, poll and retry): past it the running statement is cancelled
    and :class:`StatementFailed` (``TIMEOUT``) is raised."""

    def __init__(self, client: Any, warehouse_id: str, poll_seconds: float | None = None,
                 timeout: float | None = None) -> None:
        self.client, self.warehouse_id = client, warehouse_id
        self.poll_seconds = POLL_SECONDS if poll_seconds is None else poll_seconds
        self.deadline = time.monotonic() + (DEFAULT_TIMEOUT if timeout is None else timeout)
        self.statement_ids: list[str] = []
        self.cancelled: list[str] = []

    def _left(self) -> float:
        return self.deadline - time.monotonic()

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)``, retried with backoff on a transient error until the deadline."""
        from databricks.sdk.errors import DatabricksError

        pause = BACKOFF_SECONDS
        while True:
            try:
                return fn(*args, **kwargs)
            except Exception as exc:  # classified below
                if not transient(exc) or self._left() <= pause:
                    if isinstance(exc, DatabricksError) or transient(exc):
                        code = getattr(exc, "error_code", None) or type(exc).__name__
                        raise StatementFailed(str(code), (str(exc).splitlines() or [""])[0][:300]) from None
                    raise
                log.info("%s: transient error (%s); retrying in %.1f s", what, type(exc).__name__, pause)
                time.sleep(pause)
                pause = min(pause * 2, BACKOFF_MAX)

    def cancel(self, statement_id: str) -> None:
        """Best effort: the statement is being abandoned anyway."""
        try:
            self.client.statement_execution.cancel_execution(statement_id)
            self.cancelled.append(statement_id)
        except Exception as exc:  # noqa: BLE001
            log.warning("cancelling statement %s failed: %s", statement_id, type(exc).__name__)

    def run(self, sql: str) -> list[list[Any]]:
        """Run ``sql``; its result rows (inline JSON arrays, first chunk). Raises :class:`StatementFailed`."""
        from databricks.sdk.service.sql import ExecuteStatementRequestOnWaitTimeout, StatementState

        if self._left() <= 0:
            raise StatementFailed("TIMEOUT", "the run's --timeout passed before this statement was sent")
        api = self.client.statement_execution
        wait = f"{max(5, min(30, int(self._left())))}s" if self._left() < 30 else WAIT_TIMEOUT
        r = self._call("submit", api.execute_statement, statement=sql, warehouse_id=self.warehouse_id,
                       wait_timeout=wait, on_wait_timeout=ExecuteStatementRequestOnWaitTimeout.CONTINUE)
        try:
            while r.status is not None and r.status.state in (StatementState.PENDING, StatementState.RUNNING):
                if self._left() <= 0:
                    self.cancel(r.statement_id)
                    raise StatementFailed("TIMEOUT", "the run's --timeout passed; the statement was cancelled",
                                          r.statement_id)
                time.sleep(min(self.poll_seconds, max(self._left(), 0.0)))
                r = self._call("poll", api.get_statement, r.statement_id)
        except KeyboardInterrupt:
            if r.statement_id:
                self.cancel(r.statement_id)
            raise
        if r.statement_id:
            self.statement_ids.append(r.statement_id)
        state = r.status.state if r.status is not None else None
        if state != StatementState.SUCCEEDED:
            err = r.status.error if r.status is not None else None
            code = (err.error_code.value if hasattr(err.error_code, "value") else str(err.error_code)) \
                if err is not None and err.error_code is not None else (state.value if state else "UNKNOWN")
            message = (err.message or "").splitlines()[0][:300] if err is not None and err.message else \
                f"statement ended {state.value if state else 'without a state'}"
            raise StatementFailed(code, message, r.statement_id)
        return list(r.result.data_array or []) if r.result is not None else []
