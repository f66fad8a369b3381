"""The config rules as data: what each rule reads, what it requires, how bad a miss is, and the fix.

The checker (:mod:`lakehouse_phi.confcheck.check`) walks this table; adding a rule of an existing kind is a row
here, not new code. Rule ids and meanings are fixed by ``shared/design/interfaces.md`` ("The config validator").

Scopes say where a rule is evaluated:

* ``spark``     – Spark settings, on every deployment (local runs spill and shuffle to disk too);
* ``cluster``   – Spark settings, only when executors run on other hosts (not ``local[...]`` masters);
* ``bucket``    – S3A settings, once per bucket the job touches, the per-bucket value winning;
* ``anywhere``  – any setting in any source whose key matches one of ``reads`` (credentials): Spark and Hadoop
  keys (core-site.xml included), environment variables (``env:`` — of the driver process, the executors and the
  cluster spec) and JVM system properties given in Java options (``jvm:`` — ``-Daws.secretAccessKey=…``);
* ``cluster-spec`` – attributes of a Databricks cluster spec (not Spark settings).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

Severity = Literal["error", "warn"]
Scope = Literal["spark", "cluster", "bucket", "anywhere", "cluster-spec"]


def norm(value: str | None) -> str | None:
    """Spark and Hadoop trim values (Java's ``String.trim``: characters up to U+0020, not NBSP or NEL) and compare
    booleans and enum names without case."""
    if value is None:
        return None
    start, end = 0, len(value)
    while start < end and value[start] <= " ":
        start += 1
    while end > start and value[end - 1] <= " ":
        end -= 1
    return value[start:end].lower()


@dataclass(frozen=True)
class IsTrue:
    """A boolean setting that must be ``true`` (unset means Spark's default, ``false``)."""

    #: values a user could try; used to test cluster-policy ``regex`` and ``blocklist`` constraints
    probes: tuple[str | None, ...] = ("false", "FALSE", " false", "False", None)

    def ok(self, value: str | None) -> bool:
        return norm(value) == "true"


@dataclass(frozen=True)
class AtLeast:
    """An integer setting that must be at least ``minimum``; unset means ``default``."""

    minimum: int
    default: int
    probes: tuple[str | None, ...] = ("128", "192", None)

    def ok(self, value: str | None) -> bool:
        v = norm(value)
        if v is None:
            return self.default >= self.minimum
        try:
            return int(v) >= self.minimum
        except ValueError:
            return False


@dataclass(frozen=True)
class OneOf:
    """An enum setting (compared trimmed, without case) that must be one of ``allowed``."""

    allowed: tuple[str, ...]
    probes: tuple[str | None, ...] = ("SSE-S3", "AES256", "none", "", "SSE-C", None)

    def ok(self, value: str | None) -> bool:
        return norm(value) in {a.lower() for a in self.allowed}


_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_MRK = r"mrk-[0-9a-f]{32}"
_ALIAS = r"alias/[a-z0-9/_-]{1,250}"
#: A KMS key ARN (any partition; key id, multi-region key id, or alias), a key id, a multi-region key id, or an alias.
KMS_KEY_RE = re.compile(
    rf"^(?:arn:aws(?:-[a-z]+)*:kms:[a-z]{{2}}(?:-[a-z]+)+-\d:\d{{12}}:(?:key/(?:{_UUID}|{_MRK})|{_ALIAS})"
    rf"|{_UUID}|{_MRK}|{_ALIAS})$",
    re.IGNORECASE,
)
#: The AWS managed key for S3: its key policy cannot be narrowed, so it cannot keep PHI from other principals.
AWS_MANAGED_ALIAS_RE = re.compile(r"(^|:)alias/aws/", re.IGNORECASE)


@dataclass(frozen=True)
class KmsKey:
    """A customer managed KMS key named by ARN, key id (UUID), multi-region key id (``mrk-…``) or ``alias/…``."""

    probes: tuple[str | None, ...] = ("alias/aws/s3", "", "not-a-key", None)

    def ok(self, value: str | None) -> bool:
        v = "" if value is None else value.strip()
        return bool(v) and KMS_KEY_RE.match(v) is not None and AWS_MANAGED_ALIAS_RE.search(v) is None


#: A Databricks secret reference: the value is fetched from a secret scope at cluster start, never stored in plain.
SECRET_REF_RE = re.compile(r"^\s*\{\{\s*secrets/[^/{}]+/[^/{}]+\s*\}\}\s*$")


@dataclass(frozen=True)
class Absent:
    """A secret that must not be written in plain configuration (empty values and ``{{secrets/…}}`` are fine)."""

    probes: tuple[str | None, ...] = ()

    def ok(self, value: str | None) -> bool:
        return value is None or not value.strip() or SECRET_REF_RE.match(value) is not None


Check = IsTrue | AtLeast | OneOf | KmsKey | Absent


@dataclass(frozen=True)
class Requirement:
    """One setting a rule reads and what it must hold.

    ``setting`` is a Spark key (``spark`` / ``cluster`` scopes), an S3A option suffix after ``fs.s3a.`` or
    ``fs.s3a.bucket.<bucket>.`` (``bucket`` scope, with its ``legacy`` suffix), a glob over Hadoop keys or
    cluster environment variables (``anywhere``), or a cluster-spec attribute (``cluster-spec``).
    ``secure`` is the value the fix writes.
    """

    setting: str
    check: Check
    secure: str
    legacy: str | None = None


@dataclass(frozen=True)
class Rule:
    id: str
    severity: Severity
    scope: Scope
    requires: tuple[Requirement, ...]
    summary: str
    #: ``{setting}`` is the key that won (or the one to add), ``{secure}`` the requirement's secure value
    fix: str
    reads: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.reads:
            object.__setattr__(self, "reads", tuple(r.setting for r in self.requires))


RULES: tuple[Rule, ...] = (
    Rule(
        id="io-encryption",
        severity="error",
        scope="spark",
        requires=(Requirement("spark.io.encryption.enabled", IsTrue(), "true"),),
        summary="shuffle and spill files are encrypted on local disk",
        fix="set {setting}={secure} (at cluster or spark-submit level: it cannot be changed in a running session)",
    ),
    Rule(
        id="io-encryption-key-size",
        severity="warn",
        scope="spark",
        requires=(Requirement("spark.io.encryption.keySizeBits", AtLeast(256, default=128), "256"),),
        summary="shuffle and spill files use 256-bit AES keys (Spark's default is 128)",
        fix="set {setting}={secure}",
    ),
    Rule(
        id="rpc-encryption",
        severity="warn",
        scope="cluster",
        requires=(
            Requirement("spark.authenticate", IsTrue(), "true"),
            Requirement("spark.network.crypto.enabled", IsTrue(), "true"),
        ),
        summary="driver and executors authenticate and encrypt their RPC and block transfers",
        fix="set {setting}={secure} (spark.network.crypto.enabled needs spark.authenticate=true, which outside "
            "YARN, Kubernetes and local masters also needs spark.authenticate.secret; on Databricks classic "
            "clusters use an instance type that encrypts traffic between nodes, or Databricks' init script that "
            "writes the secret)",
    ),
    Rule(
        id="s3a-sse-kms",
        severity="error",
        scope="bucket",
        requires=(
            Requirement("encryption.algorithm", OneOf(("SSE-KMS", "DSSE-KMS")), "SSE-KMS",
                        legacy="server-side-encryption-algorithm"),
        ),
        summary="every bucket the job touches is written with SSE-KMS (or DSSE-KMS)",
        fix="set {setting}={secure}; a per-bucket fs.s3a.bucket.<bucket>.* value overrides the global one",
    ),
    Rule(
        id="s3a-kms-key",
        severity="error",
        scope="bucket",
        requires=(
            Requirement("encryption.key", KmsKey(), "arn:aws:kms:<region>:<account>:key/<key-id>",
                        legacy="server-side-encryption.key"),
        ),
        summary="SSE-KMS uses a customer managed key named by ARN, key id, mrk- id or alias/…",
        fix="set {setting}={secure} (or a key id, mrk- id or alias/…; not the AWS managed alias/aws/s3)",
    ),
    Rule(
        id="s3a-static-credentials",
        severity="error",
        scope="anywhere",
        requires=tuple(
            Requirement(glob, Absent(), "")
            for glob in (
                "fs.s3a.access.key", "fs.s3a.secret.key", "fs.s3a.session.token",
                "fs.s3a.bucket.*.access.key", "fs.s3a.bucket.*.secret.key", "fs.s3a.bucket.*.session.token",
                "fs.s3.awsAccessKeyId", "fs.s3.awsSecretAccessKey",
                "fs.s3n.awsAccessKeyId", "fs.s3n.awsSecretAccessKey",
                "env:AWS_ACCESS_KEY_ID", "env:AWS_SECRET_ACCESS_KEY", "env:AWS_SESSION_TOKEN",
                "env:AWS_SECRET_KEY", "env:AWS_ACCESS_KEY",
                "jvm:aws.accessKeyId", "jvm:aws.secretAccessKey", "jvm:aws.secretKey", "jvm:aws.sessionToken",
                "jvm:fs.s3a.access.key", "jvm:fs.s3a.secret.key", "jvm:fs.s3a.session.token",
            )
        ),
        summary="no AWS access keys in plain configuration",
        fix="remove {setting}; use an instance profile / IAM role, a Hadoop credential provider, "
            "or a Databricks secret reference {{{{secrets/<scope>/<key>}}}}",
    ),
    Rule(
        id="local-disk-encryption",
        severity="error",
        scope="cluster-spec",
        requires=(Requirement("enable_local_disk_encryption", IsTrue(), "true"),),
        summary="Databricks encrypts the cluster's local disks (shuffle, spill, cache, temporary files)",
        fix='set "{setting}": {secure} in the cluster spec',
    ),
)

RULES_BY_ID: dict[str, Rule] = {r.id: r for r in RULES}

#: Spark settings holding JVM options: their ``-Dspark.*`` system properties become Spark settings of that JVM
#: (SparkConf loads them), and ``-Daws.*`` ones are credentials the AWS SDK reads.
JAVA_OPTION_KEYS = ("spark.driver.extraJavaOptions", "spark.executor.extraJavaOptions",
                    "spark.driver.defaultJavaOptions", "spark.executor.defaultJavaOptions",
                    "spark.yarn.am.extraJavaOptions")

#: Spark's default ``spark.redaction.regex``, plus ``encryption.key`` (an SSE-C key is a secret): values of matching
#: keys are never shown, whatever the rule.
REDACT_KEY_RE = re.compile(r"secret|password|token|access[.]?key|credential", re.IGNORECASE)
