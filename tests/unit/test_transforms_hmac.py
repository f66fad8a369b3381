"""hmac: RFC 4231 vectors (keys through the ``env`` provider), normalization, canonical strings, NULLs."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac as std_hmac
from decimal import Decimal

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lakehouse_phi.errors import KeyMaterialError
from lakehouse_phi.keys.providers import Fetchers, load_key
from lakehouse_phi.policy.model import KeySpec
from lakehouse_phi.transforms.base import ColumnContext, canonical_strings
from lakehouse_phi.transforms.hmac import Hmac, HmacSha256, hmac_hex_many

CTX = ColumnContext(table="patients", column="mrn_hash", source_column="mrn")
SPEC = KeySpec(provider="env", ref="PHI_HMAC_KEY")

# RFC 4231 section 4 (HMAC-SHA-256): (case, key, data, mac)
RFC4231 = [
    (1, b"\x0b" * 20, b"Hi There", "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    (2, b"Jefe", b"what do ya want for nothing?",
     "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
    (3, b"\xaa" * 20, b"\xdd" * 50, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
    (4, bytes(range(1, 26)), b"\xcd" * 50, "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
    (6, b"\xaa" * 131, b"Test Using Larger Than Block-Size Key - Hash Key First",
     "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
    (7, b"\xaa" * 131, b"This is a test using a larger than block-size key and a larger than block-size data. The "
     b"key needs to be hashed before being used by the HMAC algorithm.",
     "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
]


def _key_via_env(raw: bytes) -> bytes:
    fetchers = Fetchers(environ={"PHI_HMAC_KEY": base64.b64encode(raw).decode()})
    return load_key("pid", SPEC, "hmac", fetchers).material


def _hmac(key: bytes, normalize: str = "none") -> Hmac:
    return Hmac(Hmac.params_model(key="pid", normalize=normalize), CTX, key)


@pytest.mark.parametrize(("case", "key", "data", "mac"), RFC4231, ids=lambda v: str(v)[:8])
def test_rfc4231_core(case, key, data, mac):
    assert HmacSha256(key).hexdigests([data, None]) == [mac, None]
    assert HmacSha256(key).digests([data]) == [bytes.fromhex(mac)]


@pytest.mark.parametrize("case", [6, 7])
def test_rfc4231_long_keys_are_one_repeated_byte_and_refused(case):
    """Cases 6 and 7 use 131 bytes of 0xaa: long enough, but not random material (issue 23.6). The core computes
    the published MAC (above); the provider and the strategy refuse the key, naming it."""
    _, key, data, mac = next(c for c in RFC4231 if c[0] == case)
    assert HmacSha256(key).hexdigests([data]) == [mac]
    with pytest.raises(KeyMaterialError, match="key 'pid'.*one byte value repeated") as err:
        _key_via_env(key)
    assert base64.b64encode(key).decode() not in str(err.value)
    with pytest.raises(ValueError, match="key 'pid' is not a random key"):
        _hmac(key)


def test_env_provider_and_strategy_against_the_standard_library():
    key = bytes.fromhex("8f3c1ad27be6094e5d1fa2c6b3e47d9018b6f5c2a39e4d70c1b8e26f3a5d9c04")
    material = _key_via_env(key)
    data = "Test Using Larger Than Block-Size Key - Hash Key First"
    mac = std_hmac.new(key, data.encode(), hashlib.sha256).hexdigest()
    out = _hmac(material).apply(pa.array([data, None], pa.string()))
    assert out.type == pa.string() and out.to_pylist() == [mac, None]
    assert hmac_hex_many(material, [data, None]) == [mac, None]


@pytest.mark.parametrize("case", [1, 2, 3, 4])
def test_rfc4231_short_keys_are_rejected_by_the_provider(case):
    _, key, _, _ = next(c for c in RFC4231 if c[0] == case)
    with pytest.raises(KeyMaterialError, match="at least 32 bytes") as err:
        _key_via_env(key)
    assert base64.b64encode(key).decode() not in str(err.value)


def test_normalize_modes():
    key = bytes(range(32))
    values = pa.array(["  Ann@X.org\t", "ann@x.org", "555-01-2345", "555012345"])
    none = _hmac(key).apply(values).to_pylist()
    assert len(set(none)) == 4
    assert all(len(h) == 64 and h == h.lower() for h in none)
    strip = _hmac(key, "strip").apply(values).to_pylist()
    assert strip[0] == hmac_hex_many(key, ["Ann@X.org"])[0]
    lower = _hmac(key, "lower").apply(values).to_pylist()
    assert lower[0] == lower[1] == hmac_hex_many(key, ["ann@x.org"])[0]
    digits = _hmac(key, "digits").apply(values).to_pylist()
    assert digits[2] == digits[3] == hmac_hex_many(key, ["555012345"])[0]


def test_non_string_inputs_hash_their_canonical_string():
    key = bytes(range(32))
    cases = [
        (pa.array([42, None], pa.int32()), "42"),
        (pa.array([2**40], pa.int64()), str(2**40)),
        (pa.array([dt.date(2024, 2, 29)], pa.date32()), "2024-02-29"),
        (pa.array([dt.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=dt.UTC)], pa.timestamp("us", tz="UTC")),
         "2024-01-02T03:04:05.000006Z"),
        (pa.array([Decimal("12.30")], pa.decimal128(10, 2)), "12.30"),
        (pa.array([True]), "true"),
    ]
    for arr, text in cases:
        assert canonical_strings(arr).to_pylist()[0] == text
        expected = std_hmac.new(key, text.encode(), hashlib.sha256).hexdigest()
        assert _hmac(key).apply(arr).to_pylist()[0] == expected


def test_large_string_and_chunked_inputs():
    key = bytes(range(32))
    expected = hmac_hex_many(key, ["a", None])
    assert _hmac(key).apply(pa.array(["a", None], pa.large_string())).to_pylist() == expected
    assert _hmac(key).apply(pa.chunked_array([["a"], [None]])).to_pylist() == expected


def test_missing_key_is_a_clear_error_and_repr_hides_the_key():
    with pytest.raises(ValueError, match="patients.mrn_hash"):
        Hmac(Hmac.params_model(key="pid"), CTX, None)
    key = bytes(range(0x17, 0x37))
    assert key.hex() not in repr(_hmac(key)) and "\\x17" not in repr(_hmac(key))
    assert Hmac.output_type(Hmac.params_model(key="pid"), "date") == "string"


@given(st.lists(st.one_of(st.none(), st.text()), max_size=30), st.sampled_from(["none", "strip", "lower", "digits"]))
def test_deterministic_and_null_preserving(values, normalize):
    key = bytes(range(100, 132))
    arr = pa.array(values, pa.string())
    a = _hmac(key, normalize).apply(arr).to_pylist()
    b = _hmac(key, normalize).apply(arr).to_pylist()
    assert a == b
    assert [x is None for x in a] == [v is None for v in values]
    if normalize == "none":
        assert a == [None if v is None else std_hmac.new(key, v.encode(), hashlib.sha256).hexdigest()
                     for v in values]


def test_hex_array_is_the_hex_of_every_digest_and_keeps_nulls():
    """The batch path (one hexlify over the joined digests) gives exactly the per-value lowercase hex."""
    import os

    from lakehouse_phi.transforms.hmac import HmacSha256

    mac = HmacSha256(os.urandom(32))
    for messages in ([], [None], [b""], [b"a", None, b"\xff" * 100, None, "é".encode()],
                     [os.urandom(i % 70) for i in range(1000)]):
        got = mac.hex_array(messages)
        assert got.type == pa.string() and got.to_pylist() == mac.hexdigests(messages)
        assert got.null_count == sum(m is None for m in messages)
