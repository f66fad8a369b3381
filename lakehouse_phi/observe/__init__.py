"""Observing runs: their counts as OpenTelemetry metrics (:mod:`.metrics`, optional) and the policy's ``alerts:``
thresholds (:mod:`.alerts`). Counts and names only, never a value."""

from lakehouse_phi.observe.counts import RunCounts

__all__ = ["RunCounts"]
