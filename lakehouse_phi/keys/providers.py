"""``env``, ``file``, ``databricks``, ``aws-secrets-manager`` and ``aws-kms`` key providers.

``aws-kms`` is an envelope key: ``ref`` is a file path, or ``env:VAR``, holding the standard base64 of a KMS
``CiphertextBlob`` (a data key wrapped by a KMS key, e.g. from ``aws kms generate-data-key``). It is unwrapped with
KMS ``Decrypt`` through boto3 (its standard credential chain and endpoint settings, ``AWS_ENDPOINT_URL_KMS``
included); the plaintext data key is the raw key bytes and is held only in memory.

Older key versions (``previous: {VERSION: REF}``, same provider) are resolved with :func:`load_keys`
(``with_previous=True``) when a command needs them (``rekey``, ``erase``, ``audit verify``).

Every failure raises :class:`~lakehouse_phi.errors.KeyMaterialError` naming the key, its provider and reference,
and the fix; none carries the material (exceptions are raised ``from None`` so no chained traceback shows it).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from lakehouse_phi.errors import JobRefused, KeyMaterialError
from lakehouse_phi.keys.strength import weak_key_problem
from lakehouse_phi.policy.model import KeySpec

log = logging.getLogger(__name__)

KeyKind = Literal["hmac", "aes", "pem"]  # pem: a PEM text (an Ed25519 signing key), not base64
#: A key's check value: the first 8 bytes (16 hex) of HMAC-SHA256(key material, this label). It tells two
#: materials apart (collision 2**-64) and says nothing usable about the key.
CHECK_LABEL = b"lakehouse_phi/key_check/v1"
CHECK_HEX = 16
MIN_HMAC_BYTES = 32
AES_SIZES = (16, 24, 32)
HOW_TO_PASS_A_KEY = ("To use another source for one run, pass --key NAME=env:VAR (base64 in an environment "
                     "variable), --key NAME=file:PATH, --key NAME=databricks:SCOPE/KEY or "
                     "--key NAME=aws-secrets-manager:SECRET_ID (in Python: IngestOptions(key_overrides=...)); "
                     "make a key with `openssl rand -base64 32`")


@dataclass(frozen=True)
class SecretKey:
    """Raw key bytes with a repr that never shows them."""

    name: str
    version: int
    material: bytes = field(repr=False)

    def __repr__(self) -> str:
        return f"SecretKey(name={self.name!r}, version={self.version}, material=***)"

    __str__ = __repr__


def _where(name: str, spec: KeySpec) -> str:
    return f"key '{name}' (keys.{name} in the policy: provider {spec.provider}, ref {spec.ref!r})"


def _databricks_dbutils() -> Any:
    """dbutils in a Databricks notebook or job; ``None`` elsewhere."""
    try:  # notebooks: dbutils lives in the IPython user namespace
        import IPython  # type: ignore[import-not-found]

        ip = IPython.get_ipython()
        if ip is not None and "dbutils" in ip.user_ns:
            return ip.user_ns["dbutils"]
    except Exception:  # noqa: BLE001  # pragma: no cover - IPython absent or not Databricks: look further
        log.debug("no dbutils in an IPython namespace")
    try:  # jobs and Databricks Connect
        from pyspark.dbutils import DBUtils  # type: ignore[import-not-found]
        from pyspark.sql import SparkSession

        return DBUtils(SparkSession.getActiveSession())
    except Exception:  # noqa: BLE001 - not on Databricks (import, session or DBUtils fails): no dbutils
        return None


def _aws_client() -> Any:
    try:
        import boto3
    except ImportError:
        return None
    return boto3.client("secretsmanager")


def _kms_client() -> Any:
    """A boto3 KMS client (standard credentials, region and ``AWS_ENDPOINT_URL_KMS``), with short timeouts and few
    retries so an unreachable KMS fails the job quickly; None without boto3."""
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        return None
    return boto3.client("kms", config=Config(connect_timeout=5, read_timeout=10,
                                             retries={"max_attempts": 2, "mode": "standard"}))


@dataclass
class Fetchers:
    """How each provider reaches its store; tests and notebooks may pass their own ``dbutils`` or AWS client."""

    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    dbutils: Callable[[], Any] = _databricks_dbutils
    aws_client: Callable[[], Any] = _aws_client
    kms_client: Callable[[], Any] = _kms_client


def _fetch_text(name: str, spec: KeySpec, fetchers: Fetchers) -> str:
    where = _where(name, spec)
    if spec.provider == "env":
        value = fetchers.environ.get(spec.ref)
        if value is None or not value.strip():
            raise KeyMaterialError(f"{where}: environment variable {spec.ref} is not set; export it with the "
                                   "standard base64 of the key bytes") from None
        return value
    if spec.provider == "file":
        path = Path(spec.ref).expanduser()
        try:
            return path.read_text(encoding="ascii")
        except FileNotFoundError:
            raise KeyMaterialError(f"{where}: no file at {path}; write the base64 key material there") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise KeyMaterialError(f"{where}: cannot read {path} ({type(exc).__name__}); the file must hold "
                                   "base64 text readable by this job") from None
    if spec.provider == "databricks":
        dbutils = fetchers.dbutils()
        if dbutils is None:
            raise KeyMaterialError(f"{where}: dbutils is not available (not on Databricks); use provider env or "
                                   "file for local runs") from None
        scope, key = spec.databricks_scope_key
        try:
            return dbutils.secrets.get(scope=scope, key=key)
        except Exception as exc:  # noqa: BLE001 - whatever dbutils raises; only its type is shown
            raise KeyMaterialError(f"{where}: dbutils.secrets.get failed ({type(exc).__name__}); check that scope "
                                   f"'{scope}' holds key '{key}' and that this principal may read it") from None
    if spec.provider == "aws-secrets-manager":
        client = fetchers.aws_client()
        if client is None:
            raise KeyMaterialError(f"{where}: boto3 is not installed; pip install 'lakehouse-phi[aws]'") from None
        try:
            return client.get_secret_value(SecretId=spec.ref)["SecretString"]
        except Exception as exc:  # noqa: BLE001 - botocore raises many types; only the type is shown
            raise KeyMaterialError(f"{where}: get_secret_value failed ({type(exc).__name__}); check the secret "
                                   "id and this principal's secretsmanager:GetSecretValue permission") from None
    raise KeyMaterialError(f"{where}: unknown provider")  # pragma: no cover - the model forbids it


def _kms_unwrap(name: str, spec: KeySpec, fetchers: Fetchers) -> bytes:
    """The plaintext data key of an ``aws-kms`` key: its wrapped blob read from a file or ``env:VAR``, then KMS
    ``Decrypt``."""
    where = _where(name, spec)
    if spec.ref.startswith("env:"):
        var = spec.ref[4:]
        text = fetchers.environ.get(var)
        if text is None or not text.strip():
            raise KeyMaterialError(f"{where}: environment variable {var} is not set; export the base64 "
                                   "CiphertextBlob of the wrapped data key") from None
    else:
        path = Path(spec.ref).expanduser()
        try:
            text = path.read_text(encoding="ascii")
        except FileNotFoundError:
            raise KeyMaterialError(f"{where}: no file at {path}; write the base64 CiphertextBlob of the wrapped data "
                                   "key there") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise KeyMaterialError(f"{where}: cannot read {path} ({type(exc).__name__}); the file must hold base64 "
                                   "text readable by this job") from None
    try:
        blob = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        blob = b""
    if not blob:
        raise KeyMaterialError(f"{where}: the wrapped key is not standard base64 of a KMS CiphertextBlob; write "
                               "the base64 CiphertextBlob of `aws kms generate-data-key` there") from None
    client = fetchers.kms_client()
    if client is None:
        raise KeyMaterialError(f"{where}: boto3 is not installed; pip install 'lakehouse-phi[aws]'") from None
    try:
        plain = client.decrypt(CiphertextBlob=blob)["Plaintext"]
    except Exception as exc:  # noqa: BLE001 - botocore raises many types; only the type and code are shown
        code = getattr(exc, "response", {}).get("Error", {}).get("Code") if hasattr(exc, "response") else None
        if code:
            raise KeyMaterialError(f"{where}: KMS Decrypt was refused ({code}); check that the KMS key is enabled, "
                                   "that the blob was wrapped by it, and this principal's kms:Decrypt "
                                   "permission") from None
        raise KeyMaterialError(f"{where}: KMS is unreachable ({type(exc).__name__}); check the network, the region "
                               "(AWS_REGION) and AWS_ENDPOINT_URL_KMS") from None
    return bytes(plain)


def decode_material(name: str, spec: KeySpec, text: str, kind: KeyKind | None) -> bytes:
    """Decode standard base64 strictly and check the length for its use and that it is not weak (all-zero,
    repeated, too short: :func:`~lakehouse_phi.keys.strength.weak_key_problem`); a ``pem`` key is its PEM text."""
    where = _where(name, spec)
    if kind == "pem":
        if "-----BEGIN " not in text or "-----END " not in text:
            raise KeyMaterialError(f"{where}: the material is not a PEM block; store the PKCS#8 PEM text (e.g. "
                                   "`openssl genpkey -algorithm ed25519`)") from None
        return text.strip().encode("ascii", "replace") + b"\n"
    try:
        raw = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise KeyMaterialError(f"{where}: the material is not standard base64; store base64 of the raw key bytes "
                               "(e.g. `openssl rand -base64 32`)") from None
    if kind == "hmac" and len(raw) < MIN_HMAC_BYTES:
        raise KeyMaterialError(f"{where}: an HMAC key needs at least {MIN_HMAC_BYTES} bytes, found {len(raw)}; "
                               "generate one with `openssl rand -base64 32`") from None
    if kind == "aes" and len(raw) not in AES_SIZES:
        raise KeyMaterialError(f"{where}: an AES key is 16, 24 or 32 bytes, found {len(raw)}; generate one with "
                               "`openssl rand -base64 32`") from None
    if not raw:
        raise KeyMaterialError(f"{where}: the material is empty") from None
    weak = weak_key_problem(raw)
    if weak is not None:
        raise KeyMaterialError(f"{where}: the material is not a random key ({weak}); generate one with "
                               "`openssl rand -base64 32`") from None
    return raw


def check_length(name: str, spec: KeySpec, raw: bytes, kind: KeyKind | None) -> bytes:
    """Check raw key bytes' length for their use (``decode_material`` does it for base64 text)."""
    return decode_material(name, spec, base64.b64encode(raw).decode("ascii"), kind)


def load_key(name: str, spec: KeySpec, kind: KeyKind | None = None, fetchers: Fetchers | None = None) -> SecretKey:
    fetchers = fetchers or Fetchers()
    if spec.provider == "aws-kms":
        raw = check_length(name, spec, _kms_unwrap(name, spec, fetchers), kind)
        return SecretKey(name=name, version=spec.version, material=raw)
    text = _fetch_text(name, spec, fetchers)
    return SecretKey(name=name, version=spec.version, material=decode_material(name, spec, text, kind))


def previous_specs(spec: KeySpec) -> dict[int, KeySpec]:
    """Every older version of a key as a spec of its own (same provider), by version."""
    return {v: KeySpec(provider=spec.provider, ref=ref, version=v) for v, ref in sorted(spec.previous.items())}


class KeyRing(Mapping[str, SecretKey]):
    """The keys a job uses, resolved once before any data is read: the active version of each (the mapping), and
    older versions where a command resolved them (:meth:`version`)."""

    def __init__(self, keys: Mapping[str, SecretKey],
                 previous: Mapping[str, Mapping[int, SecretKey]] | None = None) -> None:
        self._keys = dict(keys)
        self._previous = {name: dict(by_version) for name, by_version in (previous or {}).items()}
        for key in [*self._keys.values(), *(k for v in self._previous.values() for k in v.values())]:
            weak = weak_key_problem(key.material)  # keys built in Python too (the providers check theirs)
            if weak is not None:
                raise KeyMaterialError(f"key '{key.name}' version {key.version}: the material is not a random key "
                                       f"({weak}); generate one with `openssl rand -base64 32`")

    def __getitem__(self, name: str) -> SecretKey:
        return self._keys[name]

    def __iter__(self):
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"KeyRing({sorted(self._keys)})"

    def versions(self) -> dict[str, int]:
        return {k: v.version for k, v in self._keys.items()}

    def version(self, name: str, version: int) -> SecretKey | None:
        """Key ``name`` at ``version`` (the active one or a resolved older one); None when not resolved."""
        active = self._keys.get(name)
        if active is not None and active.version == version:
            return active
        return self._previous.get(name, {}).get(version)

    def check_values(self) -> dict[str, dict[str, int | str]]:
        """``{name: {"version": N, "check": 16 hex}}`` for every key (see :func:`check_value`): recorded in the
        bronze table's properties and the audit event, compared by :func:`verify_check_values` on the next run."""
        return {k: {"version": v.version, "check": check_value(v.material)} for k, v in sorted(self._keys.items())}

    def all_versions(self, name: str) -> dict[int, SecretKey]:
        """Every resolved version of ``name``, active included, by version."""
        out = dict(self._previous.get(name, {}))
        if name in self._keys:
            out[self._keys[name].version] = self._keys[name]
        return dict(sorted(out.items()))


def check_value(material: bytes) -> str:
    """The key check value of ``material``: hex of HMAC-SHA256(material, :data:`CHECK_LABEL`), first 16 hex."""
    return hmac.new(material, CHECK_LABEL, hashlib.sha256).hexdigest()[:CHECK_HEX]


def verify_check_values(recorded: Mapping[str, Any] | None, current: Mapping[str, Mapping[str, Any]],
                        where: str) -> None:
    """Refuse a run whose key material differs from what ``where`` (a bronze table) was written with.

    Args:
        recorded: the check values recorded by the last run (``KeyRing.check_values()`` shape; ``None`` or empty:
            nothing recorded yet, nothing to compare).
        current: this run's ``KeyRing.check_values()``.
        where: the table, for the message.

    Raises:
        JobRefused: a key with the same version but another check value (naming the key, its version and both
            check values; never material), or a recorded value that is not in the expected shape.
    """
    if not recorded:
        return
    if not isinstance(recorded, Mapping):
        raise JobRefused(f"{where}: the recorded key check values (table property lakehouse_phi.key_checks) are "
                         "not a JSON object; restore the property from the audit trail's last ingest event")
    wrong = []
    for name, now in sorted(current.items()):
        before = recorded.get(name)
        if before is None:
            continue
        if not (isinstance(before, Mapping) and isinstance(before.get("check"), str)
                and isinstance(before.get("version"), int)):
            raise JobRefused(f"{where}: the recorded key check value of key '{name}' is malformed (table property "
                             "lakehouse_phi.key_checks); restore it from the audit trail's last ingest event")
        if before["version"] == now["version"] and not hmac.compare_digest(before["check"], str(now["check"])):
            wrong.append(f"key '{name}' version {now['version']}: check value {now['check']}, recorded "
                         f"{before['check']}")
    if wrong:
        raise JobRefused(f"{where} was written with other key material under the same version ({'; '.join(wrong)})."
                         " Every record would be written again under new pseudonyms. Restore the key material the "
                         "table was written with, or rotate properly: new material under a new version")


def load_keys(specs: Mapping[str, KeySpec], needs: Iterable[tuple[str, KeyKind | None]],
              fetchers: Fetchers | None = None, with_previous: bool = False) -> KeyRing:
    """Resolve every key named in ``needs`` (name, kind), and with ``with_previous`` their older versions
    (``previous:``) too. All failures are reported together, before any data is touched."""
    fetchers = fetchers or Fetchers()
    found: dict[str, SecretKey] = {}
    older: dict[str, dict[int, SecretKey]] = {}
    errors: list[str] = []
    kinds: dict[str, set[KeyKind]] = {}
    for name, kind in needs:
        kinds.setdefault(name, set()).update([kind] if kind else [])

    def resolve(name: str, spec: KeySpec, label: str) -> SecretKey | None:
        try:
            if "pem" in kinds[name]:  # PEM text, not base64: no length to check
                return load_key(name, spec, "pem", fetchers)
            key = load_key(name, spec, None, fetchers)
            for kind in sorted(kinds[name]):
                check_length(name, spec, key.material, kind)
            return key
        except KeyMaterialError as exc:
            errors.append(f"{label}{exc}")
            return None

    for name in sorted(kinds):
        if name not in specs:
            errors.append(f"key '{name}' is not declared under keys:")
            continue
        key = resolve(name, specs[name], "")
        if key is not None:
            found[name] = key
        if with_previous:
            for v, spec in previous_specs(specs[name]).items():
                old = resolve(name, spec, f"(version {v}) ")
                if old is not None:
                    older.setdefault(name, {})[v] = old
    if errors:
        raise KeyMaterialError("; ".join(errors) + f". {HOW_TO_PASS_A_KEY}") from None
    return KeyRing(found, older)
