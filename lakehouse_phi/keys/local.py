"""Key material for local runs (the demo, tests, benchmarks): one key for every key of a policy, never for
production. ``env`` keys are set under their own variable; keys of other providers (a ``databricks`` secret scope)
are read for the run from ``LAKEHOUSE_PHI_LOCAL_<NAME>`` through an override that keeps the policy's version.
"""

from __future__ import annotations

import base64
import hashlib
import secrets

from lakehouse_phi.policy.model import KeySpec, Policy

LOCAL_PREFIX = "LAKEHOUSE_PHI_LOCAL_"


def local_var(name: str) -> str:
    return LOCAL_PREFIX + name.upper().replace("-", "_")


def local_keys(policy: Policy, seed: str | None = None) -> tuple[dict[str, str], dict[str, KeySpec]]:
    """``(environment, overrides)``: 32-byte keys as standard base64, derived from ``seed`` (the same every run,
    for tests that compare runs) or random when ``seed`` is None (the demo)."""
    env: dict[str, str] = {}
    overrides: dict[str, KeySpec] = {}
    for name, spec in policy.keys.items():
        raw = (hashlib.sha256(f"{seed}/{name}".encode()).digest() if seed is not None
               else secrets.token_bytes(32))
        var = spec.ref if spec.provider == "env" else local_var(name)
        env[var] = base64.b64encode(raw).decode()
        if spec.provider != "env":
            overrides[name] = KeySpec(provider="env", ref=var, version=spec.version)
    return env, overrides
