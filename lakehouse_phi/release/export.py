"""Signed, suppressed exports: only the ``export.columns`` of a masked table, without the records of equivalence
classes that break the policy's ``k`` or ``l``, as Parquet plus a signed manifest.

Layout of ``--out DIR``::

    DIR/data/part-*.parquet   the records
    DIR/manifest.json         canonical JSON (sorted keys, UTF-8): every file's path, SHA-256, bytes and rows;
                              records read / exported / suppressed; k and l required and achieved; the policy's
                              SHA-256; run id; time
    DIR/manifest.sig          the Ed25519 signature of the exact bytes of manifest.json, standard base64

:func:`verify_export` checks the signature with the public key, then every listed file's bytes, and refuses any
file, folder or symbolic link in the export directory that the manifest does not list (only ``manifest.json``,
``manifest.sig``, ``data/`` and the listed files may be there). Suppression is by whole class (a class whose
records are all dropped), computed over the exported quasi-identifiers (see
:func:`lakehouse_phi.release.risk.release_columns`). Before the manifest is signed, the records, k and l it states
are measured again from the written files themselves (:func:`measure_files`, Arrow, independent of the engine): a
difference from the engine's figures, or a k or l below the policy's, refuses the export and removes what was
written.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakehouse_phi.errors import JobRefused, KeyMaterialError, UsageError

if TYPE_CHECKING:
    from lakehouse_phi.release.risk import ReleaseColumns

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
DATA = "data"
FORMAT = "lakehouse-phi-export/1"
_NULL = "\u0000lakehouse_phi:null"


def canonical(obj: Any) -> bytes:
    return (json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n").encode("utf-8")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def signing_key(pem: bytes, name: str) -> Any:
    """The Ed25519 private key of a PKCS#8 PEM (never shown in a message)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise KeyMaterialError(f"key '{name}': not an unencrypted PKCS#8 PEM private key; make one with "
                               "`openssl genpkey -algorithm ed25519 -out signer.pem`") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyMaterialError(f"key '{name}': an export is signed with Ed25519, found a {type(key).__name__}; "
                               "make one with `openssl genpkey -algorithm ed25519`") from None
    return key


@dataclass
class ExportResult:
    out: str
    run_id: str
    records_read: int
    records_exported: int
    records_suppressed: int
    classes_suppressed: int
    k_achieved: int | None
    l_achieved: int | None
    manifest: dict
    event: dict = field(default_factory=dict)


def suppress(df: Any, qi: tuple[str, ...], sensitive: tuple[str, ...], k: int, l: int, F: Any) -> Any:  # noqa: E741
    """``df`` with ``_keep``: False for the records of a class smaller than ``k`` or with fewer than ``l`` distinct
    values of a sensitive column; ``_class_n`` and ``_class_l`` beside it."""
    w = _window(df, qi)
    out = df.withColumn("_class_n", F.count(F.lit(1)).over(w))
    if sensitive:
        ls = [F.size(F.collect_set(F.coalesce(F.col(s).cast("string"), F.lit(_NULL))).over(w)) for s in sensitive]
        out = out.withColumn("_class_l", F.least(*ls) if len(ls) > 1 else ls[0])
        keep = (F.col("_class_n") >= k) & (F.col("_class_l") >= l)
    else:
        out = out.withColumn("_class_l", F.lit(None).cast("int"))
        keep = F.col("_class_n") >= k
    return out.withColumn("_keep", keep)


def _window(df: Any, qi: tuple[str, ...]) -> Any:
    from lakehouse_phi.spark.session import is_connect

    if is_connect(df.sparkSession):
        from pyspark.sql.connect.window import Window as ConnectWindow

        return ConnectWindow.partitionBy(*qi)
    from pyspark.sql.window import Window

    return Window.partitionBy(*qi)


def run_export(spark: Any, loaded: Any, table: str, out: str, source: str | None = None, audit: str | None = None,
               key_overrides: dict | None = None, run_id: str | None = None, actor: str | None = None) -> ExportResult:
    """Write the export of ``table`` to ``out`` (a local directory that must be empty or absent), sign it, audit it.

    Fails closed: the signing key is resolved before anything is read or written.
    """
    from lakehouse_phi.audit.events import utc_now_iso
    from lakehouse_phi.audit.sealing import seal_key
    from lakehouse_phi.policy.nested import release_name
    from lakehouse_phi.release.risk import read_masked, release_columns, with_leaves
    from lakehouse_phi.spark.session import functions

    policy = loaded.policy
    spec, key_spec, private = _signer(policy, table, key_overrides)
    trail_key = seal_key(policy, key_overrides)  # a keyed trail: its key before anything is read (fail closed)
    audit = audit or (policy.audit.location if policy.audit else None)
    out_dir = Path(out)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise UsageError(f"--out {out}: the directory is not empty; exports are written to a new directory")
    F = functions(spark)
    cols = release_columns(spec)
    k_req = spec.risk.k if spec.risk else 1
    l_req = spec.risk.l if spec.risk else 1
    src = source or spec.bronze
    df = with_leaves(read_masked(spark, src), spec.export.columns, F)
    columns = tuple(release_name(c) for c in spec.export.columns)  # a leaf address[0].zip as address_0_zip
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise JobRefused(f"{src}: export column(s) {missing} are not in the table; is it the bronze of "
                         f"tables.{table}?")
    run_id = run_id or str(uuid.uuid4())
    rel = _suppressed(df, columns, cols, k_req, l_req, F)
    files = _write_data(rel, out_dir, run_id)
    rel = _remeasured(rel, out_dir, files, cols, k_req, l_req, table)
    manifest = {
        "format": FORMAT, "policy_name": policy.name, "policy_sha256": loaded.sha256, "table": table,
        "run_id": run_id, "created_at": utc_now_iso(), "columns": list(columns),
        "quasi_identifiers": list(cols.quasi_identifiers), "sensitive": list(cols.sensitive),
        "k_required": k_req, "l_required": l_req if cols.sensitive else None, "k_achieved": rel.k_achieved,
        "l_achieved": rel.l_achieved, "records_read": rel.read, "records_exported": rel.kept,
        "records_suppressed": rel.read - rel.kept, "classes_suppressed": rel.classes_suppressed,
        "signing_key": spec.export.signing_key, "signing_key_version": key_spec.version, "files": files,
    }
    body = canonical(manifest)
    (out_dir / MANIFEST).write_bytes(body)
    (out_dir / SIGNATURE).write_text(base64.b64encode(private.sign(body)).decode("ascii") + "\n", encoding="ascii")
    sealed = _audit_export(spark, spec, audit, actor, manifest, body, trail_key, policy.audit_retention_days)
    log.info("export of %s: %d of %d records, %d suppressed", table, rel.kept, rel.read, rel.read - rel.kept)
    return ExportResult(str(out_dir), run_id, rel.read, rel.kept, rel.read - rel.kept, rel.classes_suppressed,
                        rel.k_achieved, rel.l_achieved, manifest, sealed)


def _signer(policy: Any, table: str, key_overrides: dict | None) -> tuple[Any, Any, Any]:
    """The table's spec, its export signing key's spec, and that Ed25519 private key."""
    from lakehouse_phi.keys import load_key

    spec = policy.tables.get(table)
    if spec is None:
        raise UsageError(f"--table {table!r}: not under tables: (declared: {', '.join(policy.tables)})")
    if spec.export is None:
        raise UsageError(f"tables.{table} has no export: (columns and signing_key); add one to release it")
    key_name = spec.export.signing_key
    key_spec = (key_overrides or {}).get(key_name) or policy.keys[key_name]
    return spec, key_spec, signing_key(load_key(key_name, key_spec, "pem").material, key_name)


@dataclass
class _Released:
    """The records that keep the policy's k and l, and what suppression did. ``marked`` (every record with
    ``_keep``) stays cached until the data is written."""

    marked: Any
    released: Any
    read: int
    kept: int
    classes_suppressed: int
    k_achieved: int | None
    l_achieved: int | None


def _suppressed(df: Any, columns: tuple[str, ...], cols: ReleaseColumns, k_req: int, l_req: int,
                F: Any) -> _Released:
    from lakehouse_phi.release.risk import cached

    selected = df.select(*columns)
    if cols.quasi_identifiers:
        marked = suppress(selected, cols.quasi_identifiers, cols.sensitive, k_req, l_req, F)
    else:
        marked = selected.withColumn("_keep", F.lit(True))
    marked = cached(marked)
    counts = marked.agg(F.count(F.lit(1)).alias("read"),
                        F.sum(F.when(F.col("_keep"), 1).otherwise(0)).alias("kept")).collect()[0]
    read, kept = int(counts["read"] or 0), int(counts["kept"] or 0)
    classes_suppressed = 0
    if cols.quasi_identifiers and read > kept:
        classes_suppressed = marked.where(~F.col("_keep")).select(*cols.quasi_identifiers).distinct().count()
    released = marked.where(F.col("_keep")).select(*columns)
    k_got, l_got = _achieved(released, cols, kept, F)
    return _Released(marked, released, read, kept, classes_suppressed, k_got, l_got)


def _achieved(released: Any, cols: ReleaseColumns, kept: int, F: Any) -> tuple[int | None, int | None]:
    """The k and l of the released records (None without quasi-identifiers or records; l None without sensitive)."""
    from lakehouse_phi.release.risk import class_frame

    if not (cols.quasi_identifiers and kept):
        return None, None
    classes = class_frame(released, cols.quasi_identifiers, cols.sensitive, F)
    aggs = [F.min("_n").alias("k")] + ([F.min(F.least(*[F.col(f"_l_{s}") for s in cols.sensitive])
                                              if len(cols.sensitive) > 1 else F.col(f"_l_{cols.sensitive[0]}"))
                                        .alias("l")] if cols.sensitive else [])
    row = classes.agg(*aggs).collect()[0]
    return int(row["k"]), int(row["l"]) if cols.sensitive else None


def _write_data(rel: _Released, out_dir: Path, run_id: str) -> list[dict]:
    """Write the released records as ``data/part-*.parquet`` (through a staging folder); each file's manifest entry."""
    import pyarrow.parquet as pq

    from lakehouse_phi.release.risk import uncache

    data_dir = out_dir / DATA
    staging = out_dir / f"_staging_{run_id}"
    out_dir.mkdir(parents=True, exist_ok=True)
    rel.released.coalesce(1).write.mode("overwrite").parquet(str(staging.resolve()))
    uncache(rel.marked)
    data_dir.mkdir()
    files = []
    for i, part in enumerate(sorted(staging.glob("*.parquet"))):
        target = data_dir / f"part-{i:05d}.parquet"
        shutil.move(str(part), target)
        files.append({"path": f"{DATA}/{target.name}", "sha256": sha256_file(target), "bytes": target.stat().st_size,
                      "rows": pq.ParquetFile(target).metadata.num_rows})
    # an engine may write no folder at all for an empty release (pysail): nothing to move, nothing to remove
    shutil.rmtree(staging, ignore_errors=not staging.exists())
    return files


def _audit_export(spark: Any, spec: Any, audit: str | None, actor: str | None, manifest: dict,
                  body: bytes, trail_key: Any, retention_days: int) -> dict:
    """Append the export's event, built from its manifest, to ``audit`` (default: the ingest trail of the bronze)."""
    from lakehouse_phi.audit.events import new_event
    from lakehouse_phi.audit.sinks import open_sink
    from lakehouse_phi.storage.targets import default_audit_target

    bronze_fmt = "delta" if os.path.isdir(os.path.join(spec.bronze, "_delta_log")) else "parquet"
    audit_target = audit or default_audit_target(spec.bronze, bronze_fmt)
    m = manifest
    columns = {c: {"strategy": "export", "key_version": None} for c in m["columns"]}
    event = new_event(run_id=m["run_id"], actor=actor or os.environ.get("USER", "unknown"), event="export",
                      policy_name=m["policy_name"], policy_sha256=m["policy_sha256"], table=m["table"],
                      rows_read=m["records_read"], rows_written=m["records_exported"], rows_quarantined=0,
                      columns=columns, details={
                          "records_suppressed": m["records_suppressed"], "classes_suppressed": m["classes_suppressed"],
                          "k_required": m["k_required"], "l_required": m["l_required"], "k_achieved": m["k_achieved"],
                          "l_achieved": m["l_achieved"], "files": len(m["files"]),
                          "manifest_sha256": hashlib.sha256(body).hexdigest(), "signing_key": m["signing_key"],
                          "signing_key_version": m["signing_key_version"]})
    return open_sink(audit_target, spark, seal_key=trail_key, retention_days=retention_days).append(event)


@dataclass(frozen=True)
class Measured:
    records: int
    k: int | None
    l: int | None  # noqa: E741


def measure_files(paths: list[Path], cols: ReleaseColumns) -> Measured:
    """Records, k and l of the released Parquet files, with Arrow alone (NULL is a value, as in :mod:`risk`)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    tables = [pq.read_table(p) for p in paths]
    data = pa.concat_tables(tables) if tables else None
    records = 0 if data is None else data.num_rows
    if data is None or not records or not cols.quasi_identifiers:
        return Measured(records, None, None)
    keys = [pc.cast(data[c], pa.string()) for c in cols.quasi_identifiers]
    sens = [pc.cast(data[c], pa.string()) for c in cols.sensitive]
    names = [f"q{i}" for i in range(len(keys))] + [f"s{i}" for i in range(len(sens))]
    table = pa.table(keys + sens, names=names)
    aggs: list[Any] = [([], "count_all")] + [(f"s{i}", "count_distinct", pc.CountOptions(mode="all"))
                                             for i in range(len(sens))]
    classes = table.group_by([f"q{i}" for i in range(len(keys))], use_threads=False).aggregate(aggs)
    k = pc.min(classes["count_all"]).as_py()
    l_values = [pc.min(classes[f"s{i}_count_distinct"]).as_py() for i in range(len(sens))]
    return Measured(records, int(k), int(min(l_values)) if l_values else None)


def _remeasured(rel: _Released, out_dir: Path, files: list[dict], cols: ReleaseColumns, k_req: int, l_req: int,
                table: str) -> _Released:
    """Measure the written files again (:func:`measure_files`); refuse, removing what was written, when they do
    not hold what the manifest would state, or break the policy's k or l."""
    got = measure_files([out_dir / f["path"] for f in files], cols)
    problem = None
    if (got.records, got.k, got.l) != (rel.kept, rel.k_achieved, rel.l_achieved):
        problem = (f"the written files hold {got.records} records with k={got.k}, l={got.l}, but the engine "
                   f"reported {rel.kept} records with k={rel.k_achieved}, l={rel.l_achieved}")
    elif got.k is not None and got.k < k_req:
        problem = f"the written files have k={got.k}, below tables.{table}.risk.k {k_req}"
    elif got.l is not None and got.l < l_req:
        problem = f"the written files have l={got.l}, below tables.{table}.risk.l {l_req}"
    if problem is not None:
        shutil.rmtree(out_dir / DATA, ignore_errors=True)
        raise JobRefused(f"export of {table} refused before signing: {problem}; nothing was signed and the data "
                         f"files were removed from {out_dir}")
    return rel


@dataclass
class VerifyReport:
    ok: bool
    problems: list[str]
    files: int = 0
    manifest: dict | None = None

    def to_dict(self) -> dict:
        return {"ok": self.ok, "problems": self.problems, "files": self.files,
                "run_id": (self.manifest or {}).get("run_id"), "table": (self.manifest or {}).get("table")}


def load_public_key(path: str) -> Any:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        key = load_pem_public_key(Path(path).read_bytes())
    except FileNotFoundError:
        raise UsageError(f"--public-key {path}: no such file") from None
    except ValueError:
        raise UsageError(f"--public-key {path}: not a PEM public key (`openssl pkey -in signer.pem -pubout`)") from None
    if not isinstance(key, Ed25519PublicKey):
        raise UsageError(f"--public-key {path}: not an Ed25519 public key")
    return key


def verify_export(directory: str, public_key: Any) -> VerifyReport:
    """Check ``manifest.sig`` against ``manifest.json``, then every file the manifest lists, byte for byte."""
    from cryptography.exceptions import InvalidSignature

    root = Path(directory)
    try:
        body = (root / MANIFEST).read_bytes()
        sig = base64.b64decode((root / SIGNATURE).read_text(encoding="ascii").strip(), validate=True)
    except FileNotFoundError as exc:
        return VerifyReport(False, [f"missing {Path(exc.filename).name}"])
    except (UnicodeDecodeError, binascii.Error, ValueError):
        return VerifyReport(False, [f"{SIGNATURE} is not base64"])
    try:
        public_key.verify(sig, body)
    except InvalidSignature:
        return VerifyReport(False, [f"the signature does not match {MANIFEST} (changed, or signed by another key)"])
    manifest = json.loads(body)
    problems = []
    listed = set()
    for f in manifest.get("files", []):
        rel = f["path"]
        path = (root / rel).resolve()
        if root.resolve() not in path.parents:
            problems.append(f"{rel}: outside the export directory")
            continue
        listed.add(path)
        if not path.is_file():
            problems.append(f"{rel}: missing")
        elif path.stat().st_size != f["bytes"] or sha256_file(path) != f["sha256"]:
            problems.append(f"{rel}: content changed (SHA-256 differs from the manifest)")
    problems += _unlisted(root, {p.relative_to(root.resolve()) for p in listed})
    return VerifyReport(not problems, problems, len(listed), manifest)


def _unlisted(root: Path, listed: set[Path]) -> list[str]:
    """Every file, folder or symbolic link under ``root`` that is not the manifest, its signature, ``data/`` or a
    listed file (links are named, never followed)."""
    allowed_files = {Path(MANIFEST), Path(SIGNATURE), *listed}
    allowed_dirs = {Path(DATA)} | {p.parent for p in listed if p.parent != Path(".")}
    problems = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        for name in sorted(dirnames + filenames):
            path = here / name
            rel = path.relative_to(root)
            if path.is_symlink():
                problems.append(f"{rel}: a symbolic link (to {os.readlink(path)!r}), which an export never holds")
                if name in dirnames:
                    dirnames.remove(name)
            elif name in dirnames:
                if rel not in allowed_dirs:
                    problems.append(f"{rel}/: a folder the manifest does not list")
            elif rel not in allowed_files or not path.is_file():
                problems.append(f"{rel}: not listed in the manifest")
    return problems
