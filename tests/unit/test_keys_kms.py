"""``aws-kms`` envelope keys against moto's KMS server on loopback (a real KMS HTTP API through boto3), and
versioned keys (``previous``)."""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
import time
import urllib.request

import boto3
import pytest

from lakehouse_phi.errors import KeyMaterialError
from lakehouse_phi.keys.providers import Fetchers, load_key, load_keys
from lakehouse_phi.policy.model import KeySpec


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def kms_endpoint():
    """``python -m moto.server`` on a free loopback port; the AWS environment points boto3 at it."""
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(url + "/moto-api/", timeout=1)
            break
        except OSError:  # not listening yet
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail("moto server did not start")
            time.sleep(0.2)
    saved = {k: os.environ.get(k) for k in ("AWS_ENDPOINT_URL_KMS", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                            "AWS_DEFAULT_REGION", "AWS_REGION")}
    os.environ.update(AWS_ENDPOINT_URL_KMS=url, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                      AWS_DEFAULT_REGION="us-east-1", AWS_REGION="us-east-1")
    yield url
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def wrapped(kms_endpoint, tmp_path):
    """A KMS key and a data key wrapped by it (the base64 CiphertextBlob in a file), plus the plaintext."""
    kms = boto3.client("kms", endpoint_url=kms_endpoint)
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    dk = kms.generate_data_key(KeyId=key_id, KeySpec="AES_256")
    path = tmp_path / "dek.wrapped"
    path.write_text(base64.b64encode(dk["CiphertextBlob"]).decode() + "\n")
    return kms, key_id, path, dk["Plaintext"]


def test_unwraps_the_data_key_from_a_file_and_from_env(wrapped):
    _kms, _key_id, path, plain = wrapped
    key = load_key("dek", KeySpec(provider="aws-kms", ref=str(path), version=2), "aes")
    assert key.material == plain and len(plain) == 32 and key.version == 2
    env = {"WRAPPED": path.read_text()}
    key = load_key("dek", KeySpec(provider="aws-kms", ref="env:WRAPPED"), "hmac", Fetchers(environ=env))
    assert key.material == plain
    assert base64.b64encode(plain).decode() not in repr(key)


def test_refused_names_the_key_and_never_the_material(wrapped):
    """KMS refuses a blob it did not wrap (InvalidCiphertextException; moto does not enforce disabled keys or key
    policies, so a changed blob stands in for a denial: the same error path, a KMS error code)."""
    _kms, _key_id, path, plain = wrapped
    blob = bytearray(base64.b64decode(path.read_text()))
    blob[-1] ^= 1
    path.write_text(base64.b64encode(bytes(blob)).decode())
    with pytest.raises(KeyMaterialError) as err:
        load_key("dek", KeySpec(provider="aws-kms", ref=str(path)), "aes")
    text = str(err.value)
    assert "key 'dek'" in text and "refused" in text and "kms:Decrypt" in text
    assert path.read_text().strip() not in text and plain.hex() not in text


def test_unreachable_kms_names_the_key(wrapped, monkeypatch):
    _kms, _key_id, path, _plain = wrapped
    monkeypatch.setenv("AWS_ENDPOINT_URL_KMS", f"http://127.0.0.1:{_free_port()}")
    with pytest.raises(KeyMaterialError) as err:
        load_key("dek", KeySpec(provider="aws-kms", ref=str(path)), "aes")
    assert "key 'dek'" in str(err.value) and "unreachable" in str(err.value)


def test_not_a_blob(tmp_path, kms_endpoint):
    path = tmp_path / "junk"
    path.write_text("not base64 !!")
    with pytest.raises(KeyMaterialError, match="CiphertextBlob"):
        load_key("dek", KeySpec(provider="aws-kms", ref=str(path)), "aes")


def test_previous_versions_resolved_on_demand(wrapped):
    _kms, _key_id, path, plain = wrapped
    env = {"K3": base64.b64encode(bytes(range(5, 37))).decode(), "K1": base64.b64encode(bytes(range(32))).decode()}
    specs = {"k": KeySpec(provider="env", ref="K3", version=3, previous={1: "K1"}),
             "dek": KeySpec(provider="aws-kms", ref=str(path), version=2, previous={1: str(path)})}
    ring = load_keys(specs, [("k", "hmac"), ("dek", "aes")], Fetchers(environ=env))
    assert ring["k"].version == 3 and ring.version("k", 1) is None  # not asked for
    ring = load_keys(specs, [("k", "hmac"), ("dek", "aes")], Fetchers(environ=env), with_previous=True)
    assert ring.version("k", 1).material == bytes(range(32)) and ring.version("k", 3).material == bytes(range(5, 37))
    assert sorted(ring.all_versions("k")) == [1, 3] and ring.version("dek", 1).material == plain
    with pytest.raises(KeyMaterialError, match=r"\(version 1\) key 'k'.*K1"):
        load_keys(specs, [("k", "hmac")], Fetchers(environ={"K3": env["K3"]}), with_previous=True)


def test_missing_wrapped_key_file_names_the_provider(tmp_path):
    with pytest.raises(KeyMaterialError) as err:
        load_key("dek", KeySpec(provider="aws-kms", ref=str(tmp_path / "nope")), "aes")
    assert "key 'dek'" in str(err.value) and "provider aws-kms" in str(err.value) and "no file at" in str(err.value)


@pytest.mark.parametrize("plain", [bytes(32), b"\xab" * 32, b"\x00\x01" * 8, bytes(range(8))],
                         ids=["zero", "repeated", "pattern", "short"])
def test_a_weak_data_key_unwrapped_by_kms_is_refused(kms_endpoint, tmp_path, plain):
    """KMS Encrypt wraps a weak plaintext (as `aws kms encrypt` would): unwrapping works, the key is refused."""
    kms = boto3.client("kms", endpoint_url=kms_endpoint)
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    path = tmp_path / "weak.wrapped"
    path.write_text(base64.b64encode(kms.encrypt(KeyId=key_id, Plaintext=plain)["CiphertextBlob"]).decode())
    with pytest.raises(KeyMaterialError, match=r"key 'dek'.*provider aws-kms.*not a random key") as info:
        load_key("dek", KeySpec(provider="aws-kms", ref=str(path)), None)
    assert plain.hex() not in str(info.value) and base64.b64encode(plain).decode() not in str(info.value)


def test_a_weak_key_in_secrets_manager_is_refused(kms_endpoint):
    """The same moto server serves Secrets Manager: a secret holding 32 zero bytes is refused, naming the key."""
    sm = boto3.client("secretsmanager", endpoint_url=kms_endpoint)
    sm.create_secret(Name="phi/weak", SecretString=base64.b64encode(bytes(32)).decode())
    sm.create_secret(Name="phi/good", SecretString=base64.b64encode(bytes(range(32))).decode())
    fetchers = Fetchers(aws_client=lambda: sm)
    spec = KeySpec(provider="aws-secrets-manager", ref="phi/good")
    assert load_key("pseudonym", spec, "hmac", fetchers).material == bytes(range(32))
    with pytest.raises(KeyMaterialError, match=r"key 'pseudonym'.*aws-secrets-manager.*all zero bytes"):
        load_key("pseudonym", KeySpec(provider="aws-secrets-manager", ref="phi/weak"), "hmac", fetchers)
