"""The config validator: refuse insecure Spark, S3A and Databricks cluster settings before a job runs.

Importing it never imports PySpark. Typical pre-flight use::

    from lakehouse_phi.confcheck import check_session
    report = check_session(spark, paths=["s3a://phi-bronze/patients"])
    report.raise_on_errors()          # JobRefused (exit 1) naming every error finding
"""

from lakehouse_phi.confcheck.check import (
    Finding,
    NotApplied,
    PlatformManaged,
    Report,
    check,
    check_cluster_policy,
    check_session,
)
from lakehouse_phi.confcheck.compute import Compute, detect
from lakehouse_phi.confcheck.rules import RULES, RULES_BY_ID, Rule
from lakehouse_phi.confcheck.sources import (
    ClusterPolicy,
    Settings,
    Value,
    parse_conf_pairs,
    parse_properties,
    parse_submit_args,
    read_cluster_json,
    read_session,
    read_spark_defaults,
)

__all__ = [
    "RULES", "RULES_BY_ID", "ClusterPolicy", "Compute", "Finding", "NotApplied", "PlatformManaged", "Report", "Rule",
    "Settings", "Value", "check", "check_cluster_policy", "check_session", "detect", "parse_conf_pairs", "parse_properties", "parse_submit_args",
    "read_cluster_json", "read_session", "read_spark_defaults",
]
