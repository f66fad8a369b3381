"""Readers: turn every place settings live into :class:`Settings` (or a :class:`ClusterPolicy`).

Sources: a mapping, a spark-defaults file, ``--conf K=V`` pairs, a spark-submit argument list, a Databricks
cluster/job JSON (every cluster spec in it, ``for_each_task`` included), a Databricks cluster-policy JSON, the
Hadoop XML files of ``HADOOP_CONF_DIR`` / ``YARN_CONF_DIR`` (``core-site.xml``: the base every Hadoop
configuration starts from, under the ``spark.hadoop.*`` settings), the process environment (AWS credentials), and
a live SparkSession (classic or Spark Connect, read with ``spark.conf.getAll`` — never through ``sparkContext``).
Nothing here imports PySpark.

Precedence is spark-submit's: merge sources with :meth:`Settings.merged` in the order spark-defaults, cluster JSON,
``--conf``; a later source wins key by key.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lakehouse_phi.errors import UsageError


@dataclass(frozen=True)
class Value:
    """One setting's value and where it came from (a file and line, ``--conf``, a cluster JSON place, ``session``).

    ``bare_applies`` says whether a key without the ``spark.`` prefix (``fs.s3a.…``) from this source reaches
    Hadoop: it does for a live session (Spark copies session settings into each Hadoop configuration) and on
    Databricks clusters; spark-submit ignores it in a properties file or ``--conf`` ("Ignoring non-Spark config
    property"), so there only the ``spark.hadoop.`` form counts.
    """

    value: str
    source: str
    bare_applies: bool = True


@dataclass(frozen=True)
class ClusterSpec:
    """The non-Spark parts of a Databricks cluster spec that the rules read."""

    label: str
    attrs: Mapping[str, Value] = field(default_factory=dict)
    env: Mapping[str, Value] = field(default_factory=dict)


@dataclass(frozen=True)
class Settings:
    """Spark settings (keys as written, ``spark.hadoop.`` prefixes kept) plus, for a cluster, its spec."""

    conf: Mapping[str, Value] = field(default_factory=dict)
    cluster_spec: ClusterSpec | None = None
    sources: tuple[str, ...] = ()
    #: Hadoop keys from XML resources (core-site.xml): the base that spark.hadoop.* and session keys override
    site: Mapping[str, Value] = field(default_factory=dict)
    #: environment variables of the process that runs the job (the driver)
    environ: Mapping[str, Value] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any], source: str = "settings", bare_applies: bool = True,
                     ) -> Settings:
        """Settings from a plain ``{key: value}`` mapping (values are turned into strings as Spark would)."""
        return cls({str(k): Value(_as_str(v), source, bare_applies) for k, v in mapping.items()},
                   sources=(source,))

    def merged(self, *later: Settings) -> Settings:
        """These settings overridden key by key by ``later`` ones (the last cluster spec wins)."""
        conf, site, environ = dict(self.conf), dict(self.site), dict(self.environ)
        spec, sources = self.cluster_spec, list(self.sources)
        for other in later:
            conf.update(other.conf)
            site.update(other.site)
            environ.update(other.environ)
            spec = other.cluster_spec or spec
            sources.extend(other.sources)
        return Settings(conf, spec, tuple(sources), site, environ)

    def get(self, key: str) -> Value | None:
        return self.conf.get(key)


def _as_str(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# ---------------------------------------------------------------- spark-defaults (java.util.Properties) and --conf


#: ``java.util.Properties`` ends lines at ``\n``, ``\r`` and ``\r\n`` only (not at form feed, vertical tab, NEL,
#: U+2028/2029 as ``str.splitlines`` does) and its whitespace is space, tab and form feed only (not NBSP or NEL).
_LINE_END = re.compile(r"\r\n|\r|\n")
_PROP_WS = " \t\f"
_PROP_SPLIT = re.compile(r"^((?:\\.|[^ \t\f=:\\])*)[ \t\f]*[=:]?[ \t\f]*(.*)$", re.DOTALL)


def java_trim(text: str) -> str:
    """``String.trim()``: strips every character up to U+0020 (controls included), but not NBSP or NEL."""
    start, end = 0, len(text)
    while start < end and text[start] <= " ":
        start += 1
    while end > start and text[end - 1] <= " ":
        end -= 1
    return text[start:end]


def _unescape(text: str, where: str) -> str:
    """The escapes ``java.util.Properties.load`` undoes (``\\t \\n \\r \\f``, ``\\uXXXX``; any other drops its
    backslash). A malformed ``\\uXXXX`` is an error there (Spark does not start), so it is one here."""
    def one(m: re.Match[str]) -> str:
        esc = m[1]
        if esc.startswith("u"):
            if not re.fullmatch(r"u[0-9a-fA-F]{4}", esc):
                raise UsageError(f"{where}: malformed \\uxxxx escape; java.util.Properties (and so Spark) refuses the "
                                 "file: write four hex digits after \\u")
            return chr(int(esc[1:], 16))
        return {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}.get(esc, esc)

    return re.sub(r"\\(u.{0,4}|.)", one, text, flags=re.DOTALL)


def _odd_backslashes(line: str) -> bool:
    return (len(line) - len(line.rstrip("\\"))) % 2 == 1


def parse_properties(text: str, source: str, bare_applies: bool = False) -> Settings:
    """Parse spark-defaults text the way Spark does: ``java.util.Properties.load`` (UTF-8), then values trimmed
    with ``String.trim``.

    Lines end at ``\\n``, ``\\r`` or ``\\r\\n``; leading space, tab and form feed are skipped; ``#`` and ``!``
    start comments; a key ends at the first unescaped ``=``, ``:``, space, tab or form feed, then whitespace, at
    most one ``=`` or ``:`` and whitespace again are skipped; a line ending in an odd number of backslashes
    continues on the next (its leading whitespace skipped). NBSP and NEL are ordinary characters (so
    ``key<NBSP>value`` is one key with an empty value, as Spark reads it). A key given twice keeps its last value.
    """
    conf: dict[str, Value] = {}
    lines = _LINE_END.split(text)
    i = 0
    while i < len(lines):
        start = i
        logical = lines[i].lstrip(_PROP_WS)
        i += 1
        if not logical or logical[0] in "#!":
            continue
        while _odd_backslashes(logical) and i < len(lines):
            logical = logical[:-1] + lines[i].lstrip(_PROP_WS)
            i += 1
        if _odd_backslashes(logical):  # a continuation at the end of the file: Properties drops the backslash
            logical = logical[:-1]
        match = _PROP_SPLIT.match(logical)
        assert match is not None  # the pattern matches any string
        where = f"{source}:{start + 1}"
        key, value = _unescape(match[1], where), java_trim(_unescape(match[2], where))
        conf[key] = Value(value, where, bare_applies)
    return Settings(conf, sources=(source,))


def read_spark_defaults(path: str | Path) -> Settings:
    """A spark-defaults (``--properties-file``) file. Raises :class:`UsageError` (exit 2) when unreadable."""
    return parse_properties(_read_text(path), str(path))


def parse_conf_pairs(pairs: Iterable[str], source: str = "--conf") -> Settings:
    """``K=V`` strings as spark-submit reads ``--conf``: split at the first ``=``, key and value kept exactly as
    given (``' spark.x=1'`` is the key ``' spark.x'``, which Spark then ignores as not starting with ``spark.``;
    ``'spark.x =1'`` is the key ``'spark.x '``). Spark's typed settings trim the value when read."""
    conf: dict[str, Value] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise UsageError(f"{source} {pair.split('=')[0]!r}: expected KEY=VALUE, e.g. "
                             "--conf spark.io.encryption.enabled=true")
        conf[key] = Value(value, source, bare_applies=False)
    return Settings(conf, sources=(source,) if conf else ())


#: spark-submit options that take a value (SparkSubmitOptionParser); the rest of its options are switches
_SUBMIT_WITH_VALUE = frozenset("""
    --master --remote --deploy-mode --class --name --jars --packages --exclude-packages --repositories --py-files
    --files --archives --conf -c --properties-file --driver-memory --driver-java-options --driver-library-path
    --driver-class-path --executor-memory --proxy-user --driver-cores --total-executor-cores --executor-cores
    --num-executors --queue --principal --keytab --kill --status
""".split())


def parse_submit_args(argv: Iterable[str], spark_defaults: str | Path | None = None) -> Settings:
    """The settings a ``spark-submit`` command line gives its application.

    Reads ``--conf k=v``, ``--conf=k=v``, ``-c k=v``, ``--properties-file FILE`` (which replaces
    ``spark_defaults`` unless ``--load-spark-defaults`` is given, Spark 4) and ``--master`` (which wins over
    ``spark.master``). Parsing stops at the application
    (the first non-option argument): what follows belongs to the application, not to Spark.
    """
    args = list(argv)
    if args and Path(args[0]).name in ("spark-submit", "spark-submit.cmd", "pyspark", "spark-shell"):
        args = args[1:]
    pairs: list[str] = []
    props: str | Path | None = None
    load_defaults = False
    master: str | None = None
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("-"):
            break  # the primary resource: the rest are application arguments
        name, eq, inline = arg.partition("=")
        load_defaults = load_defaults or arg == "--load-spark-defaults"
        if name in _SUBMIT_WITH_VALUE:
            if eq:
                value = inline
            elif i + 1 < len(args):
                value, i = args[i + 1], i + 1
            else:
                raise UsageError(f"spark-submit argument {name}: missing its value")
            if name in ("--conf", "-c"):
                pairs.append(value)
            elif name == "--properties-file":
                props = value
            elif name == "--master":
                master = value
            elif name == "--driver-java-options":
                pairs.append(f"spark.driver.extraJavaOptions={value}")
        i += 1
    files = [spark_defaults] if spark_defaults is not None and (props is None or load_defaults) else []
    files += [props] if props is not None else []
    settings = Settings().merged(*(read_spark_defaults(f) for f in files),
                                 parse_conf_pairs(pairs, "spark-submit --conf"))
    if master is not None:
        settings = settings.merged(Settings({"spark.master": Value(master, "spark-submit --master", False)},
                                            sources=("spark-submit --master",)))
    return settings


# ---------------------------------------------------------------- Databricks cluster, job and policy JSON

#: element types of a Databricks cluster policy definition
POLICY_TYPES = frozenset({"fixed", "forbidden", "allowlist", "blocklist", "regex", "range", "unlimited"})
#: cluster-spec attributes the rules read (besides spark_conf and spark_env_vars)
_SPEC_ATTRS = ("enable_local_disk_encryption",)
_CLUSTER_MARKERS = ("spark_conf", "spark_version", "node_type_id", "num_workers", "autoscale", "cluster_name",
                    "enable_local_disk_encryption", "spark_env_vars", "policy_id")


@dataclass(frozen=True)
class ClusterPolicy:
    """A cluster policy definition: ``{"spark_conf.spark.io.encryption.enabled": {"type": "fixed", ...}, ...}``."""

    label: str
    elements: Mapping[str, Mapping[str, Any]]


def cluster_from_json(spec: Mapping[str, Any], label: str) -> Settings:
    """One Databricks cluster spec (clusters/create payload or a job's ``new_cluster``) as Settings."""
    spark_conf = spec.get("spark_conf") or {}
    env = spec.get("spark_env_vars") or {}
    if not isinstance(spark_conf, Mapping) or not isinstance(env, Mapping):
        raise UsageError(f"{label}: spark_conf and spark_env_vars must be JSON objects")
    conf = {str(k): Value(_as_str(v), f"{label}.spark_conf", True) for k, v in spark_conf.items()}
    attrs = {a: Value(_as_str(spec[a]), f"{label}.{a}") for a in _SPEC_ATTRS if a in spec}
    envs = {str(k): Value(_as_str(v), f"{label}.spark_env_vars") for k, v in env.items()}
    return Settings(conf, ClusterSpec(label, attrs, envs), (label,))


def clusters_from_json(doc: Any, label: str) -> list[Settings]:
    """Every cluster spec in a clusters/create or clusters/get payload, a job (``new_cluster``,
    ``tasks[].new_cluster``, ``job_clusters[].new_cluster``, and the task inside ``tasks[].for_each_task``, at any
    depth) or a jobs/get response (``settings``)."""
    if not isinstance(doc, Mapping):
        return []
    if isinstance(doc.get("settings"), Mapping):
        return clusters_from_json(doc["settings"], f"{label} settings")
    found: list[Settings] = []
    if isinstance(doc.get("new_cluster"), Mapping):
        found.append(cluster_from_json(doc["new_cluster"], f"{label} new_cluster"))
    for list_key, name_key in (("job_clusters", "job_cluster_key"), ("tasks", "task_key")):
        for i, item in enumerate(doc.get(list_key) or []):
            if isinstance(item, Mapping):
                found += _task_clusters(item, f"{label} {list_key}[{i}]"
                                              f"{f' ({item[name_key]})' if name_key in item else ''}")
    if not found and any(m in doc for m in _CLUSTER_MARKERS):
        found.append(cluster_from_json(doc, label))
    return found


def _task_clusters(task: Mapping[str, Any], label: str, depth: int = 0) -> list[Settings]:
    """The cluster of a task and of the task its ``for_each_task`` runs (nested ones too)."""
    found = []
    if isinstance(task.get("new_cluster"), Mapping):
        found.append(cluster_from_json(task["new_cluster"], f"{label}.new_cluster"))
    loop = task.get("for_each_task")
    if isinstance(loop, Mapping) and isinstance(loop.get("task"), Mapping) and depth < 16:
        found += _task_clusters(loop["task"], f"{label}.for_each_task.task", depth + 1)
    return found


def policy_from_json(doc: Any, label: str) -> ClusterPolicy | None:
    """A policy definition, bare or inside a policies API object (``definition`` as a JSON string or object)."""
    if isinstance(doc, Mapping) and "definition" in doc:
        definition = doc["definition"]
        if isinstance(definition, str):
            try:
                definition = json.loads(definition)
            except json.JSONDecodeError as exc:
                raise UsageError(f"{label}: definition is not valid JSON ({exc.msg} at line {exc.lineno}, "
                                 f"column {exc.colno})") from None
        return policy_from_json(definition, f"{label} definition")
    if not isinstance(doc, Mapping) or not doc:
        return None
    looks_like_policy = all(isinstance(v, Mapping) and "type" in v for v in doc.values())
    if not looks_like_policy:
        return None
    for path, element in doc.items():
        if element["type"] not in POLICY_TYPES:
            raise UsageError(f"{label} {path}.type: {element['type']!r} is not a policy element type; "
                             f"use one of {', '.join(sorted(POLICY_TYPES))}")
    return ClusterPolicy(label, dict(doc))


def read_cluster_json(path: str | Path) -> list[Settings] | ClusterPolicy:
    """A Databricks cluster spec, job, jobs/get response or cluster policy file.

    Returns the cluster specs it holds, or the policy. Raises :class:`UsageError` (exit 2) for an unreadable
    file, invalid JSON, or JSON that is neither.
    """
    label = str(path)
    text = _read_text(path)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{label}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    policy = policy_from_json(doc, label)
    if policy is not None:
        return policy
    clusters = clusters_from_json(doc, label)
    if not clusters:
        raise UsageError(f"{label}: no Databricks cluster spec or cluster policy found; expected a clusters/create "
                         "payload, a job with new_cluster / tasks[].new_cluster / job_clusters[].new_cluster, or a "
                         "policy definition")
    return clusters


# ---------------------------------------------------------------- Hadoop XML resources and the environment

#: the Hadoop resource Configuration loads by default (S3A settings live there)
SITE_FILES = ("core-site.xml",)
#: where Spark's launcher puts Hadoop configuration on the classpath
CONF_DIR_VARS = ("HADOOP_CONF_DIR", "YARN_CONF_DIR")


def parse_hadoop_xml(text: str, source: str) -> Settings:
    """A Hadoop configuration XML (``<configuration><property><name/><value/>``) as :attr:`Settings.site`; values
    trimmed as Hadoop does. A malformed file is an error (Hadoop refuses it too)."""
    import xml.etree.ElementTree as ET

    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise UsageError(f"{source}: not a Hadoop configuration XML ({exc}); Hadoop refuses it too") from None
    site: dict[str, Value] = {}
    for i, prop in enumerate(root.iter("property")):
        name, value = prop.findtext("name"), prop.findtext("value")
        if name is None or not name.strip():
            continue
        site[name.strip()] = Value(java_trim(value or ""), f"{source} property #{i + 1}")
    return Settings(site=site, sources=(source,))


def read_hadoop_conf_dirs(environ: Mapping[str, str]) -> Settings:
    """The ``core-site.xml`` of each directory named by ``HADOOP_CONF_DIR`` / ``YARN_CONF_DIR`` in ``environ`` (a
    missing file is skipped; an unreadable or malformed one is an error)."""
    out = Settings()
    for var in CONF_DIR_VARS:
        folder = (environ.get(var) or "").strip()
        if not folder:
            continue
        for name in SITE_FILES:
            path = Path(folder) / name
            if path.is_file():
                out = out.merged(parse_hadoop_xml(_read_text(path), f"{var} {path}"))
    return out


#: process environment variables the rules read (AWS's credential chain)
ENV_VARS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECRET_KEY", "AWS_ACCESS_KEY")


def read_environment(environ: Mapping[str, str]) -> Settings:
    """The job's own process environment: the AWS credential variables it holds, and its Hadoop XML files."""
    env = {k: Value(environ[k], "process environment") for k in ENV_VARS if environ.get(k)}
    return Settings(environ=env, sources=("process environment",) if env else ()).merged(
        read_hadoop_conf_dirs(environ))


# ---------------------------------------------------------------- a live session


def read_session(spark: Any, probe: Iterable[str] = ()) -> Settings:
    """The settings of a live SparkSession, classic or Spark Connect, without touching ``sparkContext``.

    Uses ``spark.conf.getAll`` (a property since PySpark 4.0 on both classic and Connect; called if a method).
    Where it is missing, falls back to ``spark.conf.get(key, None)`` for each key in ``probe``.
    """
    conf = spark.conf
    values = getattr(conf, "getAll", None)
    if values is None:  # PySpark < 4.0
        values = {k: v for k in probe if (v := conf.get(k, None)) is not None}
    elif callable(values):
        values = values()
    return Settings({str(k): Value(_as_str(v), "session", True) for k, v in dict(values).items() if v is not None},
                    sources=("session",))


def _read_text(path: str | Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file; check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read ({type(exc).__name__}); check the path and its permissions") from None
