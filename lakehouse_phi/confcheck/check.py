"""The checker: :data:`~lakehouse_phi.confcheck.rules.RULES` over :class:`Settings`, a cluster policy or a session.

Settings are read as Spark and Hadoop read them:

* ``spark.hadoop.X`` is Hadoop's ``X``; a bare ``fs.s3a.…`` key counts where it reaches Hadoop (a live session, a
  Databricks cluster) and then wins over the ``spark.hadoop.`` form, as Spark lays session settings over the Hadoop
  configuration; spark-submit ignores bare keys in a properties file or ``--conf``, and so does the checker;
* values are trimmed and compared without case (``TRUE ``, ``True`` and ``sse-kms`` are accepted);
* for each bucket: ``fs.s3a.bucket.<bucket>.<current>``, ``…<legacy>``, ``fs.s3a.<current>``, ``fs.s3a.<legacy>``
  — the first one set wins (an empty per-bucket value still overrides, as in Hadoop); keys of ``core-site.xml``
  (``HADOOP_CONF_DIR``) are the base under ``spark.hadoop.*``, and a per-bucket key there still beats a global one
  anywhere;
* ``-Dspark.…=…`` in ``spark.driver.extraJavaOptions`` (and the other Java-option settings) are settings of that
  JVM: checked as given there too (an insecure one is a finding even when a secure value is set elsewhere);
  ``-Daws.secretAccessKey=…`` and the like are credentials;
* buckets come from the job's ``s3a://``, ``s3://`` and ``s3n://`` paths (all served by S3A on Databricks and
  open-source Spark; EMRFS's own ``fs.s3.*`` encryption settings are not read). No S3 path: no S3A rule applies.

Secrets are never shown: credential values print as ``***``, and so does an ``encryption.key`` that is not a
well-formed KMS key name (it may be an SSE-C key).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from lakehouse_phi.confcheck.compute import (
    ACCESS_MODE_KEY,
    CLUSTER_ID_KEY,
    DRIVER_NODE_TYPE_KEY,
    NODE_TYPE_KEY,
    Compute,
    detect,
)
from lakehouse_phi.confcheck.rules import (
    JAVA_OPTION_KEYS,
    KMS_KEY_RE,
    REDACT_KEY_RE,
    RULES,
    Absent,
    AtLeast,
    Check,
    KmsKey,
    Requirement,
    Rule,
    Severity,
    norm,
)
from lakehouse_phi.confcheck.sources import ClusterPolicy, Settings, Value, read_environment, read_session
from lakehouse_phi.errors import JobRefused, UsageError
from lakehouse_phi.storage.engines import connect_workspace

MASK = "***"
HADOOP_PREFIX = "spark.hadoop."
#: Spark settings that hand environment variables to the driver or executors
_ENV_PREFIXES = ("spark.executorEnv.", "spark.yarn.appMasterEnv.", "spark.kubernetes.driverEnv.")
_LOCAL_MASTER = re.compile(r"^\s*local(\[[^\]]*\])?\s*$", re.IGNORECASE)
_S3_PATH = re.compile(r"^(?:s3a|s3n|s3)://([^/?#]*)", re.IGNORECASE)


@dataclass(frozen=True)
class Finding:
    """One broken rule. ``value`` is what was seen (``None``: unset; secrets as ``***``); ``source`` is where the
    winning value came from (a file and line, ``--conf``, a cluster JSON place, ``session``) or, when unset, the
    place that lacks it."""

    rule: str
    severity: Severity
    setting: str
    value: str | None
    fix: str
    bucket: str | None = None
    source: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        where = f" [bucket {self.bucket}]" if self.bucket else ""
        seen = "(unset)" if self.value is None else repr(self.value)
        return f"{self.severity} {self.rule}{where}: {self.setting} = {seen}; fix: {self.fix}"


@dataclass(frozen=True)
class NotApplied:
    rule: str
    reason: str


@dataclass(frozen=True)
class PlatformManaged:
    """A rule the compute's platform satisfies (Databricks serverless disk and network encryption): an explicit,
    audited outcome, neither a pass the user earned nor an error."""

    rule: str
    reason: str
    compute: str


@dataclass(frozen=True)
class Report:
    findings: tuple[Finding, ...] = ()
    not_applied: tuple[NotApplied, ...] = ()
    buckets: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    platform_managed: tuple[PlatformManaged, ...] = ()
    compute: Compute | None = None

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warn"]

    @property
    def ok(self) -> bool:
        """No ``error`` finding (warnings do not stop a job)."""
        return not self.errors

    def merged(self, *others: Report) -> Report:
        """This report and ``others`` together; repeated findings and notes kept once."""
        parts = (self, *others)
        return Report(tuple(dict.fromkeys(f for r in parts for f in r.findings)),
                      tuple(dict.fromkeys(n for r in parts for n in r.not_applied)),
                      tuple(dict.fromkeys(b for r in parts for b in r.buckets)),
                      tuple(dict.fromkeys(s for r in parts for s in r.sources)),
                      tuple(dict.fromkeys(p for r in parts for p in r.platform_managed)),
                      next((r.compute for r in parts if r.compute is not None), None))

    def to_dict(self) -> dict[str, Any]:
        out = {"ok": self.ok, "errors": len(self.errors), "warnings": len(self.warnings),
               "findings": [f.to_dict() for f in self.findings],
               "not_applied": [asdict(n) for n in self.not_applied],
               "buckets": list(self.buckets), "sources": list(self.sources)}
        if self.compute is not None:
            out["compute"] = self.compute.to_dict()
            out["platform_managed"] = [asdict(p) for p in self.platform_managed]
        return out

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def raise_on_errors(self) -> None:
        """Raise :class:`JobRefused` (exit 1) naming every ``error`` finding; no secret value is in the message."""
        if self.errors:
            lines = "\n".join(f"  - {f}" for f in self.errors)
            raise JobRefused(f"insecure configuration, {len(self.errors)} error finding(s):\n{lines}")


# ---------------------------------------------------------------- reading settings as Spark and Hadoop do


@dataclass
class _Hadoop:
    """Hadoop's view of the settings: hadoop key -> (key as written, value)."""

    keys: dict[str, tuple[str, Value]] = field(default_factory=dict)
    ignored: dict[str, tuple[str, Value]] = field(default_factory=dict)

    @classmethod
    def of(cls, settings: Settings) -> _Hadoop:
        view = cls()
        view.keys.update((key, (key, value)) for key, value in settings.site.items())
        hadoop_form: dict[str, tuple[str, Value]] = {}
        for key, value in settings.conf.items():
            if key.startswith(HADOOP_PREFIX):
                hadoop_form.setdefault(key[len(HADOOP_PREFIX):], (key, value))
        view.keys.update(hadoop_form)
        for key, value in settings.conf.items():
            if not key.startswith("spark."):
                (view.keys if value.bare_applies else view.ignored)[key] = (key, value)
        return view

    def s3a(self, bucket: str, req: Requirement) -> tuple[str, Value] | None:
        suffixes = (req.setting, req.legacy) if req.legacy else (req.setting,)
        for prefix in (f"fs.s3a.bucket.{bucket}.", "fs.s3a."):
            for suffix in suffixes:
                if (hit := self.keys.get(prefix + suffix)) is not None:
                    return hit
        return None

    def s3a_conflicts(self, bucket: str, req: Requirement) -> list[tuple[tuple[str, Value], tuple[str, Value]]]:
        """Both names of one setting (current and legacy) set at one level with different values: Hadoop maps the
        legacy name onto the current one and the last one *set* wins, in an order Spark does not define."""
        out = []
        for prefix in (f"fs.s3a.bucket.{bucket}.", "fs.s3a.") if req.legacy else ():
            current, legacy = self.keys.get(prefix + req.setting), self.keys.get(prefix + str(req.legacy))
            if current and legacy and norm(current[1].value) != norm(legacy[1].value):
                out.append((current, legacy))
        return out

    def ignored_note(self, bucket: str, req: Requirement) -> str:
        suffixes = (req.setting, req.legacy) if req.legacy else (req.setting,)
        for prefix in (f"fs.s3a.bucket.{bucket}.", "fs.s3a."):
            for suffix in suffixes:
                if (hit := self.ignored.get(prefix + suffix)) is not None:
                    return (f" ({hit[0]} in {hit[1].source} is ignored by spark-submit: only "
                            f"{HADOOP_PREFIX}{hit[0]} reaches Hadoop)")
        return ""


def shown(setting: str, value: str | None, check: Check | None = None) -> str | None:
    """The value as a report may show it."""
    if value is None:
        return None
    if isinstance(check, Absent) or REDACT_KEY_RE.search(setting):
        return MASK
    if isinstance(check, KmsKey) or setting.endswith((".encryption.key", ".server-side-encryption.key")):
        return value if KMS_KEY_RE.match(value.strip()) else MASK
    return value


def buckets_of(paths: Iterable[str]) -> tuple[list[str], list[Finding]]:
    """The S3 buckets a job touches, and a finding for each path that carries credentials (``user:secret@``)."""
    buckets: dict[str, None] = {}
    findings: list[Finding] = []
    for path in paths:
        match = _S3_PATH.match(path.strip())
        if match is None:
            continue
        _userinfo, at, bucket = match[1].rpartition("@")
        scheme = path.strip().split(":", 1)[0].lower()
        if not bucket:
            raise UsageError(f"path {scheme}://{'***@' if at else ''}…: no bucket name; "
                             f"write {scheme}://<bucket>/<key>")
        if at:
            findings.append(_finding(_CREDENTIALS, _CREDENTIALS.requires[0], f"path {scheme}://***@{bucket}/…",
                                     MASK, bucket=bucket, fix_setting="the credentials in the path"))
        buckets.setdefault(bucket)
    return list(buckets), findings


def is_local_master(master: str | None) -> bool:
    """``local``, ``local[4]``, ``local[*, 4]``: driver and executors share one JVM (``local-cluster`` does not)."""
    return master is not None and _LOCAL_MASTER.match(master) is not None


def _finding(rule: Rule, req: Requirement, setting: str, value: str | None, *, bucket: str | None = None,
             source: str | None = None, fix_setting: str | None = None, note: str = "") -> Finding:
    fix = rule.fix.format(setting=fix_setting or setting, secure=req.secure) + note
    return Finding(rule.id, rule.severity, setting, value, fix, bucket, source)


_CREDENTIALS = next(r for r in RULES if r.id == "s3a-static-credentials")


# ---------------------------------------------------------------- checking settings


def _check_spark_rule(rule: Rule, settings: Settings) -> list[Finding]:
    out = []
    for req in rule.requires:
        got = settings.get(req.setting)
        raw = got.value if got else None
        if not req.check.ok(raw):
            out.append(_finding(rule, req, req.setting, shown(req.setting, raw, req.check),
                                source=got.source if got else None))
    return out


def _check_bucket_rule(rule: Rule, hadoop: _Hadoop, bucket: str) -> list[Finding]:
    out = []
    for req in rule.requires:
        for (cur_key, cur), (old_key, old) in hadoop.s3a_conflicts(bucket, req):
            seen = f"{shown(cur_key, cur.value, req.check)!r} vs {shown(old_key, old.value, req.check)!r}"
            out.append(Finding(rule.id, "error", f"{cur_key} / {old_key}", seen,
                               f"set only one of the two names ({cur_key}={req.secure}) and remove {old_key}: "
                               "Hadoop maps the legacy name onto the current one and the last one set wins, in an "
                               "order Spark does not define", bucket, f"{cur.source}; {old.source}"))
        hit = hadoop.s3a(bucket, req)
        if hit is None:
            default = f"{HADOOP_PREFIX}fs.s3a.{req.setting}"
            out.append(_finding(rule, req, default, None, bucket=bucket, note=hadoop.ignored_note(bucket, req)))
        elif not req.check.ok(hit[1].value):
            out.append(_finding(rule, req, hit[0], shown(hit[0], hit[1].value, req.check), bucket=bucket,
                                source=hit[1].source))
    return out


def _check_credentials(rule: Rule, settings: Settings) -> list[Finding]:
    out = []
    hadoop_globs = [r for r in rule.requires if not r.setting.startswith("env:")]
    env_globs = [r for r in rule.requires if r.setting.startswith("env:")]
    env: list[tuple[str, str, Value]] = []  # (variable, key as written, value)
    for key, value in settings.conf.items():
        env_prefix = next((p for p in _ENV_PREFIXES if key.startswith(p)), None)
        if env_prefix:
            env.append((key[len(env_prefix):], key, value))
            continue
        hkey = key[len(HADOOP_PREFIX):] if key.startswith(HADOOP_PREFIX) else key
        if hkey.startswith("spark."):
            continue
        req = next((r for r in hadoop_globs if fnmatchcase(hkey, r.setting)), None)
        if req is not None and not req.check.ok(value.value):
            out.append(_finding(rule, req, key, MASK, source=value.source))
    for key, value in settings.site.items():
        req = next((r for r in hadoop_globs if fnmatchcase(key, r.setting)), None)
        if req is not None and not req.check.ok(value.value):
            out.append(_finding(rule, req, key, MASK, source=value.source))
    if settings.cluster_spec is not None:
        env.extend((name, f"spark_env_vars.{name}", v) for name, v in settings.cluster_spec.env.items())
    env.extend((name, f"environment variable {name}", v) for name, v in settings.environ.items())
    for name, key, value in env:
        req = next((r for r in env_globs if fnmatchcase(name, r.setting[4:])), None)
        if req is not None and not req.check.ok(value.value):
            out.append(_finding(rule, req, key, MASK, source=value.source))
    jvm_globs = [r for r in rule.requires if r.setting.startswith("jvm:")]
    for option_key, prop, value in java_properties(settings):
        req = next((r for r in jvm_globs if fnmatchcase(prop, r.setting[4:])), None)
        if req is not None and not req.check.ok(value.value):
            out.append(_finding(rule, req, f"{option_key} -D{prop}", MASK, source=value.source))
    return out


def java_properties(settings: Settings) -> list[tuple[str, str, Value]]:
    """``(setting, property, value)`` for every ``-Dproperty=value`` in the Java-option settings
    (:data:`~lakehouse_phi.confcheck.rules.JAVA_OPTION_KEYS`), split as a shell would."""
    import shlex

    out = []
    for option_key in JAVA_OPTION_KEYS:
        got = settings.get(option_key)
        if got is None:
            continue
        try:
            words = shlex.split(got.value)
        except ValueError:
            words = got.value.split()
        for word in words:
            if word.startswith("-D") and len(word) > 2:
                prop, _, val = word[2:].partition("=")
                out.append((option_key, prop, Value(val, f"{got.source} ({option_key})", True)))
    return out


def _java_overlay(settings: Settings) -> Settings | None:
    """The settings as a JVM given ``-Dspark.*`` options sees them (those properties laid over the rest), or None
    when no Java option sets a Spark property."""
    props = {prop: value for _key, prop, value in java_properties(settings) if prop.startswith("spark.")}
    if not props:
        return None
    return settings.merged(Settings(props, sources=()))


def _check_spec_rule(rule: Rule, settings: Settings) -> list[Finding]:
    spec = settings.cluster_spec
    assert spec is not None
    out = []
    for req in rule.requires:
        got = spec.attrs.get(req.setting)
        if not req.check.ok(got.value if got else None):
            out.append(_finding(rule, req, req.setting, got.value if got else None,
                                source=got.source if got else spec.label))
    return out


def check(settings: Settings | Mapping[str, Any], paths: Iterable[str] = (), cluster: bool | None = None,
          compute: Compute | None = None) -> Report:
    """Check settings against every rule.

    Args:
        settings: from :mod:`~lakehouse_phi.confcheck.sources` (or a plain ``{key: value}`` mapping, read like a
            live session's settings).
        paths: the job's input and output URIs; their S3 buckets are the ones the S3A rules check.
        cluster: whether executors run on other hosts (``rpc-encryption`` applies). ``None`` infers it from
            ``spark.master``: ``local``, ``local[N]`` or ``local[*, N]`` (Databricks single node) is not a cluster;
            any other master, or none at all (a spark-defaults file or cluster spec usually leaves it to the
            launcher; a Spark Connect server may not report it), is one.
        compute: where the job runs (:func:`lakehouse_phi.confcheck.compute.detect`); the rules its platform
            satisfies are reported as :class:`PlatformManaged` instead of being checked. ``None``: checked as
            user-controlled everywhere.

    Returns:
        the findings, and the rules that did not apply with the reason.
    """
    if not isinstance(settings, Settings):
        settings = Settings.from_mapping(settings)
    paths = list(paths)
    report = _check_one(settings, paths, cluster, compute)
    overlay = _java_overlay(settings)
    if overlay is None:
        return report
    seen = _check_one(overlay, paths, cluster, compute)  # what a JVM launched with those -D options reads
    return Report(tuple(dict.fromkeys((*report.findings, *seen.findings))), report.not_applied, report.buckets,
                  report.sources, report.platform_managed, report.compute)


def _check_one(settings: Settings, paths: Iterable[str], cluster: bool | None, compute: Compute | None) -> Report:
    buckets, findings = buckets_of(paths)
    master = settings.get("spark.master")
    if cluster is None:
        cluster = not is_local_master(master.value if master else None)
    hadoop = _Hadoop.of(settings)
    not_applied: list[NotApplied] = []
    managed = compute.platform_managed if compute is not None else {}
    platform: list[PlatformManaged] = []
    for rule in RULES:
        if rule.id in managed:
            platform.append(PlatformManaged(rule.id, managed[rule.id], compute.kind if compute else ""))
        elif rule.scope == "spark":
            findings += _check_spark_rule(rule, settings)
        elif rule.scope == "cluster":
            if cluster:
                findings += _check_spark_rule(rule, settings)
            else:
                shown_master = master.value.strip() if master else "local"
                not_applied.append(NotApplied(rule.id, f"local master {shown_master}: driver and executors share "
                                                       "one JVM, so no RPC leaves the host"))
        elif rule.scope == "bucket":
            if buckets:
                for bucket in buckets:
                    findings += _check_bucket_rule(rule, hadoop, bucket)
            else:
                not_applied.append(NotApplied(rule.id, "no s3a://, s3:// or s3n:// path given (--paths)"))
        elif rule.scope == "anywhere":
            findings += _check_credentials(rule, settings)
        elif rule.scope == "cluster-spec":
            if settings.cluster_spec is not None:
                findings += _check_spec_rule(rule, settings)
            else:
                not_applied.append(NotApplied(rule.id, "no Databricks cluster spec given (--cluster-json)"))
    return Report(tuple(dict.fromkeys(findings)), tuple(not_applied), tuple(buckets), settings.sources,
                  tuple(platform), compute)


def probe_keys(paths: Iterable[str] = ()) -> list[str]:
    """Every key the rules read for these paths (for sessions that cannot list their settings)."""
    buckets, _ = buckets_of(paths)
    keys = ["spark.master"]
    for rule in RULES:
        for req in rule.requires:
            if rule.scope in ("spark", "cluster"):
                keys.append(req.setting)
            elif rule.scope == "bucket":
                for prefix in ("fs.s3a.", *(f"fs.s3a.bucket.{b}." for b in buckets)):
                    for suffix in filter(None, (req.setting, req.legacy)):
                        keys += [prefix + suffix, HADOOP_PREFIX + prefix + suffix]
            elif rule.scope == "anywhere" and not req.setting.startswith("env:"):
                names = [req.setting.replace("*", b) for b in buckets] if "*" in req.setting else [req.setting]
                keys += [k for name in names for k in (name, HADOOP_PREFIX + name)]
    return keys


def check_session(spark: Any, paths: Iterable[str] = (), cluster: bool | None = None,
                  compute: Compute | None = None) -> Report:
    """Read a live SparkSession's settings (classic or Spark Connect, ``sparkContext`` untouched), then check them.

    ``compute`` defaults to what :func:`~lakehouse_phi.confcheck.compute.detect` finds from this process's
    environment and the session's settings (serverless: the platform-managed rules are recorded, not checked)."""
    paths = list(paths)
    settings = read_session(spark, probe=[*probe_keys(paths), CLUSTER_ID_KEY, ACCESS_MODE_KEY, NODE_TYPE_KEY,
                                          DRIVER_NODE_TYPE_KEY, *JAVA_OPTION_KEYS])
    settings = read_environment(os.environ).merged(settings)  # core-site.xml under the session; AWS_* variables
    if compute is None:
        compute = detect(conf={k: v.value for k, v in settings.conf.items()}, workspace=connect_workspace(spark))
    return check(settings, paths, cluster, compute)


# ---------------------------------------------------------------- checking a cluster policy


def _policy_path(rule: Rule, req: Requirement) -> list[str]:
    if rule.scope in ("spark", "cluster"):
        return [f"spark_conf.{req.setting}"]
    if rule.scope == "bucket":
        return [f"spark_conf.{HADOOP_PREFIX}fs.s3a.{s}" for s in filter(None, (req.setting, req.legacy))]
    if rule.scope == "cluster-spec":
        return [req.setting]
    if req.setting.startswith("env:"):
        return [f"spark_env_vars.{req.setting[4:]}"]
    return [] if "*" in req.setting else [f"spark_conf.{HADOOP_PREFIX}{req.setting}"]


def _admits(what: str, values: Iterable[str | None], check: Check) -> str | None:
    """``"<what> admits 'a', 'b'"`` for the values that break ``check`` (secrets masked), or ``None``."""
    bad = [v for v in values if not check.ok(v)]
    return f"{what} admits {', '.join(repr(shown_v(v, check)) for v in bad)}" if bad else None


def _fixed(element: Mapping[str, Any], check: Check) -> str | None:
    return None if check.ok(_policy_str(element.get("value"))) else "fixed to an insecure value"


def _forbidden(element: Mapping[str, Any], check: Check) -> str | None:
    return None if check.ok(None) else "forbidden, so it stays at its insecure default"


def _unlimited(element: Mapping[str, Any], check: Check) -> str | None:
    return None if isinstance(check, Absent) else "unlimited: a user may set any value"


def _allowlist(element: Mapping[str, Any], check: Check) -> str | None:
    return _admits("the allowlist", [_policy_str(v) for v in element.get("values") or []], check)


def _blocklist(element: Mapping[str, Any], check: Check) -> str | None:
    if isinstance(check, Absent):
        return None
    return "a blocklist admits every other spelling and value (e.g. 'FALSE', ' false')"


def _regex(element: Mapping[str, Any], check: Check) -> str | None:
    """The regex is tried against the rule's probes and against a sample of what it generates itself
    (:mod:`~lakehouse_phi.confcheck.regex_samples`): one admitted insecure value is a finding."""
    from lakehouse_phi.confcheck.regex_samples import regex_samples

    text = str(element.get("pattern", ""))
    try:
        pattern = re.compile(text)
    except re.error:
        return "its regex does not compile"
    admitted = [p for p in check.probes if p is not None and pattern.fullmatch(p)] + regex_samples(text)
    return _admits("the regex", list(dict.fromkeys(admitted))[:5] if any(not check.ok(v) for v in admitted)
                   else [], check)


def _range(element: Mapping[str, Any], check: Check) -> str | None:
    minimum = element.get("minValue")
    if not isinstance(check, AtLeast):
        return "a range cannot pin this setting (it admits numbers, and this setting is not one)"
    if not isinstance(minimum, (int, float)) or isinstance(minimum, bool) or minimum < check.minimum:
        return f"the range admits values below {check.minimum}"
    return None


#: Cluster-policy element type -> how an element of that type lets an insecure value through (``None``: it doesn't).
_EXPOSURE_BY_TYPE: dict[str, Callable[[Mapping[str, Any], Check], str | None]] = {
    "fixed": _fixed,
    "forbidden": _forbidden,
    "unlimited": _unlimited,
    "allowlist": _allowlist,
    "blocklist": _blocklist,
    "regex": _regex,
    "range": _range,
}


def _override_exposure(element: Mapping[str, Any] | None, check: Check, primary: str) -> str | None:
    """How a second name of one S3A setting (the legacy name, a per-bucket name) could override ``primary`` with
    an insecure value; unset is fine here (the lookup falls through to the pinned name)."""
    if element is None:
        return (f"not in the policy: a user may set it to an insecure value, and it overrides {primary} (Hadoop "
                "reads a per-bucket name first; of the current and legacy names the last one set wins)")
    if element.get("type") == "forbidden":
        return None
    by_type = _EXPOSURE_BY_TYPE.get(str(element.get("type")))
    problems = [by_type(element, check) if by_type else "an unknown element type"]
    default = _policy_str(element.get("defaultValue"))
    if element.get("type") != "fixed" and default is not None and not check.ok(default):
        problems.append(f"its default {shown_v(default, check)!r} is insecure")
    return "; ".join(p for p in problems if p) or None


def _exposure(element: Mapping[str, Any] | None, check: Check) -> str | None:
    """How a user under this policy element could end up with an insecure value, or ``None`` if they cannot."""
    if element is None:
        return None if isinstance(check, Absent) else "not in the policy: a user may set any value or leave it unset"
    kind = element.get("type")
    by_type = _EXPOSURE_BY_TYPE.get(str(kind))
    problems = [by_type(element, check) if by_type else None]
    if kind != "fixed":
        if element.get("isOptional") and not check.ok(None):
            problems.append("optional, and unset is insecure")
        default = _policy_str(element.get("defaultValue"))
        if default is not None and not check.ok(default):
            problems.append(f"its default {shown_v(default, check)!r} is insecure")
    return "; ".join(p for p in problems if p) or None


def _policy_str(value: Any) -> str | None:
    """A policy value as the setting it becomes (JSON ``true`` is ``"true"``)."""
    if value is None:
        return None
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def shown_v(value: str | None, check: Check) -> str:
    return shown("", value, check) or ""


def _masked_element(element: Mapping[str, Any], check: Check) -> str:
    masked = {k: ([shown_v(str(x), check) for x in v] if k == "values" else
                  shown_v(str(v), check) if k in ("value", "defaultValue") and not isinstance(v, bool) else v)
              for k, v in element.items()}
    return json.dumps(masked, sort_keys=True)


def _policy_override_findings(policy: ClusterPolicy, rule: Rule, buckets: list[str]) -> list[Finding]:
    """Every other name that overrides the pinned S3A one (see :func:`check_cluster_policy`)."""
    out = []
    for req in rule.requires:
        names = [n for n in (req.setting, req.legacy) if n]
        globals_ = [f"spark_conf.{HADOOP_PREFIX}fs.s3a.{n}" for n in names]
        primary = next((p for p in globals_ if p in policy.elements), globals_[0])
        others = [p for p in globals_ if p != primary]
        others += [f"spark_conf.{HADOOP_PREFIX}fs.s3a.bucket.{b}.{n}" for b in buckets for n in names]
        for path in others:
            element = policy.elements.get(path)
            problem = _override_exposure(element, req.check, primary)
            if problem is None:
                continue
            bucket = next((b for b in buckets if f".bucket.{b}." in path), None)
            out.append(Finding(rule.id, rule.severity, path,
                               None if element is None else _masked_element(element, req.check),
                               f"{problem}; pin it too: \"{path}\": "
                               f"{json.dumps({'type': 'fixed', 'value': req.secure})}, or "
                               f"\"{path}\": {{\"type\": \"forbidden\"}}", bucket, policy.label))
    return out


def check_cluster_policy(policy: ClusterPolicy, paths: Iterable[str] = (), cluster: bool = True) -> Report:
    """Check a Databricks cluster policy: a setting the policy lets a user change to an insecure value is a finding.

    Each rule's settings are looked up as ``spark_conf.<key>`` (``spark_conf.spark.hadoop.fs.s3a.<suffix>`` for S3A,
    the current name first, else the legacy one), ``spark_env_vars.<VAR>`` or a spec attribute such as
    ``enable_local_disk_encryption``. Credentials are findings only where the policy itself holds a plain value
    (a policy cannot forbid every per-bucket key). For the S3A rules (when the job touches S3: ``paths``) pinning
    one name is not enough: the other name of the setting (legacy or current) and the per-bucket names of every
    bucket the job touches (``spark.hadoop.fs.s3a.bucket.<bucket>.*``) override it, so each must be pinned to a
    secure value or forbidden.
    """
    buckets, findings = buckets_of(paths)
    not_applied: list[NotApplied] = []
    for rule in RULES:
        if rule.scope == "bucket" and not buckets:
            not_applied.append(NotApplied(rule.id, "no s3a://, s3:// or s3n:// path given (--paths)"))
            continue
        if rule.scope == "cluster" and not cluster:
            continue
        for req in rule.requires:
            candidates = _policy_path(rule, req)
            if not candidates:
                continue
            path = next((p for p in candidates if p in policy.elements), candidates[0])
            element = policy.elements.get(path)
            problem = _exposure(element, req.check)
            if problem is None:
                continue
            if isinstance(req.check, Absent):
                fix = f"{problem}; remove {path} from the policy or make it {{\"type\": \"forbidden\"}}"
            else:
                pinned = {"type": "fixed", "value": True if rule.scope == "cluster-spec" else req.secure}
                fix = f"{problem}; pin it: \"{path}\": {json.dumps(pinned)}"
            findings.append(Finding(rule.id, rule.severity, path,
                                    None if element is None else _masked_element(element, req.check),
                                    fix, None, policy.label))
        if rule.scope == "bucket":
            findings += _policy_override_findings(policy, rule, buckets)
    return Report(tuple(dict.fromkeys(findings)), tuple(not_applied), tuple(buckets), (policy.label,))
