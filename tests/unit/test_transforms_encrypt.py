"""encrypt: AES-GCM layout IV(12) || ciphertext || tag(16), base64, AAD = <table>.<column>."""

from __future__ import annotations

import base64

import pyarrow as pa
import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from lakehouse_phi.transforms.base import ColumnContext
from lakehouse_phi.transforms.encrypt import Encrypt

CTX = ColumnContext(table="patients", column="ssn", source_column="ssn")
AAD = b"patients.ssn"


def _enc(key: bytes, ctx: ColumnContext = CTX) -> Encrypt:
    return Encrypt(Encrypt.params_model(key="pii"), ctx, key)


def _decrypt(key: bytes, b64: str, aad: bytes = AAD) -> str:
    raw = base64.b64decode(b64, validate=True)
    return AESGCM(key).decrypt(raw[:12], raw[12:], aad).decode()


@pytest.mark.parametrize("size", [16, 24, 32])
def test_decrypts_with_aesgcm_and_the_column_aad(size):
    key = bytes(range(size))
    plain = ["123-45-6789", "", "Zoë ☃", None]
    out = _enc(key).apply(pa.array(plain, pa.string()))
    assert out.type == pa.string()
    for p, c in zip(plain, out.to_pylist()):
        if p is None:
            assert c is None
            continue
        raw = base64.b64decode(c, validate=True)
        assert len(raw) == 12 + len(p.encode()) + 16
        assert _decrypt(key, c) == p


def test_wrong_aad_or_key_fails():
    key = bytes(range(32))
    c = _enc(key).apply(pa.array(["123-45-6789"])).to_pylist()[0]
    with pytest.raises(InvalidTag):
        _decrypt(key, c, b"patients.mrn")
    with pytest.raises(InvalidTag):
        _decrypt(bytes(range(1, 33)), c)
    other = _enc(key, ColumnContext(table="claims", column="ssn", source_column="ssn"))
    with pytest.raises(InvalidTag):
        _decrypt(key, other.apply(pa.array(["x"])).to_pylist()[0])


def test_iv_is_fresh_per_value():
    key = bytes(range(16))
    out = _enc(key).apply(pa.array(["same"] * 200)).to_pylist()
    assert len(set(out)) == 200
    assert len({base64.b64decode(c)[:12] for c in out}) == 200


def test_contract():
    assert Encrypt.deterministic is False
    assert Encrypt.output_type(Encrypt.params_model(key="pii"), "string") == "string"
    with pytest.raises(ValueError, match="patients.ssn"):
        Encrypt(Encrypt.params_model(key="pii"), CTX, None)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text()), max_size=20))
def test_round_trip_and_nulls(values):
    key = bytes(range(40, 72))
    out = _enc(key).apply(pa.array(values, pa.string())).to_pylist()
    assert [c is None for c in out] == [v is None for v in values]
    assert [None if c is None else _decrypt(key, c) for c in out] == values
