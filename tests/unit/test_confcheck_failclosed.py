"""Issue 23.7: what still passed the validator. core-site.xml of HADOOP_CONF_DIR (per-bucket overrides, credentials),
the task inside a job's for_each_task, ``-Daws.*`` / ``-Dspark.*`` in Java options, AWS keys in the process
environment. Each as a user runs it (the check-conf command line, or the session check the ingest pre-flight
runs); secrets never shown."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lakehouse_phi.confcheck import check, check_session, parse_submit_args, read_cluster_json
from lakehouse_phi.confcheck.sources import read_environment
from tests.helpers import run_cli

ARN = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ACCESS_KEY, SECRET_KEY = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
SECURE = {"spark.io.encryption.enabled": "true", "spark.io.encryption.keySizeBits": "256",
          "spark.authenticate": "true", "spark.network.crypto.enabled": "true",
          "spark.hadoop.fs.s3a.encryption.algorithm": "SSE-KMS", "spark.hadoop.fs.s3a.encryption.key": ARN}
BRONZE = "s3a://phi-bronze/patients"


def _core_site(folder: Path, props: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    body = "".join(f"  <property>\n    <name>{k}</name>\n    <value>{v}</value>\n  </property>\n"
                   for k, v in props.items())
    (folder / "core-site.xml").write_text(f'<?xml version="1.0"?>\n<configuration>\n{body}</configuration>\n')
    return folder


def _defaults(tmp_path: Path, conf: dict[str, str]) -> Path:
    path = tmp_path / "spark-defaults.conf"
    path.write_text("".join(f"{k} {v}\n" for k, v in conf.items()))
    return path


def _cli(*args: str, env: dict | None = None) -> tuple[int, dict]:
    proc = run_cli("check-conf", *args, "--format", "json", env=env)
    assert "Traceback" not in proc.stderr
    return proc.returncode, json.loads(proc.stdout) if proc.stdout.strip() else {}


def _rules(doc: dict) -> set[str]:
    return {f["rule"] + (f"@{f['bucket']}" if f.get("bucket") else "") for f in doc["findings"]}


# -------------------------------------------------------------------------------------------- core-site.xml
@pytest.mark.parametrize(("props", "expected"), [
    ({"fs.s3a.bucket.phi-bronze.encryption.algorithm": "SSE-S3"}, {"s3a-sse-kms@phi-bronze"}),
    ({"fs.s3a.bucket.phi-bronze.server-side-encryption-algorithm": " AES256 "}, {"s3a-sse-kms@phi-bronze"}),
    ({"fs.s3a.bucket.phi-bronze.encryption.key": "alias/aws/s3"}, {"s3a-kms-key@phi-bronze"}),
    ({"fs.s3a.bucket.phi-bronze.secret.key": SECRET_KEY}, {"s3a-static-credentials"}),
    ({"fs.s3a.access.key": ACCESS_KEY}, {"s3a-static-credentials"}),
    ({"fs.s3a.encryption.algorithm": "SSE-S3"}, set()),  # the global one: spark.hadoop.* overrides it
    ({"fs.s3a.bucket.other-bucket.encryption.algorithm": "SSE-S3"}, set()),  # not a bucket the job touches
], ids=["per-bucket-algorithm", "per-bucket-legacy", "per-bucket-managed-key", "per-bucket-secret", "access-key",
        "global-overridden", "other-bucket"])
@pytest.mark.parametrize("how", ["HADOOP_CONF_DIR", "YARN_CONF_DIR", "--hadoop-conf-dir"])
def test_core_site_of_the_hadoop_conf_dir_is_read(tmp_path, props, expected, how):
    folder = _core_site(tmp_path / "hadoop", props)
    args = ["--spark-conf", str(_defaults(tmp_path, SECURE)), "--paths", BRONZE]
    env = {"HADOOP_CONF_DIR": "", "YARN_CONF_DIR": ""}
    if how == "--hadoop-conf-dir":
        args += ["--hadoop-conf-dir", str(folder)]
    else:
        env[how] = str(folder)
    code, doc = _cli(*args, env=env)
    assert _rules(doc) == expected and code == (1 if expected else 0)
    if expected:
        assert any("core-site.xml" in (f["source"] or "") for f in doc["findings"])
    text = json.dumps(doc)
    assert SECRET_KEY not in text and ACCESS_KEY not in text


def test_a_malformed_core_site_stops_with_exit_2(tmp_path):
    (tmp_path / "h").mkdir()
    (tmp_path / "h" / "core-site.xml").write_text("<configuration><property><name>x</name>")
    proc = run_cli("check-conf", "--hadoop-conf-dir", str(tmp_path / "h"))
    assert proc.returncode == 2 and "core-site.xml" in proc.stderr and "Traceback" not in proc.stderr


# -------------------------------------------------------------------------------- the live session check
class _Conf:
    def __init__(self, values: dict[str, str]) -> None:
        self.getAll = values  # PySpark 4: a property on classic and Connect sessions


class _Session:
    def __init__(self, values: dict[str, str]) -> None:
        self.conf = _Conf(values)


@pytest.mark.parametrize("var", ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"])
def test_aws_credentials_in_the_process_environment_are_flagged(monkeypatch, var):
    for other in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "HADOOP_CONF_DIR",
                  "YARN_CONF_DIR"):
        monkeypatch.delenv(other, raising=False)
    monkeypatch.setenv(var, SECRET_KEY)
    report = check_session(_Session({**SECURE, "spark.master": "local[2]"}), [BRONZE])
    assert [f.rule for f in report.errors] == ["s3a-static-credentials"]
    assert report.errors[0].setting == f"environment variable {var}" and report.errors[0].value == "***"
    assert SECRET_KEY not in report.to_json()
    monkeypatch.setenv(var, "{{secrets/aws/key}}")  # a secret reference is fine, an empty value too
    assert check_session(_Session({**SECURE, "spark.master": "local[2]"}), [BRONZE]).ok


def test_the_session_check_reads_core_site_under_the_session(monkeypatch, tmp_path):
    for other in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "YARN_CONF_DIR"):
        monkeypatch.delenv(other, raising=False)
    folder = _core_site(tmp_path / "h", {"fs.s3a.bucket.phi-bronze.encryption.algorithm": "SSE-S3",
                                         "fs.s3a.encryption.key": "alias/aws/s3"})
    monkeypatch.setenv("HADOOP_CONF_DIR", str(folder))
    report = check_session(_Session({**SECURE, "spark.master": "local[2]"}), [BRONZE])
    assert {f.rule for f in report.errors} == {"s3a-sse-kms"}  # the global key is overridden by the session
    assert read_environment({"HADOOP_CONF_DIR": str(folder)}).site["fs.s3a.encryption.key"].value == "alias/aws/s3"


# ----------------------------------------------------------------------------------------- for_each_task
def test_for_each_task_clusters_are_walked(tmp_path):
    job = {"name": "ingest", "tasks": [
        {"task_key": "loop", "for_each_task": {"inputs": "[1,2]", "task": {
            "task_key": "inner", "new_cluster": {"spark_version": "15.4.x-scala2.12",
                                                 "spark_conf": {"spark.io.encryption.enabled": "false"}}}}},
        {"task_key": "outer", "for_each_task": {"task": {"task_key": "mid", "for_each_task": {"task": {
            "task_key": "deep", "new_cluster": {"spark_version": "15.4.x-scala2.12", "spark_env_vars": {
                "AWS_SECRET_ACCESS_KEY": SECRET_KEY}}}}}}}]}
    path = tmp_path / "job.json"
    path.write_text(json.dumps({"settings": job}))
    clusters = read_cluster_json(path)
    labels = [c.cluster_spec.label for c in clusters]  # type: ignore[union-attr]
    assert len(labels) == 2 and all("for_each_task.task" in label for label in labels)
    code, doc = _cli("--cluster-json", str(path))
    rules = [f["rule"] for f in doc["findings"]]
    assert code == 1 and "io-encryption" in rules and "s3a-static-credentials" in rules
    assert SECRET_KEY not in json.dumps(doc)


# ------------------------------------------------------------------------------------------- Java options
@pytest.mark.parametrize(("options", "rule"), [
    ("-Daws.accessKeyId=" + ACCESS_KEY, "s3a-static-credentials"),
    ("-Xmx4g -Daws.secretAccessKey=" + SECRET_KEY + " -XX:+UseG1GC", "s3a-static-credentials"),
    ("'-Daws.secretKey=" + SECRET_KEY + "'", "s3a-static-credentials"),
    ("-Daws.sessionToken=abc", "s3a-static-credentials"),
    ("-Dspark.hadoop.fs.s3a.access.key=" + ACCESS_KEY, "s3a-static-credentials"),
    ("-Dspark.hadoop.fs.s3a.encryption.algorithm=SSE-S3", "s3a-sse-kms"),
    ("-Dspark.hadoop.fs.s3a.bucket.phi-bronze.encryption.algorithm=none", "s3a-sse-kms"),
    ("-Dspark.io.encryption.enabled=false", "io-encryption"),
    ("-Dspark.io.encryption.keySizeBits=128", "io-encryption-key-size"),
], ids=["aws-access", "aws-secret", "quoted", "token", "s3a-key", "algorithm", "per-bucket", "io", "key-size"])
@pytest.mark.parametrize("where", ["spark.driver.extraJavaOptions", "spark.executor.extraJavaOptions",
                                   "spark.executor.defaultJavaOptions"])
def test_java_options_are_read(options, rule, where):
    report = check({**SECURE, where: options}, [BRONZE])
    assert rule in {f.rule for f in report.errors} or rule in {f.rule for f in report.warnings}
    assert SECRET_KEY not in report.to_json() and ACCESS_KEY not in report.to_json()
    assert check(SECURE, [BRONZE]).ok


def test_spark_submit_driver_java_options(tmp_path):
    argv = ["spark-submit", "--driver-java-options", f"-Daws.secretAccessKey={SECRET_KEY}",
            *[x for k, v in SECURE.items() for x in ("--conf", f"{k}={v}")], "job.py"]
    report = check(parse_submit_args(argv), [BRONZE])
    assert [f.rule for f in report.errors] == ["s3a-static-credentials"]
    assert "-Daws.secretAccessKey" in report.errors[0].setting and SECRET_KEY not in report.to_json()


# ------------------------------------------------------------------------------------- policy regex sampling
@pytest.mark.parametrize(("pattern", "admits_insecure"), [
    ("true", False), ("(?i)\\s*true\\s*", False), ("[Tt][Rr][Uu][Ee]", False),
    ("true|false", True), ("(?i)true.*", True), ("t.*", True), ("[tf]rue|false", True), (".*", True),
    ("tr(ue)?", True), ("true ?|no", True), ("(?:true){1,2}", True), ("[^x]{4}", True),
])
def test_a_policy_regex_is_tried_against_what_it_admits(pattern, admits_insecure):
    from lakehouse_phi.confcheck import ClusterPolicy, check_cluster_policy

    policy = ClusterPolicy("p.json", {"spark_conf.spark.io.encryption.enabled": {"type": "regex", "pattern": pattern}})
    rules = {f.rule for f in check_cluster_policy(policy).findings}
    assert ("io-encryption" in rules) is admits_insecure


@pytest.mark.parametrize("pattern", ["a{1000000}", "(a+)+$", "(x{0,50}){0,50}", "[\\s\\S]{300,}", "((((((a))))))*"])
def test_hostile_policy_regexes_are_bounded(pattern):
    """Huge or nested repeats: the sample stays small (each string bounded), so a policy cannot stall the check."""
    from lakehouse_phi.confcheck.regex_samples import MAX_LENGTH, regex_samples

    samples = regex_samples(pattern)
    assert len(samples) <= 2000 and all(len(s) <= 16 * MAX_LENGTH for s in samples)
