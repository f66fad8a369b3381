"""Issue 16 item 9: settings read as java.util.Properties and spark-submit read them (form feed, NEL, NBSP, spaces
around --conf keys), and two names of one S3A setting with different values is an error."""

from __future__ import annotations

import pytest

from lakehouse_phi.confcheck import check
from lakehouse_phi.confcheck.sources import Settings, parse_conf_pairs, parse_properties, parse_submit_args
from lakehouse_phi.errors import UsageError


def values(settings: Settings) -> dict[str, str]:
    return {k: v.value for k, v in settings.conf.items()}


def test_form_feed_separates_key_and_value_and_ends_no_line():
    s = parse_properties("spark.io.encryption.enabled\ftrue\n\fspark.authenticate\f=\ftrue\f\n", "f")
    assert values(s) == {"spark.io.encryption.enabled": "true", "spark.authenticate": "true"}


def test_nel_vertical_tab_and_unicode_separators_end_no_line():
    text = "spark.io.encryption.enabled true\x85spark.authenticate true\nspark.a x\x0bspark.b y\u2028z\n"
    s = parse_properties(text, "f")
    assert values(s) == {"spark.io.encryption.enabled": "true\x85spark.authenticate true",
                         "spark.a": "x\x0bspark.b y\u2028z"}


def test_nbsp_is_no_whitespace_so_the_setting_is_not_set():
    s = parse_properties("spark.io.encryption.enabled\u00a0true\nspark.authenticate true\u00a0\n", "f")
    assert values(s) == {"spark.io.encryption.enabled\u00a0true": "", "spark.authenticate": "true\u00a0"}
    report = check(s)
    assert "io-encryption" in {f.rule for f in report.errors}  # Spark sees no spark.io.encryption.enabled


def test_values_trimmed_as_java_trims_and_escapes():
    s = parse_properties("spark.x \x01 a b \x1f\x00\nspark.y \\u0041\\\n  \\tz\nk\\=1:v\n", "f")
    assert values(s) == {"spark.x": "a b", "spark.y": "A\tz", "k=1": "v"}
    with pytest.raises(UsageError, match=r"f:1: malformed \\uxxxx"):
        parse_properties("spark.x \\u00zz\n", "f")


def test_conf_keys_keep_their_spaces_as_spark_submit_does():
    s = parse_conf_pairs([" spark.io.encryption.enabled=true", "spark.authenticate =true", "spark.x=", "=v"])
    assert values(s) == {" spark.io.encryption.enabled": "true", "spark.authenticate ": "true", "spark.x": "",
                         "": "v"}
    rules = {f.rule for f in check(parse_submit_args(["--master", "local[2]", "--conf",
                                                      " spark.io.encryption.enabled=true", "app.py"])).errors}
    assert "io-encryption" in rules


@pytest.mark.parametrize("current, legacy, conflict", [
    ("SSE-KMS", "AES256", True), ("SSE-KMS", " sse-kms", False), (None, "SSE-KMS", False)])
def test_two_names_for_one_s3a_setting_with_different_values_is_an_error(current, legacy, conflict):
    conf = {"spark.io.encryption.enabled": "true",
            "spark.hadoop.fs.s3a.encryption.key": "arn:aws:kms:us-east-1:111122223333:key/"
                                                  "1234abcd-12ab-34cd-56ef-1234567890ab"}
    if current is not None:
        conf["spark.hadoop.fs.s3a.encryption.algorithm"] = current
    conf["spark.hadoop.fs.s3a.server-side-encryption-algorithm"] = legacy
    report = check(Settings.from_mapping(conf), ["s3a://bucket/x"], cluster=False)
    found = [f for f in report.errors if " / " in f.setting]
    assert bool(found) == conflict
    if conflict:
        assert found[0].rule == "s3a-sse-kms" and "set only one of the two names" in found[0].fix
        assert found[0].setting == ("spark.hadoop.fs.s3a.encryption.algorithm / "
                                    "spark.hadoop.fs.s3a.server-side-encryption-algorithm")


def test_per_bucket_names_conflict_too():
    conf = {"spark.hadoop.fs.s3a.bucket.b.encryption.algorithm": "SSE-KMS",
            "spark.hadoop.fs.s3a.bucket.b.server-side-encryption-algorithm": "SSE-S3"}
    report = check(Settings.from_mapping(conf), ["s3a://b/x"], cluster=False)
    assert any(f.setting.startswith("spark.hadoop.fs.s3a.bucket.b.encryption.algorithm / ") for f in report.errors)
