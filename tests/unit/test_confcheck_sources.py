"""Readers of the config validator: spark-defaults, --conf, spark-submit argv, cluster/job/policy JSON, sessions."""

from __future__ import annotations

import json

import pytest

from lakehouse_phi.confcheck import (
    ClusterPolicy,
    Settings,
    check_session,
    parse_conf_pairs,
    parse_properties,
    parse_submit_args,
    read_cluster_json,
    read_session,
)
from lakehouse_phi.errors import UsageError


def values(settings: Settings) -> dict[str, str]:
    return {k: v.value for k, v in settings.conf.items()}


def test_properties_like_spark():
    text = "\n".join([
        "# comment",
        "! also a comment",
        "   ",
        "spark.io.encryption.enabled     TRUE   ",
        "spark.authenticate=true",
        "spark.network.crypto.enabled : true",
        "spark.master spark://host:7077",
        "spark.hadoop.fs.s3a.encryption.key = arn:aws:kms:us-east-1:111122223333:key/x=y",
        "spark.driver.extraJavaOptions -Da=1 \\",
        "    -Db=2",
        "spark.io.encryption.keySizeBits 128",
        "spark.io.encryption.keySizeBits 256",
        "key\\ with\\ space value",
        "spark.empty",
    ])
    s = parse_properties(text, "f.conf")
    assert values(s) == {
        "spark.io.encryption.enabled": "TRUE",
        "spark.authenticate": "true",
        "spark.network.crypto.enabled": "true",
        "spark.master": "spark://host:7077",
        "spark.hadoop.fs.s3a.encryption.key": "arn:aws:kms:us-east-1:111122223333:key/x=y",
        "spark.driver.extraJavaOptions": "-Da=1 -Db=2",
        "spark.io.encryption.keySizeBits": "256",
        "key with space": "value",
        "spark.empty": "",
    }
    assert s.conf["spark.io.encryption.keySizeBits"].source == "f.conf:12"  # the last one wins, with its line
    assert s.conf["spark.authenticate"].bare_applies is False


def test_conf_pairs():
    s = parse_conf_pairs(["spark.authenticate=TRUE ", "spark.x= a=b "])
    assert values(s) == {"spark.authenticate": "TRUE ", "spark.x": " a=b "}  # spark-submit keeps both as given
    with pytest.raises(UsageError, match="KEY=VALUE"):
        parse_conf_pairs(["spark.authenticate"])


def test_submit_args(tmp_path):
    props = tmp_path / "p.conf"
    props.write_text("spark.io.encryption.enabled false\nspark.authenticate true\n")
    argv = ["/opt/spark/bin/spark-submit", "--master", "yarn", "--conf", "spark.io.encryption.enabled=true",
            "-c", "spark.network.crypto.enabled=true", "--conf=spark.io.encryption.keySizeBits=256",
            "--properties-file", str(props), "--verbose", "--py-files", "a.zip",
            "job.py", "--conf", "spark.authenticate=false", "-c", "app=arg"]
    s = parse_submit_args(argv)
    assert values(s) == {"spark.io.encryption.enabled": "true", "spark.authenticate": "true",
                         "spark.network.crypto.enabled": "true", "spark.io.encryption.keySizeBits": "256",
                         "spark.master": "yarn"}
    with pytest.raises(UsageError, match="--conf"):
        parse_submit_args(["--conf"])


def test_submit_properties_file_replaces_defaults_unless_asked(tmp_path):
    defaults, props = tmp_path / "spark-defaults.conf", tmp_path / "p.conf"
    defaults.write_text("spark.authenticate true\nspark.io.encryption.enabled false\n")
    props.write_text("spark.io.encryption.enabled true\n")
    assert values(parse_submit_args(["app.py"], spark_defaults=defaults)) == {
        "spark.authenticate": "true", "spark.io.encryption.enabled": "false"}
    assert values(parse_submit_args(["--properties-file", str(props), "app.py"], spark_defaults=defaults)) == {
        "spark.io.encryption.enabled": "true"}
    assert values(parse_submit_args(["--load-spark-defaults", "--properties-file", str(props), "app.py"],
                                    spark_defaults=defaults)) == {
        "spark.authenticate": "true", "spark.io.encryption.enabled": "true"}


def test_merge_precedence():
    a = Settings.from_mapping({"k": "file", "only_a": "1"}, "a")
    b = Settings.from_mapping({"k": "cluster"}, "b")
    c = Settings.from_mapping({"k": "conf"}, "c")
    merged = a.merged(b, c)
    assert values(merged) == {"k": "conf", "only_a": "1"} and merged.sources == ("a", "b", "c")


def _write(tmp_path, doc, name="c.json"):
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


def test_cluster_json_shapes(tmp_path):
    spec = {"spark_version": "16.4.x", "spark_conf": {"spark.authenticate": True, "n": 2},
            "enable_local_disk_encryption": True}
    (one,) = read_cluster_json(_write(tmp_path, spec))
    assert values(one) == {"spark.authenticate": "true", "n": "2"}
    assert one.cluster_spec.attrs["enable_local_disk_encryption"].value == "true"

    job = {"settings": {"job_clusters": [{"job_cluster_key": "etl", "new_cluster": spec}],
                        "tasks": [{"task_key": "t1", "new_cluster": {"spark_conf": {"a": "1"}}},
                                  {"task_key": "t2", "existing_cluster_id": "123"}]}}
    clusters = read_cluster_json(_write(tmp_path, job))
    assert [c.cluster_spec.label for c in clusters] == [
        f"{tmp_path / 'c.json'} settings job_clusters[0] (etl).new_cluster",
        f"{tmp_path / 'c.json'} settings tasks[0] (t1).new_cluster"]
    (single,) = read_cluster_json(_write(tmp_path, {"new_cluster": spec}))
    assert single.cluster_spec.label.endswith("new_cluster")


def test_policy_json_shapes(tmp_path):
    definition = {"spark_conf.spark.io.encryption.enabled": {"type": "fixed", "value": "true"}}
    bare = read_cluster_json(_write(tmp_path, definition))
    wrapped = read_cluster_json(_write(tmp_path, {"name": "p", "definition": json.dumps(definition)}))
    assert isinstance(bare, ClusterPolicy) and isinstance(wrapped, ClusterPolicy)
    assert bare.elements == wrapped.elements == definition
    with pytest.raises(UsageError, match="not a policy element type"):
        read_cluster_json(_write(tmp_path, {"spark_conf.x": {"type": "pinned"}}))


@pytest.mark.parametrize(("content", "match"), [
    ("{not json", "not valid JSON .* line 1"),
    ('{"hello": "world"}', "no Databricks cluster spec or cluster policy"),
    ('{"tasks": [{"existing_cluster_id": "1"}]}', "no Databricks cluster spec"),
])
def test_cluster_json_errors(tmp_path, content, match):
    with pytest.raises(UsageError, match=match):
        read_cluster_json(_write(tmp_path, content))


def test_missing_file_is_usage_error(tmp_path):
    with pytest.raises(UsageError, match="no such file"):
        read_cluster_json(tmp_path / "nope.json")


class _OldConf:
    """The part of PySpark < 4's ``spark.conf`` the reader falls back to: ``get(key, default)``, no ``getAll``."""

    def __init__(self, data: dict[str, str]) -> None:
        self._data = data

    def get(self, key: str, default: str | None = None) -> str | None:
        return self._data.get(key, default)


class _OldSession:
    def __init__(self, data: dict[str, str]) -> None:
        self.conf = _OldConf(data)

    @property
    def sparkContext(self):
        raise AssertionError("the reader must not touch sparkContext")


def test_session_without_get_all_is_probed_by_key():
    data = {"spark.master": "yarn", "spark.io.encryption.enabled": "true",
            "spark.hadoop.fs.s3a.bucket.b.encryption.algorithm": "SSE-S3", "unrelated": "x"}
    settings = read_session(_OldSession(data), probe=["spark.master", "spark.io.encryption.enabled"])
    assert values(settings) == {"spark.master": "yarn", "spark.io.encryption.enabled": "true"}
    report = check_session(_OldSession(data), ["s3a://b/x"])
    assert {(f.rule, f.bucket) for f in report.findings} >= {("s3a-sse-kms", "b")}
