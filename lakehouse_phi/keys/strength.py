"""Weak key material, refused wherever a key enters the package: by every provider (``env``, ``file``,
``databricks``, ``aws-secrets-manager``, ``aws-kms``) in :func:`~lakehouse_phi.keys.providers.decode_material`, and
by every keyed strategy in :func:`~lakehouse_phi.transforms.base.require_key` (keys built in Python).

Refused: fewer than :data:`MIN_KEY_BYTES` bytes; one byte repeated (all zeros included); a short pattern repeated
(``abab...``, period up to half the length); fewer than :data:`MIN_DISTINCT` distinct byte values. Random material
(``openssl rand -base64 32``) never trips any of these: 32 random bytes hold about 30 distinct values and no period.
"""

from __future__ import annotations

#: The shortest key material accepted for any use (an AES-128 key); HMAC keys need 32 bytes.
MIN_KEY_BYTES = 16
#: Fewer distinct byte values than this (or than half the length, for the shortest keys) is not random material.
MIN_DISTINCT = 8


def weak_key_problem(raw: bytes) -> str | None:
    """Why ``raw`` is not acceptable key material (never showing it), or None."""
    n = len(raw)
    if n < MIN_KEY_BYTES:
        return f"too short: {n} bytes, at least {MIN_KEY_BYTES} (32 for HMAC keys)"
    if raw.count(raw[0]) == n:
        return "all zero bytes" if raw[0] == 0 else "one byte value repeated"
    for period in range(2, n // 2 + 1):
        if raw == (raw[:period] * (n // period + 1))[:n]:
            return f"a pattern of {period} bytes repeated"
    distinct = len(set(raw))
    if distinct < min(MIN_DISTINCT, n // 2):
        return f"only {distinct} distinct byte values"
    return None
