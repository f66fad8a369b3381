"""The config validator's rules, table-driven: (settings, paths, expected findings as ``rule`` or ``rule@bucket``)."""

from __future__ import annotations

import json

import pytest

from lakehouse_phi.confcheck import RULES, ClusterPolicy, Settings, check, check_cluster_policy
from lakehouse_phi.confcheck.sources import cluster_from_json, parse_properties
from lakehouse_phi.errors import JobRefused

ARN = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

SECURE: dict[str, str] = {
    "spark.io.encryption.enabled": "true",
    "spark.io.encryption.keySizeBits": "256",
    "spark.authenticate": "true",
    "spark.network.crypto.enabled": "true",
    "spark.hadoop.fs.s3a.encryption.algorithm": "SSE-KMS",
    "spark.hadoop.fs.s3a.encryption.key": ARN,
}
BRONZE = ["s3a://phi-bronze/patients"]
S3A = "spark.hadoop.fs.s3a."


def conf(*drop: str) -> dict[str, str]:
    return {k: v for k, v in SECURE.items() if k not in drop}


def with_(overrides: dict[str, str], *drop: str) -> dict[str, str]:
    return {**conf(*drop), **overrides}


def from_file(text: str) -> Settings:
    return parse_properties(text, "spark-defaults.conf")


SECURE_POLICY: dict[str, dict] = {
    "spark_conf.spark.io.encryption.enabled": {"type": "fixed", "value": "true"},
    "spark_conf.spark.io.encryption.keySizeBits": {"type": "fixed", "value": "256"},
    "spark_conf.spark.authenticate": {"type": "fixed", "value": "true"},
    "spark_conf.spark.network.crypto.enabled": {"type": "fixed", "value": "true"},
    "spark_conf.spark.hadoop.fs.s3a.encryption.algorithm": {"type": "fixed", "value": "SSE-KMS"},
    "spark_conf.spark.hadoop.fs.s3a.encryption.key": {"type": "fixed", "value": ARN},
    "enable_local_disk_encryption": {"type": "fixed", "value": True},
    # every other name that overrides the pinned ones (issue 23.7): the legacy names and the job's bucket's names
    "spark_conf.spark.hadoop.fs.s3a.server-side-encryption-algorithm": {"type": "forbidden"},
    "spark_conf.spark.hadoop.fs.s3a.server-side-encryption.key": {"type": "forbidden"},
    "spark_conf.spark.hadoop.fs.s3a.bucket.phi-bronze.encryption.algorithm": {"type": "forbidden"},
    "spark_conf.spark.hadoop.fs.s3a.bucket.phi-bronze.server-side-encryption-algorithm": {"type": "forbidden"},
    "spark_conf.spark.hadoop.fs.s3a.bucket.phi-bronze.encryption.key": {"type": "fixed", "value": ARN},
    "spark_conf.spark.hadoop.fs.s3a.bucket.phi-bronze.server-side-encryption.key": {"type": "forbidden"},
}


def policy(overrides: dict[str, dict | None]) -> ClusterPolicy:
    elements = {**SECURE_POLICY, **overrides}
    return ClusterPolicy("policy.json", {k: v for k, v in elements.items() if v is not None})


CASES: list[tuple[str, object, list[str], list[str]]] = [
    # --- io-encryption, values trimmed and compared without case
    ("secure baseline", SECURE, BRONZE, []),
    ("nothing set, on a cluster", {}, [],
     ["io-encryption", "io-encryption-key-size", "rpc-encryption", "rpc-encryption"]),
    ("io 'TRUE ' accepted", with_({"spark.io.encryption.enabled": "TRUE "}), [], []),
    ("io 'True' accepted", with_({"spark.io.encryption.enabled": "True"}), [], []),
    ("io tab-padded ' true\\t' accepted", with_({"spark.io.encryption.enabled": " true\t"}), [], []),
    ("io false", with_({"spark.io.encryption.enabled": "false"}), [], ["io-encryption"]),
    ("io 'yes' is not true", with_({"spark.io.encryption.enabled": "yes"}), [], ["io-encryption"]),
    ("io unset", conf("spark.io.encryption.enabled"), [], ["io-encryption"]),
    # --- io-encryption-key-size
    ("key size unset (default 128)", conf("spark.io.encryption.keySizeBits"), [], ["io-encryption-key-size"]),
    ("key size 192", with_({"spark.io.encryption.keySizeBits": "192"}), [], ["io-encryption-key-size"]),
    ("key size not a number", with_({"spark.io.encryption.keySizeBits": "big"}), [], ["io-encryption-key-size"]),
    ("key size ' 256 '", with_({"spark.io.encryption.keySizeBits": " 256 "}), [], []),
    # --- rpc-encryption: clusters only
    ("crypto without authenticate", conf("spark.authenticate"), [], ["rpc-encryption"]),
    ("authenticate 'FALSE'", with_({"spark.authenticate": "FALSE"}), [], ["rpc-encryption"]),
    ("local[2] master: rpc not applied", conf("spark.authenticate", "spark.network.crypto.enabled")
     | {"spark.master": "local[2]"}, [], []),
    ("Databricks single node local[*, 4]: rpc not applied",
     conf("spark.authenticate", "spark.network.crypto.enabled") | {"spark.master": "local[*, 4]"}, [], []),
    ("local-cluster is a cluster", conf("spark.authenticate") | {"spark.master": "local-cluster[2,1,1024]"}, [],
     ["rpc-encryption"]),
    ("standalone master", conf("spark.network.crypto.enabled") | {"spark.master": "spark://h:7077"}, [],
     ["rpc-encryption"]),
    # --- s3a-sse-kms: per bucket, per-bucket value winning, legacy names honoured
    ("per-bucket SSE-S3 under global SSE-KMS: that bucket only",
     with_({S3A + "bucket.phi-raw.encryption.algorithm": "SSE-S3"}),
     ["s3a://phi-raw/in/", "s3a://phi-bronze/out"], ["s3a-sse-kms@phi-raw"]),
    ("legacy global name honoured",
     with_({S3A + "server-side-encryption-algorithm": "SSE-KMS"}, S3A + "encryption.algorithm"), BRONZE, []),
    ("legacy name and legacy key honoured",
     {**conf(S3A + "encryption.algorithm", S3A + "encryption.key"),
      S3A + "server-side-encryption-algorithm": "SSE-KMS", S3A + "server-side-encryption.key": ARN}, BRONZE, []),
    ("legacy insecure value caught", with_({S3A + "server-side-encryption-algorithm": "AES256"},
                                           S3A + "encryption.algorithm"), BRONZE, ["s3a-sse-kms@phi-bronze"]),
    # issue 16: Hadoop maps the legacy name onto the current one and the last one set wins: two values is an error
    ("both names, different values (insecure current)",
     with_({S3A + "encryption.algorithm": "SSE-S3", S3A + "server-side-encryption-algorithm": "SSE-KMS"}), BRONZE,
     ["s3a-sse-kms@phi-bronze"] * 2),  # the conflict, and the insecure current value
    ("both names, different values (secure current)",
     with_({S3A + "server-side-encryption-algorithm": "AES256"}), BRONZE, ["s3a-sse-kms@phi-bronze"]),
    ("per-bucket legacy name overrides global current",
     with_({S3A + "bucket.phi-bronze.server-side-encryption-algorithm": "AES256"}), BRONZE,
     ["s3a-sse-kms@phi-bronze"]),
    ("empty per-bucket value still overrides", with_({S3A + "bucket.phi-bronze.encryption.algorithm": ""}), BRONZE,
     ["s3a-sse-kms@phi-bronze"]),
    ("per-bucket SSE-KMS rescues a global SSE-S3",
     with_({S3A + "encryption.algorithm": "SSE-S3", S3A + "bucket.phi-bronze.encryption.algorithm": "SSE-KMS"}),
     BRONZE, []),
    ("'sse-kms ' and DSSE-KMS accepted",
     with_({S3A + "encryption.algorithm": "sse-kms ", S3A + "bucket.b2.encryption.algorithm": "DSSE-KMS"}),
     BRONZE + ["s3a://b2/x"], []),
    ("algorithm unset", conf(S3A + "encryption.algorithm"), BRONZE, ["s3a-sse-kms@phi-bronze"]),
    ("no S3 path: S3A rules not applied", with_({S3A + "encryption.algorithm": "SSE-S3"}, S3A + "encryption.key"),
     ["/local/data", "abfss://c@acct.dfs.core.windows.net/x", "dbfs:/tmp/x"], []),
    ("s3:// and s3n:// paths are S3A buckets", with_({S3A + "bucket.a.encryption.algorithm": "SSE-S3",
                                                     S3A + "bucket.b.encryption.algorithm": "SSE-S3"}),
     ["s3://a/x", "S3N://b/y"], ["s3a-sse-kms@a", "s3a-sse-kms@b"]),
    ("bucket names with dots", with_({S3A + "bucket.my.phi.bucket.encryption.algorithm": "none"}),
     ["s3a://my.phi.bucket/x"], ["s3a-sse-kms@my.phi.bucket"]),
    ("bare fs.s3a key in a session counts and wins over spark.hadoop.",
     with_({"fs.s3a.encryption.algorithm": "SSE-S3"}), BRONZE, ["s3a-sse-kms@phi-bronze"]),
    ("bare fs.s3a key in a spark-defaults file is ignored (as spark-submit does)",
     from_file("spark.io.encryption.enabled true\nspark.io.encryption.keySizeBits 256\nspark.authenticate true\n"
               f"spark.network.crypto.enabled true\nfs.s3a.encryption.algorithm SSE-KMS\n{S3A}encryption.key {ARN}"),
     BRONZE, ["s3a-sse-kms@phi-bronze"]),
    # --- s3a-kms-key: ARN, key id, mrk- id or alias/
    ("KMS key that is no ARN, id or alias", with_({S3A + "encryption.key": "my-phi-key"}), BRONZE,
     ["s3a-kms-key@phi-bronze"]),
    ("KMS key id (UUID)", with_({S3A + "encryption.key": "1234ABCD-12ab-34cd-56ef-1234567890ab"}), BRONZE, []),
    ("multi-region key id", with_({S3A + "encryption.key": "mrk-1234abcd12ab34cd56ef1234567890ab"}), BRONZE, []),
    ("alias", with_({S3A + "encryption.key": "alias/phi-bronze"}), BRONZE, []),
    ("alias ARN in GovCloud", with_({S3A + "encryption.key": "arn:aws-us-gov:kms:us-gov-west-1:111122223333:"
                                                            "alias/phi"}), BRONZE, []),
    ("ARN with an 11-digit account", with_({S3A + "encryption.key": ARN.replace("111122223333", "11112222333")}),
     BRONZE, ["s3a-kms-key@phi-bronze"]),
    ("UUID one digit short", with_({S3A + "encryption.key": "1234abcd-12ab-34cd-56ef-1234567890a"}), BRONZE,
     ["s3a-kms-key@phi-bronze"]),
    ("AWS managed alias/aws/s3 refused", with_({S3A + "encryption.key": "alias/aws/s3"}), BRONZE,
     ["s3a-kms-key@phi-bronze"]),
    ("KMS key unset", conf(S3A + "encryption.key"), BRONZE, ["s3a-kms-key@phi-bronze"]),
    ("per-bucket key wins", with_({S3A + "bucket.phi-bronze.encryption.key": "oops"}), BRONZE + ["s3a://other/"],
     ["s3a-kms-key@phi-bronze"]),
    # --- s3a-static-credentials: anywhere, whatever paths
    ("plain access and secret keys", with_({S3A + "access.key": ACCESS_KEY, S3A + "secret.key": SECRET_KEY}), [],
     ["s3a-static-credentials", "s3a-static-credentials"]),
    ("per-bucket secret key and session token",
     with_({S3A + "bucket.x.secret.key": SECRET_KEY, "fs.s3a.session.token": "FwoGZXIvYXdzEXAMPLE"}), [],
     ["s3a-static-credentials", "s3a-static-credentials"]),
    ("legacy s3n credentials", with_({"spark.hadoop.fs.s3n.awsSecretAccessKey": SECRET_KEY}), [],
     ["s3a-static-credentials"]),
    ("executor env credentials", with_({"spark.executorEnv.AWS_SECRET_ACCESS_KEY": SECRET_KEY}), [],
     ["s3a-static-credentials"]),
    ("Databricks secret reference and empty value are fine",
     with_({S3A + "access.key": "{{secrets/phi/aws-id}}", S3A + "secret.key": " "}), [], []),
    ("credentials in a path", SECURE, [f"s3a://{ACCESS_KEY}:{SECRET_KEY.replace('/', '_')}@phi-bronze/x"],
     ["s3a-static-credentials@phi-bronze"]),
    # --- local-disk-encryption: Databricks cluster specs
    ("cluster spec without local disk encryption",
     cluster_from_json({"spark_conf": SECURE}, "cluster.json"), BRONZE, ["local-disk-encryption"]),
    ("cluster spec with JSON true", cluster_from_json({"spark_conf": SECURE, "enable_local_disk_encryption": True},
                                                      "cluster.json"), BRONZE, []),
    ("cluster spec env credentials", cluster_from_json(
        {"spark_conf": SECURE, "enable_local_disk_encryption": True,
         "spark_env_vars": {"AWS_ACCESS_KEY_ID": ACCESS_KEY}},
        "cluster.json"), [], ["s3a-static-credentials"]),
    # --- cluster policies: a setting a user may change to an insecure value
    ("secure policy", policy({}), BRONZE, []),
    ("policy leaves io encryption unlimited", policy({"spark_conf.spark.io.encryption.enabled":
                                                      {"type": "unlimited", "defaultValue": "true"}}), [],
     ["io-encryption"]),
    ("policy without io encryption", policy({"spark_conf.spark.io.encryption.enabled": None}), [], ["io-encryption"]),
    ("policy forbids io encryption", policy({"spark_conf.spark.io.encryption.enabled": {"type": "forbidden"}}), [],
     ["io-encryption"]),
    ("policy allowlist admits false", policy({"spark_conf.spark.authenticate":
                                              {"type": "allowlist", "values": ["true", "false"]}}), [],
     ["rpc-encryption"]),
    ("policy blocklist of 'false' admits 'FALSE'", policy({"spark_conf.spark.network.crypto.enabled":
                                                           {"type": "blocklist", "values": ["false"]}}), [],
     ["rpc-encryption"]),
    ("policy regex pinned to true", policy({"spark_conf.spark.io.encryption.enabled":
                                            {"type": "regex", "pattern": "(?i)\\s*true\\s*"}}), [], []),
    ("policy regex admitting false", policy({"spark_conf.spark.io.encryption.enabled":
                                             {"type": "regex", "pattern": "(?i)true|false"}}), [], ["io-encryption"]),
    ("policy range down to 128", policy({"spark_conf.spark.io.encryption.keySizeBits":
                                         {"type": "range", "minValue": 128, "maxValue": 256}}), [],
     ["io-encryption-key-size"]),
    ("policy with a legacy algorithm name, SSE-S3 allowed",
     policy({"spark_conf.spark.hadoop.fs.s3a.encryption.algorithm": None,
             "spark_conf.spark.hadoop.fs.s3a.server-side-encryption-algorithm":
                 {"type": "allowlist", "values": ["SSE-KMS", "SSE-S3"]}}), BRONZE,
     ["s3a-sse-kms", "s3a-sse-kms"]),  # the legacy name admits SSE-S3, and the current name is open
    ("policy pins only the current S3A names", policy({
        "spark_conf.spark.hadoop.fs.s3a.server-side-encryption-algorithm": None,
        "spark_conf.spark.hadoop.fs.s3a.server-side-encryption.key": None}), BRONZE, ["s3a-sse-kms", "s3a-kms-key"]),
    ("policy leaves the bucket's override open", policy({
        "spark_conf.spark.hadoop.fs.s3a.bucket.phi-bronze.encryption.algorithm": None}), BRONZE,
     ["s3a-sse-kms@phi-bronze"]),
    ("policy lets the bucket's override be SSE-S3", policy({
        "spark_conf.spark.hadoop.fs.s3a.bucket.phi-bronze.encryption.algorithm":
            {"type": "allowlist", "values": ["SSE-KMS", "SSE-S3"]}}), BRONZE, ["s3a-sse-kms@phi-bronze"]),
    ("policy legacy name with an insecure default", policy({
        "spark_conf.spark.hadoop.fs.s3a.server-side-encryption-algorithm":
            {"type": "regex", "pattern": "SSE-.*", "defaultValue": "SSE-KMS"}}), BRONZE, ["s3a-sse-kms"]),
    ("policy regex 'true.*' admits 'truex'", policy({"spark_conf.spark.io.encryption.enabled":
                                                      {"type": "regex", "pattern": "true.*"}}), [], ["io-encryption"]),
    ("policy regex 't(rue)?' admits 't'", policy({"spark_conf.spark.authenticate":
                                                   {"type": "regex", "pattern": "t(rue)?"}}), [], ["rpc-encryption"]),
    ("policy regex key size [0-9]+", policy({"spark_conf.spark.io.encryption.keySizeBits":
                                             {"type": "regex", "pattern": "[0-9]+"}}), [], ["io-encryption-key-size"]),
    ("policy regex key size 2(56|048)", policy({"spark_conf.spark.io.encryption.keySizeBits":
                                                {"type": "regex", "pattern": "2(56|048)"}}), [], []),
    ("policy regex KMS alias/.*", policy({"spark_conf.spark.hadoop.fs.s3a.encryption.key":
                                          {"type": "regex", "pattern": "alias/.*"}}), BRONZE, ["s3a-kms-key"]),
    ("policy regex algorithm (D?SSE)-KMS", policy({"spark_conf.spark.hadoop.fs.s3a.encryption.algorithm":
                                                   {"type": "regex", "pattern": "(D?SSE)-KMS"}}), BRONZE, []),
    ("policy range on a boolean", policy({"spark_conf.spark.io.encryption.enabled":
                                          {"type": "range", "minValue": 1}}), [], ["io-encryption"]),
    ("policy range from 256 with a default of 128", policy({"spark_conf.spark.io.encryption.keySizeBits":
                                                             {"type": "range", "minValue": 256,
                                                              "defaultValue": 128}}), [], ["io-encryption-key-size"]),
    ("policy allowlist of the key size admits 128", policy({"spark_conf.spark.io.encryption.keySizeBits":
                                                            {"type": "allowlist", "values": ["256", "128"]}}), [],
     ["io-encryption-key-size"]),
    ("policy with local disk encryption fixed false", policy({"enable_local_disk_encryption":
                                                              {"type": "fixed", "value": False}}), [],
     ["local-disk-encryption"]),
    ("policy holding a plain secret key", policy({"spark_conf.spark.hadoop.fs.s3a.secret.key":
                                                  {"type": "fixed", "value": SECRET_KEY, "hidden": True}}), [],
     ["s3a-static-credentials"]),
]


def _ids(report) -> list[str]:
    return sorted(f"{f.rule}@{f.bucket}" if f.bucket else f.rule for f in report.findings)


def _run(settings, paths):
    if isinstance(settings, ClusterPolicy):
        return check_cluster_policy(settings, paths)
    return check(settings, paths)


@pytest.mark.parametrize(("settings", "paths", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rule_table(settings, paths, expected):
    report = _run(settings, paths)
    got = _ids(report)
    assert got == sorted(expected)
    assert report.ok == (not any(f.severity == "error" for f in report.findings))


def test_table_is_large_enough():
    assert len(CASES) >= 30


def test_per_bucket_override_names_the_winning_setting_and_source():
    settings = from_file("\n".join(f"{k} {v}" for k, v in SECURE.items())
                         + f"\n{S3A}bucket.phi-raw.encryption.algorithm SSE-S3\n")
    (finding,) = check(settings, ["s3a://phi-raw/x", "s3a://phi-bronze/y"]).findings
    assert finding.setting == f"{S3A}bucket.phi-raw.encryption.algorithm"
    assert (finding.value, finding.bucket, finding.source) == ("SSE-S3", "phi-raw", "spark-defaults.conf:7")
    assert finding.severity == "error" and "SSE-KMS" in finding.fix


def test_ignored_bare_key_is_explained_in_the_fix():
    settings = from_file("fs.s3a.encryption.algorithm SSE-KMS\n")
    finding = next(f for f in check(settings, BRONZE).findings if f.rule == "s3a-sse-kms")
    assert finding.value is None and "ignored by spark-submit" in finding.fix


def test_secrets_never_shown():
    settings = with_({S3A + "access.key": ACCESS_KEY, S3A + "bucket.b.secret.key": SECRET_KEY,
                      S3A + "encryption.key": "bm90LWEta21zLWtleS1idXQtYW4tU1NFLUMta2V5PQ=="})
    report = check(settings, ["s3a://b/x"])
    cred = [f for f in report.findings if f.rule == "s3a-static-credentials"]
    assert len(cred) == 2 and all(f.value == "***" for f in cred)
    key = next(f for f in report.findings if f.rule == "s3a-kms-key")
    assert key.value == "***"  # not a KMS key name: it may be an SSE-C key
    rendered = report.to_json() + "\n".join(map(str, report.findings))
    for secret in (ACCESS_KEY, SECRET_KEY, "bm90LWEta21zLWtleS1idXQtYW4tU1NFLUMta2V5PQ=="):
        assert secret not in rendered
    with pytest.raises(JobRefused) as exc:
        report.raise_on_errors()
    assert "s3a-static-credentials" in str(exc.value) and ACCESS_KEY not in str(exc.value)


def test_valid_kms_key_is_shown():
    finding = next(f for f in check(with_({S3A + "encryption.algorithm": "SSE-S3"}), BRONZE).findings)
    assert finding.value == "SSE-S3"
    report = check(with_({S3A + "encryption.key": "alias/aws/s3"}), BRONZE)
    assert report.findings[0].value == "alias/aws/s3"


def test_policy_secret_masked():
    report = check_cluster_policy(policy({"spark_conf.spark.hadoop.fs.s3a.access.key":
                                  {"type": "allowlist", "values": [ACCESS_KEY]}}))
    assert [f.rule for f in report.findings] == ["s3a-static-credentials"]
    assert ACCESS_KEY not in report.to_json()


def test_policy_finding_gives_a_fixed_element_as_the_fix():
    report = check_cluster_policy(policy({"spark_conf.spark.io.encryption.enabled": {"type": "unlimited"}}))
    (finding,) = report.findings
    assert finding.setting == "spark_conf.spark.io.encryption.enabled"
    assert json.loads(finding.value) == {"type": "unlimited"}
    assert '{"type": "fixed", "value": "true"}' in finding.fix


def test_not_applied_says_why():
    report = check({"spark.master": "local[2]"}, [])
    reasons = {n.rule: n.reason for n in report.not_applied}
    assert set(reasons) == {"rpc-encryption", "s3a-sse-kms", "s3a-kms-key", "local-disk-encryption"}
    assert "local[2]" in reasons["rpc-encryption"] and "s3a://" in reasons["s3a-sse-kms"]
    assert check({}, [], cluster=False).not_applied[0].rule == "rpc-encryption"


def test_rules_match_the_contract():
    assert [r.id for r in RULES] == ["io-encryption", "io-encryption-key-size", "rpc-encryption", "s3a-sse-kms",
                                     "s3a-kms-key", "s3a-static-credentials", "local-disk-encryption"]
    severities = {r.id: r.severity for r in RULES}
    assert severities["io-encryption-key-size"] == severities["rpc-encryption"] == "warn"
    assert all(r.fix and r.summary and r.requires for r in RULES)


def test_report_json_shape():
    doc = json.loads(check(conf("spark.io.encryption.enabled"), BRONZE).to_json())
    assert doc["ok"] is False and doc["errors"] == 1 and doc["warnings"] == 0
    assert doc["findings"] == [{"rule": "io-encryption", "severity": "error", "setting": "spark.io.encryption.enabled",
                                "value": None, "fix": doc["findings"][0]["fix"], "bucket": None, "source": None}]
    assert doc["buckets"] == ["phi-bronze"]
    assert check(conf("spark.io.encryption.enabled")).findings[0].to_dict() == doc["findings"][0]
