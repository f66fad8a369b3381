"""Test helpers: the example policy's path and fixed local keys for it."""

from __future__ import annotations

from pathlib import Path

from lakehouse_phi.keys.local import local_keys, local_var
from lakehouse_phi.policy import load_policy
from lakehouse_phi.policy.model import KeySpec

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "conf" / "policy.yaml"
#: where the local runs read the databricks-provider key ``phi-dek`` from
DEK_VAR = local_var("phi-dek")


def demo_env() -> tuple[dict[str, str], dict[str, KeySpec]]:
    """Fixed key material for every key of the example policy (the same in every process), and the override that
    reads the databricks-provider key from the environment."""
    return local_keys(load_policy(EXAMPLE).policy, seed="lakehouse-phi-tests")
