"""Test helpers: fixed demo keys and the example policy's path."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from lakehouse_phi.policy.model import KeySpec

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "conf" / "policy.yaml"


def _b64(label: str) -> str:
    return base64.b64encode(hashlib.sha256(label.encode()).digest()).decode()


def demo_env() -> tuple[dict[str, str], dict[str, KeySpec]]:
    """Environment with a key for every key of the example policy, and the override that reads the
    databricks-provider key from the environment for local runs."""
    env = {
        "LAKEHOUSE_PHI_PSEUDONYM_KEY": _b64("pseudonym"),
        "LAKEHOUSE_PHI_DATE_SHIFT_KEY": _b64("date-shift"),
        "LAKEHOUSE_PHI_FPE_KEY": _b64("fpe"),
        "LAKEHOUSE_PHI_DEK": _b64("dek"),
    }
    return env, {"phi-dek": KeySpec(provider="env", ref="LAKEHOUSE_PHI_DEK", version=3)}
