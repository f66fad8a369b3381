"""Keys and actors for the audit trail: the policy's ``audit.key`` resolved for sealing (ingest and the lifecycle
commands) and, with its older versions, for verifying; ``--key NAME[@VERSION]=PROVIDER:REF`` for a verifier without
the policy; and the actor an event names (the engine's ``session_user()`` where it has one).
"""

from __future__ import annotations

import getpass
import logging
import os
from collections.abc import Iterator, Mapping
from typing import Any

from lakehouse_phi.errors import UsageError
from lakehouse_phi.keys.providers import Fetchers, KeyRing, SecretKey, load_key, load_keys
from lakehouse_phi.policy.model import KEY_PROVIDERS, KeySpec, Policy

log = logging.getLogger(__name__)


def seal_key(policy: Policy, key_specs: Mapping[str, KeySpec] | None = None,
             fetchers: Fetchers | None = None) -> SecretKey | None:
    """The active version of the policy's ``audit.key`` (None when the policy has none). Resolve it before any data
    is read: a missing trail key stops the job (KeyMaterialError, exit 1)."""
    name = policy.audit_key
    if name is None:
        return None
    specs = {**policy.keys, **(key_specs or {})}
    return load_keys(specs, [(name, "hmac")], fetchers)[name]


def ring_seal_keys(ring: KeyRing, names: list[str]) -> dict[tuple[str, int], bytes]:
    """Every resolved version of ``names`` as ``(name, version) -> material``, for :func:`verify`."""
    return {(name, v): k.material for name in names for v, k in ring.all_versions(name).items()}


class SealKeyMap(Mapping[tuple[str, int], bytes]):
    """Seal keys by (name, version); material given without a version serves every version of that name not given
    explicitly (the verifier cannot know which one an operator meant)."""

    def __init__(self, exact: Mapping[tuple[str, int], bytes], any_version: Mapping[str, bytes]) -> None:
        self._exact, self._any = dict(exact), dict(any_version)

    def __getitem__(self, item: tuple[str, int]) -> bytes:
        if item in self._exact:
            return self._exact[item]
        return self._any[item[0]]

    def __iter__(self) -> Iterator[tuple[str, int]]:
        return iter(self._exact)

    def __len__(self) -> int:
        return len(self._exact)

    def __contains__(self, item: object) -> bool:
        return item in self._exact or (isinstance(item, tuple) and len(item) == 2 and item[0] in self._any)

    def get(self, item: tuple[str, int], default: Any = None) -> Any:
        return self[item] if item in self else default

    def __repr__(self) -> str:
        return f"SealKeyMap({sorted(self._exact)}, any={sorted(self._any)})"


def parse_key_args(items: list[str], fetchers: Fetchers | None = None) -> SealKeyMap:
    """``NAME[@VERSION]=PROVIDER:REF`` items resolved to material (KeyMaterialError naming the key on failure)."""
    exact: dict[tuple[str, int], bytes] = {}
    any_version: dict[str, bytes] = {}
    for item in items:
        left, sep, rest = item.partition("=")
        provider, sep2, ref = rest.partition(":")
        name, at, version = left.partition("@")
        if not (sep and sep2 and name and ref) or (at and not version.isdigit()):
            raise UsageError(f"--key {item!r}: write NAME=PROVIDER:REF or NAME@VERSION=PROVIDER:REF, e.g. "
                             "trail=env:LAKEHOUSE_PHI_TRAIL_KEY")
        if provider not in KEY_PROVIDERS:
            raise UsageError(f"--key {item!r}: provider must be one of {', '.join(KEY_PROVIDERS)}")
        spec = KeySpec(provider=provider, ref=ref, version=int(version) if at else 1)  # type: ignore[arg-type]
        key = load_key(name, spec, "hmac", fetchers)
        if at:
            exact[(name, int(version))] = key.material
        else:
            any_version[name] = key.material
    return SealKeyMap(exact, any_version)


def os_actor() -> str:
    """``LAKEHOUSE_PHI_ACTOR``, ``DATABRICKS_USER``, ``USER``, else the OS login name."""
    for var in ("LAKEHOUSE_PHI_ACTOR", "DATABRICKS_USER", "USER"):
        if os.environ.get(var):
            return os.environ[var]
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # pragma: no cover - no login name
        return "unknown"


def session_actor(spark: Any = None) -> str:
    """Who runs the job: ``LAKEHOUSE_PHI_ACTOR`` when set, else the engine's ``session_user()`` (the Databricks
    principal; on Databricks the OS user is ``root``), else :func:`os_actor`. Never raises."""
    if os.environ.get("LAKEHOUSE_PHI_ACTOR"):
        return os.environ["LAKEHOUSE_PHI_ACTOR"]
    if spark is not None:
        try:
            user = spark.sql("SELECT session_user() AS u").collect()[0][0]
            if isinstance(user, str) and user.strip():
                return user.strip()
        except Exception as exc:  # noqa: BLE001 - engines without session_user()
            log.debug("session_user() unavailable (%s); using the OS user", type(exc).__name__)
    return os_actor()
