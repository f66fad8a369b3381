"""Moved to :mod:`lakehouse_phi.storage.keycheck`; re-exported for callers of the previous layout."""

from lakehouse_phi.storage.keycheck import KEY_CHECKS_PROPERTY, recorded_key_checks

__all__ = ["KEY_CHECKS_PROPERTY", "recorded_key_checks"]
