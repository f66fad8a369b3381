"""Key providers: base64 material, length checks, every provider's path, and no way for a value to leak."""

from __future__ import annotations

import base64

import pytest

from lakehouse_phi.errors import KeyMaterialError
from lakehouse_phi.keys.providers import Fetchers, load_key, load_keys
from lakehouse_phi.policy.model import KeySpec

SECRET = bytes(range(32))
B64 = base64.b64encode(SECRET).decode()


class FakeDbutils:
    class secrets:
        store = {("phi-keys", "ssn-dek"): B64}

        @classmethod
        def get(cls, scope: str, key: str) -> str:
            return cls.store[(scope, key)]


class FakeSecretsManager:
    def __init__(self, value: str) -> None:
        self.value, self.asked = value, []

    def get_secret_value(self, SecretId: str) -> dict:
        self.asked.append(SecretId)
        return {"SecretString": self.value}


def test_env_provider_decodes_base64():
    key = load_key("k", KeySpec(provider="env", ref="K", version=4), "hmac", Fetchers(environ={"K": B64}))
    assert key.material == SECRET and key.version == 4


def test_file_provider(tmp_path):
    path = tmp_path / "k.b64"
    path.write_text(B64 + "\n")
    assert load_key("k", KeySpec(provider="file", ref=str(path)), "aes").material == SECRET


def test_databricks_provider_uses_dbutils_secrets():
    spec = KeySpec(provider="databricks", ref="phi-keys/ssn-dek")
    assert load_key("dek", spec, "aes", Fetchers(dbutils=lambda: FakeDbutils)).material == SECRET
    with pytest.raises(KeyMaterialError, match="not available"):
        load_key("dek", spec, "aes", Fetchers(dbutils=lambda: None))


def test_aws_provider_reads_secret_string():
    client = FakeSecretsManager(B64)
    key = load_key("k", KeySpec(provider="aws-secrets-manager", ref="prod/phi/k"), "hmac",
                   Fetchers(aws_client=lambda: client))
    assert key.material == SECRET and client.asked == ["prod/phi/k"]


@pytest.mark.parametrize("material, kind, fragment", [
    ("not base64!!", "hmac", "not standard base64"),
    (base64.b64encode(b"x" * 31).decode(), "hmac", "at least 32 bytes"),
    (base64.b64encode(b"x" * 20).decode(), "aes", "16, 24 or 32 bytes"),
])
def test_malformed_material_is_refused_without_showing_it(material, kind, fragment):
    with pytest.raises(KeyMaterialError) as info:
        load_key("pseudonym", KeySpec(provider="env", ref="K"), kind, Fetchers(environ={"K": material}))
    msg = str(info.value)
    assert fragment in msg and "pseudonym" in msg and "K" in msg
    assert material not in msg
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_missing_env_key_names_key_and_variable():
    with pytest.raises(KeyMaterialError, match="LAKEHOUSE_PHI_X is not set"):
        load_key("x", KeySpec(provider="env", ref="LAKEHOUSE_PHI_X"), "hmac", Fetchers(environ={}))


def test_repr_never_shows_material():
    key = load_key("k", KeySpec(provider="env", ref="K"), "hmac", Fetchers(environ={"K": B64}))
    for text in (repr(key), str(key), repr(load_keys({"k": KeySpec(provider="env", ref="K")}, [("k", "hmac")],
                                                     Fetchers(environ={"K": B64})))):
        assert B64 not in text and SECRET.hex() not in text and str(SECRET) not in text


def test_load_keys_reports_all_failures_at_once():
    specs = {"a": KeySpec(provider="env", ref="A"), "b": KeySpec(provider="env", ref="B")}
    with pytest.raises(KeyMaterialError) as info:
        load_keys(specs, [("a", "hmac"), ("b", "aes"), ("c", "aes")], Fetchers(environ={}))
    msg = str(info.value)
    assert "'a'" in msg and "'b'" in msg and "'c' is not declared" in msg
