"""Which compute a job runs on, and which rules the platform (not the user) satisfies there.

On Databricks **serverless** compute, Databricks manages the machines: their local disks (shuffle, spill, cache) are
encrypted by the platform, and the cluster-level Spark settings (``spark.io.encryption.*``, ``spark.authenticate``,
``spark.network.crypto.enabled``) can neither be set nor read. The checker records those rules as an explicit
*platform-managed* outcome (kept in the report and the ingest audit event) instead of an error. Everything the user
still controls is checked as everywhere else: S3A encryption settings, credentials in plain configuration, and every
rule on classic clusters, including **standard** (shared, Lakeguard) and **dedicated** access mode, whose cluster
spec the workspace's users write.

Evidence, all of it read, none of it trusted alone:

* serverless is recognised only from what an environment variable cannot fake: the session itself is a
  **Databricks Connect** session (its Spark Connect channel was built by ``databricks.connect``, or talks to a
  Databricks workspace host: :func:`lakehouse_phi.storage.engines.connect_workspace`, read once per session as
  ``caps(spark).workspace``) and the **workspace's own conf**, which that session
  reports from the server, shows no cluster id. ``DATABRICKS_RUNTIME_VERSION=client.<n>`` or ``IS_SERVERLESS=TRUE``
  alone (a local run, a job launched with a crafted environment) is recorded as evidence and then refused as
  serverless: the run is checked as the plain Spark it is;
* ``DATABRICKS_RUNTIME_VERSION`` is set on every Databricks compute;
* a session that shows a cluster id (``spark.databricks.clusterUsageTags.clusterId``) runs on a classic cluster,
  whatever the environment says, so an environment variable set in a cluster spec cannot turn a classic cluster into
  "serverless";
* the access mode comes from the cluster spec's ``data_security_mode`` or, in a session,
  ``spark.databricks.clusterUsageTags.dataSecurityMode``.

On a classic cluster, traffic between driver and executors is the platform's to encrypt where the instance type
does it in hardware: AWS instances of the families in :data:`ENCRYPTING_FAMILIES` encrypt traffic between each
other (AWS "Encryption in transit"; Databricks' "Encrypt traffic between cluster worker nodes" names them as the
alternative to its init script). When every node type of the cluster (``node_type_id`` and
``driver_node_type_id`` of the spec, or ``spark.databricks.clusterUsageTags.clusterNodeType`` /
``driverNodeType`` of the session) is one of them, ``rpc-encryption`` is platform-managed. Setting
``spark.authenticate=true`` instead is not enough there: outside YARN, Kubernetes and local masters Spark then
requires ``spark.authenticate.secret`` and the driver does not start without it.
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
NODE_TYPE_KEY = "spark.databricks.clusterUsageTags.clusterNodeType"
DRIVER_NODE_TYPE_KEY = "spark.databricks.clusterUsageTags.driverNodeType"
#: AWS instance families that encrypt traffic between instances of these families in hardware (Nitro; source:
#: https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/data-protection.html#encryption-transit), a conservative
#: subset of the published list: families outside it are checked as user-controlled.
ENCRYPTING_FAMILIES = frozenset({
    "c5n", "c6gn", "c6i", "c6id", "c6in", "c7i", "d3", "d3en", "g4dn", "g5", "i3en", "i4i", "m5dn", "m5n", "m5zn",
    "m6i", "m6id", "m6idn", "m6in", "m7i", "p4d", "r5dn", "r5n", "r6i", "r6id", "r6idn", "r6in", "r7i",
})
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
    node_types: tuple[str, ...] = ()  # the cluster's driver and worker instance types, where known

    @property
    def platform_managed(self) -> dict[str, str]:
        managed = dict(PLATFORM_MANAGED.get(self.kind, {}))
        if self.node_types and "rpc-encryption" not in managed and all(map(encrypts_in_transit, self.node_types)):
            managed["rpc-encryption"] = (
                f"instance type {', '.join(self.node_types)} encrypts the traffic between the cluster's nodes in "
                "hardware (AWS Nitro encryption in transit); spark.authenticate would need spark.authenticate.secret")
        return managed

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def detect(env: Mapping[str, str] | None = None, conf: Mapping[str, Any] | None = None,
           cluster_spec: Mapping[str, Any] | None = None, workspace: str | None = None) -> Compute:
    """The compute of a job from its environment variables, its session's settings, (if known) its cluster spec
    and ``workspace``, the Databricks workspace its session is connected to (``caps(spark).workspace``; None when
    the session is not a Databricks Connect session). See the module docstring for the evidence used."""
    env = os.environ if env is None else env
    conf = conf or {}
    runtime = env.get("DATABRICKS_RUNTIME_VERSION", "").strip()
    cluster_id = str(conf.get(CLUSTER_ID_KEY, "") or "").strip()
    serverless_env = runtime.lower().startswith("client.") or env.get("IS_SERVERLESS", "").strip().lower() == "true"
    env_evidence = ([f"DATABRICKS_RUNTIME_VERSION={runtime}"] if runtime else []) + (
        [f"IS_SERVERLESS={env['IS_SERVERLESS'].strip()}"] if env.get("IS_SERVERLESS") else [])
    if workspace and not cluster_id and cluster_spec is None:
        return Compute(SERVERLESS, (f"Databricks Connect session to {workspace}",
                                    f"the workspace's session conf shows no {CLUSTER_ID_KEY}", *env_evidence))
    if serverless_env and not cluster_id and cluster_spec is None:
        return Compute(SPARK, (*env_evidence, "not a Databricks Connect session: the environment alone does not "
                                              "make a run serverless, so every rule is checked"))
    if not runtime:
        return Compute(SPARK, ("DATABRICKS_RUNTIME_VERSION unset",))
    evidence = [f"DATABRICKS_RUNTIME_VERSION={runtime}", *env_evidence[1:]]
    if cluster_id:
        evidence.append(f"{CLUSTER_ID_KEY}={cluster_id}")
    mode = str((cluster_spec or {}).get("data_security_mode") or conf.get(ACCESS_MODE_KEY) or "").strip().upper()
    if mode:
        evidence.append(f"data_security_mode={mode}")
    kind = STANDARD if mode in _STANDARD_MODES else DEDICATED if mode in _DEDICATED_MODES else CLASSIC
    if cluster_spec is not None:
        worker, driver = cluster_spec.get("node_type_id"), cluster_spec.get("driver_node_type_id")
    else:
        worker, driver = conf.get(NODE_TYPE_KEY), conf.get(DRIVER_NODE_TYPE_KEY)
    nodes = tuple(dict.fromkeys(str(n).strip() for n in (worker, driver) if n and str(n).strip()))
    if worker and nodes:
        evidence.append(f"node types {', '.join(nodes)}")
    return Compute(kind, tuple(evidence), nodes if worker else ())


def encrypts_in_transit(node_type: str) -> bool:
    """Whether an instance type (``i3en.xlarge``) is of a family in :data:`ENCRYPTING_FAMILIES`."""
    return node_type.strip().lower().partition(".")[0] in ENCRYPTING_FAMILIES
