"""Issue 23.6 (keys): all-zero, repeated-byte, repeated-pattern, low-variety and too-short key material is refused
by every provider and by every keyed strategy built in Python, with an error naming the key and never the
material. (``aws-kms`` and ``aws-secrets-manager`` against moto's server: tests/unit/test_keys_kms.py.)"""

from __future__ import annotations

import base64
import json
import secrets

import pytest

from lakehouse_phi.errors import KeyMaterialError
from lakehouse_phi.keys.providers import Fetchers, load_key, load_keys
from lakehouse_phi.keys.strength import weak_key_problem
from lakehouse_phi.policy.model import KeySpec
from lakehouse_phi.transforms.base import ColumnContext
from lakehouse_phi.transforms.registry import STRATEGIES
from tests.helpers import run_cli

CTX = ColumnContext(table="patients", column="c", source_column="c")

#: (label, material, the words the refusal uses)
WEAK = [
    ("all-zero-32", bytes(32), "all zero bytes"),
    ("all-zero-64", bytes(64), "all zero bytes"),
    ("ff-32", b"\xff" * 32, "one byte value repeated"),
    ("ascii-a-32", b"a" * 32, "one byte value repeated"),
    ("pattern-2", b"\x01\x02" * 16, "a pattern of 2 bytes repeated"),
    ("pattern-3-ragged", (b"abc" * 11)[:32], "a pattern of 3 bytes repeated"),
    ("pattern-16", bytes(range(16)) * 2, "a pattern of 16 bytes repeated"),
    ("password-text", b"password" * 4, "a pattern of 8 bytes repeated"),
    ("two-values", b"\x00" * 31 + b"\x01", "only 2 distinct byte values"),
    ("five-values", bytes([1, 2, 3, 4, 5, 5, 4, 3, 2, 1, 9, 1, 2, 3, 4, 5, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 1, 2, 3,
                           4, 5, 9]), "only 6 distinct byte values"),
    ("short-8", secrets.token_bytes(8), "too short: 8 bytes"),
    ("short-15", secrets.token_bytes(15), "too short: 15 bytes"),
    ("short-1", b"\x07", "too short: 1 bytes"),
]


@pytest.mark.parametrize(("label", "raw", "why"), WEAK, ids=[w[0] for w in WEAK])
def test_weak_material_is_named(label, raw, why):
    problem = weak_key_problem(raw)
    assert problem is not None and why in problem


@pytest.mark.parametrize("n", [16, 24, 32, 64])
def test_random_material_passes(n):
    for _ in range(50):
        assert weak_key_problem(secrets.token_bytes(n)) is None
    assert weak_key_problem(bytes(range(n))) is None


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


@pytest.mark.parametrize(("label", "raw", "why"), WEAK, ids=[w[0] for w in WEAK])
@pytest.mark.parametrize("kind", [None, "aes"])
def test_env_provider_refuses_for_every_use(label, raw, why, kind):
    with pytest.raises(KeyMaterialError) as info:
        load_key("pseudonym", KeySpec(provider="env", ref="PHI_K"), kind, Fetchers(environ={"PHI_K": _b64(raw)}))
    msg = str(info.value)
    assert "key 'pseudonym'" in msg and "PHI_K" in msg
    assert _b64(raw) not in msg and raw.hex() not in msg
    if kind is None or len(raw) in (16, 24, 32):  # else the AES size rule speaks first
        assert why in msg


@pytest.mark.parametrize("raw", [bytes(32), b"\x11" * 48, b"xy" * 32], ids=["zero", "repeated", "pattern"])
def test_hmac_keys_of_the_right_length_are_still_refused(raw):
    with pytest.raises(KeyMaterialError, match="key 'token'.*not a random key"):
        load_key("token", KeySpec(provider="env", ref="T"), "hmac", Fetchers(environ={"T": _b64(raw)}))


def test_file_provider_refuses(tmp_path):
    path = tmp_path / "k.b64"
    path.write_text(_b64(bytes(32)) + "\n")
    with pytest.raises(KeyMaterialError, match=r"key 'dek'.*provider file.*all zero bytes"):
        load_key("dek", KeySpec(provider="file", ref=str(path)), "aes")


def test_databricks_provider_refuses():
    class Dbutils:
        class secrets:
            @staticmethod
            def get(scope: str, key: str) -> str:
                return _b64(b"\x00" * 16)

    with pytest.raises(KeyMaterialError, match=r"key 'dek'.*provider databricks.*all zero bytes"):
        load_key("dek", KeySpec(provider="databricks", ref="phi/dek"), "aes", Fetchers(dbutils=lambda: Dbutils))


def test_an_older_version_is_checked_too():
    env = {"K2": _b64(bytes(range(32))), "K1": _b64(bytes(32))}
    spec = KeySpec(provider="env", ref="K2", version=2, previous={1: "K1"})
    assert load_keys({"k": spec}, [("k", "hmac")], Fetchers(environ=env))["k"].version == 2
    with pytest.raises(KeyMaterialError, match=r"\(version 1\) key 'k'.*all zero bytes"):
        load_keys({"k": spec}, [("k", "hmac")], Fetchers(environ=env), with_previous=True)


@pytest.mark.parametrize("name", ["hmac", "encrypt", "fpe", "date_shift"])
@pytest.mark.parametrize("raw", [bytes(32), b"\x5a" * 32, b"\x01\x02\x03\x04" * 8, b"\x00" * 8],
                         ids=["zero", "repeated", "pattern", "short"])
def test_every_keyed_strategy_refuses_weak_bytes_given_in_python(name, raw):
    cls = STRATEGIES[name]
    params = {"key": "k", **({"subject": "pid", "max_days": 30} if name == "date_shift" else {})}
    with pytest.raises(ValueError, match=f"{name} on patients.c: key 'k'") as info:
        cls(cls.params_model(**params), CTX, raw)
    assert raw.hex() not in str(info.value)


def test_cli_refuses_a_weak_trail_key_naming_it(tmp_path):
    trail = tmp_path / "audit.jsonl"
    trail.write_text("")
    proc = run_cli("audit", "verify", str(trail), "--key", "trail=env:TRAIL_K", "--format", "json",
                   env={"TRAIL_K": _b64(bytes(32))})
    assert proc.returncode == 1, proc.stderr
    assert "key 'trail'" in proc.stderr and "all zero bytes" in proc.stderr and "Traceback" not in proc.stderr
    assert _b64(bytes(32)) not in proc.stderr + proc.stdout
    assert json.dumps(_b64(bytes(32))) not in proc.stdout


def test_a_keyring_built_in_python_refuses_weak_material():
    """The seal key, the row-fingerprint key and the name hasher take their material from a KeyRing: one built by
    hand (the typed Python API) is checked like the providers' keys, older versions included."""
    from lakehouse_phi.keys.providers import KeyRing, SecretKey

    good = SecretKey("trail", 2, bytes(range(32)))
    with pytest.raises(KeyMaterialError, match="key 'trail' version 1.*all zero bytes"):
        KeyRing({"trail": good}, {"trail": {1: SecretKey("trail", 1, bytes(32))}})
    with pytest.raises(KeyMaterialError, match="key 'fp' version 1.*one byte value repeated"):
        KeyRing({"fp": SecretKey("fp", 1, b"\x42" * 32)})
    assert KeyRing({"trail": good})["trail"].version == 2
