"""Real Delta bronze/quarantine tables for the lifecycle tests, written with delta-rs: rows masked by the real
engine (``TablePlan``) under chosen key versions, with the row column contract (``_key_versions``,
``_ingested_at``, ``_ingest_run_id``, ``_row_fingerprint``)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from pathlib import Path

import pyarrow as pa

from lakehouse_phi.engine.plan import ERRORS_COL, TablePlan
from lakehouse_phi.keys.providers import KeyRing, SecretKey
from lakehouse_phi.policy import load_policy


def material(name: str, version: int) -> bytes:
    return hashlib.sha256(f"lifecycle-test/{name}/v{version}".encode()).digest()


KEY_NAMES = ("pseudonym", "token", "dek", "fpe-key", "shift", "trail")


def env_var(name: str, version: int) -> str:
    return f"LC_{name.upper().replace('-', '_')}_V{version}"


ENV = {env_var(n, v): base64.b64encode(material(n, v)).decode() for n in KEY_NAMES for v in (1, 2)}


def policy_text(bronze: Path, rotated: tuple[str, ...] = ("token", "dek", "fpe-key"), retention: int = 30) -> str:
    """Keys in ``rotated`` are at version 2 with version 1 under previous; the others at version 1."""
    keys = []
    for n in KEY_NAMES:
        if n in rotated:
            keys.append(f"  {n}: {{provider: env, ref: {env_var(n, 2)}, version: 2, previous: {{1: {env_var(n, 1)}}}}}")
        else:
            keys.append(f"  {n}: {{provider: env, ref: {env_var(n, 1)}, version: 1}}")
    return f"""
version: 1
name: lifecycle-test
audit: {{key: trail}}
keys:
{chr(10).join(keys)}
tables:
  patients:
    source: {{format: csv, path: landing/patients}}
    bronze: {bronze}
    quarantine: {bronze}_quarantine
    record_key: [mrn]
    retention_days: {retention}
    columns:
      mrn: {{type: string, required: true, phi: medical_record_number, ingest: {{strategy: hmac, key: pseudonym}}}}
      ssn: {{type: string, phi: ssn, ingest: {{strategy: encrypt, key: dek}},
            derive: {{ssn_token: {{strategy: hmac, key: token, normalize: digits}}}}}}
      member_id: {{type: string, phi: health_plan_number, ingest: {{strategy: fpe, key: fpe-key}}}}
      admit: {{type: date, phi: date, ingest: {{strategy: date_shift, key: shift, subject: mrn, max_days: 30}}}}
      state: {{type: string}}
      visit: {{type: date, derive: {{visit_shifted: {{strategy: date_shift, key: shift, subject: ssn, max_days: 30}}}}}}
"""


def ring(version: int | dict[str, int]) -> KeyRing:
    """Every key at ``version``, or at ``version[name]`` (default 1)."""
    vs = {n: (version if isinstance(version, int) else version.get(n, 1)) for n in KEY_NAMES}
    return KeyRing({n: SecretKey(n, vs[n], material(n, vs[n])) for n in KEY_NAMES})


def rows(n: int, start: int = 0) -> dict[str, list]:
    return {"mrn": [f"MRN{start + i:07d}" for i in range(n)],
            "ssn": [f"123-45-{start + i:04d}" for i in range(n)],
            "member_id": [f"M{start + i:08d}" for i in range(n)],
            "admit": [f"2024-0{1 + i % 9}-1{i % 10}" for i in range(n)],
            "state": ["NY"] * n,
            "visit": [f"2023-1{i % 3}-2{i % 10}" for i in range(n)]}


def masked(policy_path: Path, raw: dict[str, list], version: int | dict[str, int], ingested_at: dt.datetime,
           run_id: str) -> pa.Table:
    """Bronze rows as ingest writes them, every keyed output under ``version``."""
    loaded = load_policy(policy_path)
    plan = TablePlan(loaded, "patients", ring(version))
    out = plan.process(pa.record_batch({k: pa.array(v, pa.string()) for k, v in raw.items()}))
    table = pa.Table.from_batches([out]).drop_columns([ERRORS_COL])
    n = table.num_rows
    versions = [[(o.name, o.key_version) for o in plan.outputs if o.key_version is not None]] * n
    fps = [hashlib.sha256("|".join(str(raw[c][i]) for c in raw).encode()).hexdigest() for i in range(n)]
    return (table.append_column("_key_versions", pa.array(versions, pa.map_(pa.string(), pa.int32())))
            .append_column("_ingest_run_id", pa.array([run_id] * n, pa.string()))
            .append_column("_ingested_at", pa.array([ingested_at] * n, pa.timestamp("us", tz="UTC")))
            .append_column("_row_fingerprint", pa.array(fps, pa.string())))


def write(path: Path, table: pa.Table, run_id: str) -> None:
    from deltalake import CommitProperties, write_deltalake

    write_deltalake(str(path), table, mode="append", commit_properties=CommitProperties(
        custom_metadata={"userMetadata": run_id}))


def read(path: Path) -> pa.Table:
    from lakehouse_phi.deltars import read_delta

    return read_delta(path)
