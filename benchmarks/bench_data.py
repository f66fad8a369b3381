"""Benchmark inputs: demo keys, the worked example's policy (and a one-column ``hmac`` cut of it), compiled
:class:`TablePlan` objects, and the generated landing data written once to local Parquet.

The keys are fixed test keys (SHA-256 of a label), never real material; ``phi-dek`` (a ``databricks`` key in the
policy) is read from the environment for a local run, the way the tests do it.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from lakehouse_phi.engine.plan import TablePlan, key_needs
from lakehouse_phi.keys.local import local_keys, local_var
from lakehouse_phi.keys.providers import Fetchers, KeyRing, load_keys
from lakehouse_phi.policy.load import LoadedPolicy, load_policy, policy_from_data
from lakehouse_phi.policy.model import KeySpec

ROOT = Path(__file__).resolve().parents[1]
POLICY_PATH = ROOT / "conf" / "policy.yaml"
#: Files the landing Parquet is split into, so every variant scans the same, evenly split input.
PARQUET_FILES = 8


def demo_env() -> tuple[dict[str, str], dict[str, KeySpec]]:
    """Fixed local keys for every key of the example policy, and the override that reads the ``databricks``-provider
    key ``phi-dek`` from that environment."""
    return local_keys(example_policy().policy, seed="lakehouse-phi-benchmark")


def dek_b64() -> str:
    """Standard base64 of the local ``phi-dek`` (what ``secret('phi-keys', 'ssn-dek')`` returns in the benchmark)."""
    return demo_env()[0][local_var("phi-dek")]


def example_policy() -> LoadedPolicy:
    return load_policy(str(POLICY_PATH))


def hmac_only_policy() -> LoadedPolicy:
    """The example policy cut to ``patients.mrn`` with its ``hmac`` rule and nothing else (no required/pattern
    check): the work of variant (c), comparable to ``sha2`` over the same column."""
    data = yaml.safe_load(POLICY_PATH.read_text())
    patients = copy.deepcopy(data["tables"]["patients"])
    patients["columns"] = {"mrn": {"type": "string", "phi": "medical_record_number",
                                   "ingest": {"strategy": "hmac", "key": "pseudonym"}}}
    patients["on_unclassified"] = "drop"
    for release_key in ("risk", "export"):  # they name columns this cut leaves out
        patients.pop(release_key, None)
    data["tables"] = {"patients": patients}
    data.pop("governance", None)
    return LoadedPolicy(policy=policy_from_data(data, "benchmark"), sha256="0" * 64, path="<benchmark>")


def keys_for(loaded: LoadedPolicy, table: str) -> KeyRing:
    env, overrides = demo_env()
    specs = {**loaded.policy.keys, **overrides}
    return load_keys(specs, key_needs(loaded.policy.tables[table]), Fetchers(environ=env))


def plan_for(loaded: LoadedPolicy, table: str) -> TablePlan:
    return TablePlan(loaded, table, keys_for(loaded, table))


def key_bytes(name: str) -> bytes:
    """Raw test key bytes of one example-policy key (for the row-at-a-time UDFs, which take bytes)."""
    loaded = example_policy()
    env, overrides = demo_env()
    specs = {**loaded.policy.keys, **overrides}
    kind = "aes" if name in ("phi-dek", "fpe-key") else "hmac"
    return load_keys(specs, [(name, kind)], Fetchers(environ=env))[name].material


def write_landing_parquet(table: pa.Table, directory: Path, files: int = PARQUET_FILES) -> Path:
    """``table`` as ``files`` Parquet files of about equal size under ``directory`` (created)."""
    directory.mkdir(parents=True, exist_ok=True)
    bounds = np.linspace(0, table.num_rows, files + 1).astype(int)
    for k in range(files):
        part = table.slice(bounds[k], bounds[k + 1] - bounds[k])
        pq.write_table(part, directory / f"part-{k:03d}.parquet", row_group_size=64 * 1024)
    return directory
