"""Signed, suppressed exports: only the ``export.columns`` of a masked table, without the records of equivalence
classes that break the policy's ``k`` or ``l``, as Parquet plus a signed manifest.

Layout of ``--out DIR``::

    DIR/data/part-*.parquet   the records
    DIR/manifest.json         canonical JSON (sorted keys, UTF-8): every file's path, SHA-256, bytes and rows;
                              records read / exported / suppressed; k and l required and achieved; the policy's
                              SHA-256; run id; time
    DIR/manifest.sig          the Ed25519 signature of the exact bytes of manifest.json, standard base64

:func:`verify_export` checks the signature with the public key, then every listed file's bytes, and refuses a file
under ``data/`` that the manifest does not list. Suppression is by whole class (a class whose records are all
dropped), computed over the exported quasi-identifiers (see :func:`lakehouse_phi.release.risk.release_columns`).
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
from typing import Any

from lakehouse_phi.errors import JobRefused, KeyMaterialError, UsageError

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
        from pyspark.sql.connect.window import Window
    else:
        from pyspark.sql.window import Window
    return Window.partitionBy(*qi)


def run_export(spark: Any, loaded: Any, table: str, out: str, source: str | None = None, audit: str | None = None,
               key_overrides: dict | None = None, run_id: str | None = None, actor: str | None = None) -> ExportResult:
    """Write the export of ``table`` to ``out`` (a local directory that must be empty or absent), sign it, audit it.

    Fails closed: the signing key is resolved before anything is read or written.
    """
    from lakehouse_phi.audit.events import new_event
    from lakehouse_phi.audit.sinks import open_sink
    from lakehouse_phi.keys import load_key
    from lakehouse_phi.release.risk import cached, uncache, class_frame, read_source, release_columns
    from lakehouse_phi.spark.session import functions
    from lakehouse_phi.spark.targets import default_audit_target

    policy = loaded.policy
    spec = policy.tables.get(table)
    if spec is None:
        raise UsageError(f"--table {table!r}: not under tables: (declared: {', '.join(policy.tables)})")
    if spec.export is None:
        raise UsageError(f"tables.{table} has no export: (columns and signing_key); add one to release it")
    key_name = spec.export.signing_key
    key_spec = (key_overrides or {}).get(key_name) or policy.keys[key_name]
    private = signing_key(load_key(key_name, key_spec, "pem").material, key_name)
    out_dir = Path(out)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise UsageError(f"--out {out}: the directory is not empty; exports are written to a new directory")
    F = functions(spark)
    cols = release_columns(spec)
    k_req = spec.risk.k if spec.risk else 1
    l_req = spec.risk.l if spec.risk else 1
    src = source or spec.bronze
    df = read_source(spark, src)
    missing = [c for c in spec.export.columns if c not in df.columns]
    if missing:
        raise JobRefused(f"{src}: export column(s) {missing} are not in the table; is it the bronze of "
                         f"tables.{table}?")
    run_id = run_id or str(uuid.uuid4())
    selected = df.select(*spec.export.columns)
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
    released = marked.where(F.col("_keep")).select(*spec.export.columns)
    k_got = l_got = None
    if cols.quasi_identifiers and kept:
        classes = class_frame(released, cols.quasi_identifiers, cols.sensitive, F)
        aggs = [F.min("_n").alias("k")] + ([F.min(F.least(*[F.col(f"_l_{s}") for s in cols.sensitive])
                                                  if len(cols.sensitive) > 1 else F.col(f"_l_{cols.sensitive[0]}"))
                                            .alias("l")] if cols.sensitive else [])
        row = classes.agg(*aggs).collect()[0]
        k_got = int(row["k"])
        l_got = int(row["l"]) if cols.sensitive else None
    data_dir = out_dir / DATA
    staging = out_dir / f"_staging_{run_id}"
    out_dir.mkdir(parents=True, exist_ok=True)
    released.coalesce(1).write.mode("overwrite").parquet(str(staging.resolve()))
    uncache(marked)
    data_dir.mkdir()
    files = []
    import pyarrow.parquet as pq

    for i, part in enumerate(sorted(staging.glob("*.parquet"))):
        target = data_dir / f"part-{i:05d}.parquet"
        shutil.move(str(part), target)
        files.append({"path": f"{DATA}/{target.name}", "sha256": sha256_file(target), "bytes": target.stat().st_size,
                      "rows": pq.ParquetFile(target).metadata.num_rows})
    shutil.rmtree(staging)
    if sum(f["rows"] for f in files) != kept:
        raise JobRefused(f"export of {table}: wrote {sum(f['rows'] for f in files)} rows, expected {kept}")
    from lakehouse_phi.audit.events import utc_now_iso

    manifest = {
        "format": FORMAT, "policy_name": policy.name, "policy_sha256": loaded.sha256, "table": table,
        "run_id": run_id, "created_at": utc_now_iso(), "columns": list(spec.export.columns),
        "quasi_identifiers": list(cols.quasi_identifiers), "sensitive": list(cols.sensitive),
        "k_required": k_req, "l_required": l_req if cols.sensitive else None, "k_achieved": k_got,
        "l_achieved": l_got, "records_read": read, "records_exported": kept, "records_suppressed": read - kept,
        "classes_suppressed": classes_suppressed, "signing_key": key_name, "signing_key_version": key_spec.version,
        "files": files,
    }
    body = canonical(manifest)
    (out_dir / MANIFEST).write_bytes(body)
    (out_dir / SIGNATURE).write_text(base64.b64encode(private.sign(body)).decode("ascii") + "\n", encoding="ascii")
    bronze_fmt = "delta" if os.path.isdir(os.path.join(spec.bronze, "_delta_log")) else "parquet"
    audit_target = audit or default_audit_target(spec.bronze, bronze_fmt)  # the ingest trail of that bronze
    columns = {c: {"strategy": "export", "key_version": None} for c in spec.export.columns}
    event = new_event(run_id=run_id, actor=actor or os.environ.get("USER", "unknown"), event="export",
                      policy_name=policy.name, policy_sha256=loaded.sha256, table=table, rows_read=read,
                      rows_written=kept, rows_quarantined=0, columns=columns, details={
                          "records_suppressed": read - kept, "classes_suppressed": classes_suppressed,
                          "k_required": k_req, "l_required": manifest["l_required"], "k_achieved": k_got,
                          "l_achieved": l_got, "files": len(files),
                          "manifest_sha256": hashlib.sha256(body).hexdigest(), "signing_key": key_name,
                          "signing_key_version": key_spec.version})
    sealed = open_sink(audit_target, spark).append(event)
    log.info("export of %s: %d of %d records, %d suppressed", table, kept, read, read - kept)
    return ExportResult(str(out_dir), run_id, read, kept, read - kept, classes_suppressed, k_got, l_got, manifest,
                        sealed)


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
    data = root / DATA
    if data.is_dir():
        for p in sorted(data.rglob("*")):
            if p.is_file() and p.resolve() not in listed:
                problems.append(f"{p.relative_to(root)}: not listed in the manifest")
    return VerifyReport(not problems, problems, len(listed), manifest)
