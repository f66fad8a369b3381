"""Reading Delta tables without Spark: moved to :func:`lakehouse_phi.storage.delta.read_delta` (re-exported)."""

from lakehouse_phi.storage.delta import read_delta

__all__ = ["read_delta"]
