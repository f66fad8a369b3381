"""Which compute a job runs on, and which rules the platform (not the user) satisfies there.

On Databricks **serverless** compute, Databricks manages the machines: their local disks (shuffle, spill, cache) are
encrypted by the platform, and the cluster-level Spark settings (``spark.io.encryption.*``, ``spark.authenticate``,
``spark.network.crypto.enabled``) can neither be set nor read. The checker records those rules as an explicit
*platform-managed* outcome (kept in the report and the ingest audit event) instead of an error. Everything the user
still controls is checked as everywhere else: S3A encryption settings, credentials in plain configuration, and every
rule on classic clusters, including **standard** (shared, Lakeguard) and **dedicated** access mode, whose cluster
spec the workspace's users write.

Evidence, all of it read, none of it trusted alone:

* ``DATABRICKS_RUNTIME_VERSION`` is set on every Databricks compute; serverless reports ``client.<n>…`` (or sets
  ``IS_SERVERLESS=TRUE``);
* a session that shows a cluster id (``spark.databricks.clusterUsageTags.clusterId``) runs on a classic cluster,
  whatever the environment says, so an environment variable set in a cluster spec cannot turn a classic cluster into
  "serverless";
* the access mode comes from the cluster spec's ``data_security_mode`` or, in a session,
  ``spark.databricks.clusterUsageTags.dataSecurityMode``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

SERVERLESS, STANDARD, DEDICATED, CLASSIC, SPARK = (
    "databricks-serverless", "databricks-standard", "databricks-dedicated", "databricks-classic", "spark")
CLUSTER_ID_KEY = "spark.databricks.clusterUsageTags.clusterId"
ACCESS_MODE_KEY = "spark.databricks.clusterUsageTags.dataSecurityMode"
_STANDARD_MODES = {"USER_ISOLATION", "DATA_SECURITY_MODE_STANDARD", "DATA_SECURITY_MODE_AUTO"}
_DEDICATED_MODES = {"SINGLE_USER", "DATA_SECURITY_MODE_DEDICATED"}

_SERVERLESS_DISKS = ("Databricks serverless compute: the platform encrypts the compute's local disks (shuffle, spill, "
                     "cache); Spark's cluster-level settings cannot be set or read there")
#: compute kind -> {rule id: why the platform satisfies it}
PLATFORM_MANAGED: dict[str, dict[str, str]] = {
    SERVERLESS: {
        "io-encryption": _SERVERLESS_DISKS,
        "io-encryption-key-size": _SERVERLESS_DISKS,
        "local-disk-encryption": _SERVERLESS_DISKS,
        "rpc-encryption": "Databricks serverless compute: the platform manages the network between driver and "
                          "executors; spark.authenticate and spark.network.crypto.* cannot be set or read there",
    },
}


@dataclass(frozen=True)
class Compute:
    """The compute ``kind`` and the ``evidence`` for it (setting and variable names with their values: never
    secrets)."""

    kind: str
    evidence: tuple[str, ...] = ()

    @property
    def platform_managed(self) -> dict[str, str]:
        return PLATFORM_MANAGED.get(self.kind, {})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def detect(env: Mapping[str, str] | None = None, conf: Mapping[str, Any] | None = None,
           cluster_spec: Mapping[str, Any] | None = None) -> Compute:
    """The compute of a job from its environment variables, its session's settings and (if known) its cluster
    spec. See the module docstring for the evidence used."""
    env = os.environ if env is None else env
    conf = conf or {}
    runtime = env.get("DATABRICKS_RUNTIME_VERSION", "").strip()
    if not runtime:
        return Compute(SPARK, ("DATABRICKS_RUNTIME_VERSION unset",))
    evidence = [f"DATABRICKS_RUNTIME_VERSION={runtime}"]
    serverless_env = runtime.lower().startswith("client.") or env.get("IS_SERVERLESS", "").strip().lower() == "true"
    if env.get("IS_SERVERLESS"):
        evidence.append(f"IS_SERVERLESS={env['IS_SERVERLESS'].strip()}")
    cluster_id = str(conf.get(CLUSTER_ID_KEY, "") or "").strip()
    if cluster_spec is None and serverless_env and not cluster_id:
        return Compute(SERVERLESS, tuple(evidence + [f"no {CLUSTER_ID_KEY} in the session"]))
    if cluster_id:
        evidence.append(f"{CLUSTER_ID_KEY}={cluster_id}")
    mode = str((cluster_spec or {}).get("data_security_mode") or conf.get(ACCESS_MODE_KEY) or "").strip().upper()
    if mode:
        evidence.append(f"data_security_mode={mode}")
    kind = STANDARD if mode in _STANDARD_MODES else DEDICATED if mode in _DEDICATED_MODES else CLASSIC
    return Compute(kind, tuple(evidence))
