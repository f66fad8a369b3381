"""``env``, ``file``, ``databricks`` and ``aws-secrets-manager`` key providers.

Every failure raises :class:`~lakehouse_phi.errors.KeyMaterialError` naming the key, its provider and reference,
and the fix; none carries the material (exceptions are raised ``from None`` so no chained traceback shows it).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from lakehouse_phi.errors import JobRefused, KeyMaterialError
from lakehouse_phi.policy.model import KeySpec

KeyKind = Literal["hmac", "aes"]
#: A key's check value: the first 8 bytes (16 hex) of HMAC-SHA256(key material, this label). It tells two
#: materials apart (collision 2**-64) and says nothing usable about the key.
CHECK_LABEL = b"lakehouse_phi/key_check/v1"
CHECK_HEX = 16
MIN_HMAC_BYTES = 32
AES_SIZES = (16, 24, 32)


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
    return f"key '{name}' (provider {spec.provider}, ref {spec.ref!r})"


def _databricks_dbutils() -> Any:
    """dbutils in a Databricks notebook or job; ``None`` elsewhere."""
    try:  # notebooks: dbutils lives in the IPython user namespace
        import IPython  # type: ignore[import-not-found]

        ip = IPython.get_ipython()
        if ip is not None and "dbutils" in ip.user_ns:
            return ip.user_ns["dbutils"]
    except Exception:  # pragma: no cover - IPython absent or not Databricks
        pass
    try:  # jobs and Databricks Connect
        from pyspark.dbutils import DBUtils  # type: ignore[import-not-found]
        from pyspark.sql import SparkSession

        return DBUtils(SparkSession.getActiveSession())
    except Exception:
        return None


def _aws_client() -> Any:
    try:
        import boto3  # type: ignore[import-not-found]
    except ImportError:
        return None
    return boto3.client("secretsmanager")


@dataclass
class Fetchers:
    """How each provider reaches its store; tests and notebooks may pass their own ``dbutils`` or AWS client."""

    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    dbutils: Callable[[], Any] = _databricks_dbutils
    aws_client: Callable[[], Any] = _aws_client


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
        except Exception as exc:
            raise KeyMaterialError(f"{where}: dbutils.secrets.get failed ({type(exc).__name__}); check that scope "
                                   f"'{scope}' holds key '{key}' and that this principal may read it") from None
    if spec.provider == "aws-secrets-manager":
        client = fetchers.aws_client()
        if client is None:
            raise KeyMaterialError(f"{where}: boto3 is not installed; pip install 'lakehouse-phi[aws]'") from None
        try:
            return client.get_secret_value(SecretId=spec.ref)["SecretString"]
        except Exception as exc:
            raise KeyMaterialError(f"{where}: get_secret_value failed ({type(exc).__name__}); check the secret "
                                   "id and this principal's secretsmanager:GetSecretValue permission") from None
    raise KeyMaterialError(f"{where}: unknown provider")  # pragma: no cover - the model forbids it


def decode_material(name: str, spec: KeySpec, text: str, kind: KeyKind | None) -> bytes:
    """Decode standard base64 strictly and check the length for its use."""
    where = _where(name, spec)
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
    return raw


def load_key(name: str, spec: KeySpec, kind: KeyKind | None = None, fetchers: Fetchers | None = None) -> SecretKey:
    text = _fetch_text(name, spec, fetchers or Fetchers())
    return SecretKey(name=name, version=spec.version, material=decode_material(name, spec, text, kind))


class KeyRing(Mapping[str, SecretKey]):
    """The keys a job uses, resolved once before any data is read."""

    def __init__(self, keys: Mapping[str, SecretKey]) -> None:
        self._keys = dict(keys)

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

    def check_values(self) -> dict[str, dict[str, int | str]]:
        """``{name: {"version": N, "check": 16 hex}}`` for every key (see :func:`check_value`): recorded in the
        bronze table's properties and the audit event, compared by :func:`verify_check_values` on the next run."""
        return {k: {"version": v.version, "check": check_value(v.material)} for k, v in sorted(self._keys.items())}


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


def load_keys(specs: Mapping[str, KeySpec], needs: Iterable[tuple[str, KeyKind]],
              fetchers: Fetchers | None = None) -> KeyRing:
    """Resolve every key named in ``needs`` (name, kind). All failures are reported together."""
    found: dict[str, SecretKey] = {}
    errors: list[str] = []
    for name, kind in sorted(set(needs)):
        if name not in specs:
            errors.append(f"key '{name}' is not declared under keys:")
            continue
        try:
            found[name] = load_key(name, specs[name], kind, fetchers)
        except KeyMaterialError as exc:
            errors.append(str(exc))
    if errors:
        raise KeyMaterialError("; ".join(errors)) from None
    return KeyRing(found)
