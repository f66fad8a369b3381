"""Warnings about a valid policy that is less safe than it could be: said by ``validate`` and by every run, never
an error (the policy still loads).
"""

from __future__ import annotations

import logging

from lakehouse_phi.policy.model import DEFAULT_AUDIT_RETENTION_DAYS, Policy

log = logging.getLogger(__name__)

#: The one sentence every command prints for a policy without ``audit.key``.
UNKEYED_TRAIL = ("audit.key is not set: the audit trail is hash-chained but not sealed, so whoever can write it can "
                 "rewrite an event, recompute every hash, and `audit verify` still says intact. Declare a key the "
                 "ingest principal reads but auditors' tools cannot write with (e.g. keys: {audit-trail: {provider: "
                 "databricks, ref: phi-keys/audit-trail}}) and set audit: {key: audit-trail}")


def policy_warnings(policy: Policy) -> list[str]:
    """What a compliance reviewer would flag in a policy that loads: an unsealed trail, a retention below six
    years."""
    out: list[str] = []
    if policy.audit_key is None:
        out.append(UNKEYED_TRAIL)
    if policy.audit_retention_days < DEFAULT_AUDIT_RETENTION_DAYS:
        out.append(f"audit.retention_days is {policy.audit_retention_days}: below six years "
                   f"({DEFAULT_AUDIT_RETENTION_DAYS} days), the retention HIPAA asks of audit records "
                   "(45 CFR 164.316(b)(2)); the Delta trail's log and deleted files may be cleaned up sooner")
    return out


def warn_about(policy: Policy) -> list[str]:
    """Log :func:`policy_warnings` (every command that writes the trail says them: the CLI prints the
    ``lakehouse_phi`` logger's warnings on stderr, jobs and notebooks log them) and return them."""
    found = policy_warnings(policy)
    for w in found:
        log.warning("%s", w)
    return found
