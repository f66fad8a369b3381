"""Another source for a declared key, for one run: ``NAME=PROVIDER:REF`` (the ``--key`` option of ingest, export,
rekey, erase and purge; the ``lakehouse_phi.keys`` setting of the DLT pipeline)."""

from __future__ import annotations

from collections.abc import Iterable

from lakehouse_phi.errors import UsageError
from lakehouse_phi.policy.model import KEY_PROVIDERS, KeySpec, Policy

__all__ = ["parse_key_overrides"]


def parse_key_overrides(items: Iterable[str], policy: Policy) -> dict[str, KeySpec]:
    """``NAME=PROVIDER:REF`` items -> key name -> the :class:`KeySpec` to use instead; the policy's version is kept.

    Raises :class:`UsageError` (exit 2) naming the item: not of that form, a key the policy does not declare, or an
    unknown provider.
    """
    out: dict[str, KeySpec] = {}
    for item in items:
        name, sep, rest = item.partition("=")
        provider, sep2, ref = rest.partition(":")
        if not (sep and sep2 and name and ref):
            raise UsageError(f"--key {item!r}: write NAME=PROVIDER:REF, e.g. phi-dek=env:LAKEHOUSE_PHI_DEK")
        if name not in policy.keys:
            raise UsageError(f"--key {item!r}: no key {name!r} under keys: (declared: {', '.join(policy.keys)})")
        try:
            out[name] = KeySpec.model_validate({"provider": provider, "ref": ref,
                                                "version": policy.keys[name].version})
        except ValueError:
            raise UsageError(f"--key {item!r}: provider must be one of {', '.join(KEY_PROVIDERS)}") from None
    return out
