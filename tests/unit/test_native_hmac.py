"""The native HMAC loop (``native/``, package ``lakehouse-phi-native``) against RFC 4231 and, value by value,
against ``cryptography``'s HMAC: the ``hmac`` strategy and the row fingerprint must give the same bytes with and
without it. It is installed by ``make setup``; a missing build is a failure here, not a silent fallback."""

from __future__ import annotations

import hashlib
import hmac as std_hmac
import os
import pickle
import random
import subprocess
import sys

import pyarrow as pa
import pytest

from lakehouse_phi.transforms import hmac as hmac_mod
from lakehouse_phi.transforms.hmac import HmacSha256

#: RFC 4231 section 4: (key, data, HMAC-SHA-256) for test cases 1-4, 6 and 7 (case 5 is a truncated output)
RFC4231 = [
    (bytes.fromhex("0b" * 20), b"Hi There",
     "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    (b"Jefe", b"what do ya want for nothing?",
     "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
    (bytes.fromhex("aa" * 20), bytes.fromhex("dd" * 50),
     "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
    (bytes.fromhex("0102030405060708090a0b0c0d0e0f10111213141516171819"), bytes.fromhex("cd" * 50),
     "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
    (bytes.fromhex("aa" * 131), b"Test Using Larger Than Block-Size Key - Hash Key First",
     "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
    (bytes.fromhex("aa" * 131),
     b"This is a test using a larger than block-size key and a larger than block-size data. The key needs to be "
     b"hashed before being used by the HMAC algorithm.",
     "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
]


def _native():
    import lakehouse_phi_native

    return lakehouse_phi_native


def test_native_is_installed():
    """`make setup` builds and installs native/; the suite runs the native path (CI must not fall back quietly)."""
    lib = _native()
    assert lib.OPENSSL_VERSION.startswith("OpenSSL 3")
    assert hmac_mod.NATIVE, "lakehouse_phi does not use the installed native loop"


@pytest.mark.parametrize(("key", "data", "expected"), RFC4231)
def test_rfc4231_vectors(key, data, expected):
    arr = pa.array([data], pa.binary())
    assert HmacSha256(key).hex_arrow(arr).to_pylist() == [expected]
    raw = _native().HmacSha256(key)
    _, offsets, buf = arr.buffers()
    assert raw.hex(buf, offsets, 0, 1, False) == expected.encode()


def _reference(key: bytes, values: list) -> list:
    return [None if v is None else std_hmac.new(key, v if isinstance(v, bytes) else v.encode(), hashlib.sha256)
            .hexdigest() for v in values]


def _values(rng: random.Random, n: int) -> list:
    alphabet = "abcXYZ019 -_éß漢😀\n\t"
    out: list = []
    for _ in range(n):
        roll = rng.random()
        if roll < 0.1:
            out.append(None)
        elif roll < 0.15:
            out.append("")
        else:  # lengths that cross the 55/56/64-byte padding edges and span several blocks
            out.append("".join(rng.choice(alphabet) for _ in range(rng.choice([1, 9, 54, 55, 56, 63, 64, 65, 200]))))
    return out


@pytest.mark.parametrize("arrow_type", [pa.string(), pa.large_string(), pa.binary(), pa.large_binary()])
@pytest.mark.parametrize("key_len", [16, 32, 64, 65, 200])
def test_same_bytes_as_cryptography(arrow_type, key_len):
    rng = random.Random(key_len)
    key = bytes(rng.randrange(256) for _ in range(key_len))
    values = _values(rng, 500)
    data = values if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type) else \
        [None if v is None else v.encode() for v in values]
    arr = pa.array(data, arrow_type)
    expected = _reference(key, values)
    mac = HmacSha256(key)
    assert mac.hex_arrow(arr).to_pylist() == expected
    for start, stop in ((0, 0), (1, 2), (7, 300), (499, 500)):  # slices: a non-zero array offset
        assert mac.hex_arrow(arr.slice(start, stop - start)).to_pylist() == expected[start:stop]
    chunked = pa.chunked_array([arr.slice(0, 100), arr.slice(100)])
    assert mac.hex_arrow(chunked).to_pylist() == expected
    assert mac.hex_array([None if v is None else (v if isinstance(v, bytes) else v.encode())
                          for v in data]).to_pylist() == expected  # the pure path agrees too


def test_all_empty_and_no_values():
    mac = HmacSha256(b"k" * 32)
    empty = std_hmac.new(b"k" * 32, b"", hashlib.sha256).hexdigest()
    assert mac.hex_arrow(pa.array(["", ""])).to_pylist() == [empty, empty]  # a value buffer of zero bytes
    assert mac.hex_arrow(pa.array([], pa.string())).to_pylist() == []
    assert mac.hex_arrow(pa.array([None, None], pa.string())).to_pylist() == [None, None]


def test_bad_offsets_are_refused_before_reading():
    raw = _native().HmacSha256(b"k" * 32)
    data = b"abcdef"
    with pytest.raises(ValueError, match="out of range"):
        raw.hex(data, pa.array([0, 3, 99], pa.int32()).buffers()[1], 0, 2, False)
    with pytest.raises(ValueError, match="out of range"):
        raw.hex(data, pa.array([0, 4, 2], pa.int32()).buffers()[1], 0, 2, False)  # decreasing
    with pytest.raises(ValueError, match="shorter"):
        raw.hex(data, pa.array([0, 3], pa.int32()).buffers()[1], 0, 5, False)
    with pytest.raises(TypeError):
        HmacSha256(b"k" * 32).hex_arrow(pa.array([1, 2]))


def test_key_never_shown_or_pickled():
    key = b"SENTINEL-KEY-0123456789abcdefghij"
    raw = _native().HmacSha256(key)
    assert "SENTINEL" not in repr(raw) and repr(raw) == "HmacSha256(key=***)"
    with pytest.raises(TypeError):
        pickle.dumps(raw)
    with pytest.raises(TypeError):
        pickle.dumps(HmacSha256(key))


def test_strategy_and_fingerprint_agree_with_the_pure_path(tmp_path):
    """The whole ingest pass, with the native loop and with LAKEHOUSE_PHI_NATIVE=0 in a fresh interpreter: the
    same bronze bytes (the hmac column and _row_fingerprint)."""
    script = r"""
import json, sys
sys.path.insert(0, "benchmarks")
import pyarrow as pa
from bench_data import plan_for, example_policy
from lakehouse_phi import synth
from lakehouse_phi.engine.plan import IngestPlan
from lakehouse_phi.transforms import hmac
plan = plan_for(example_policy(), "patients")
data = synth.generate("patients", 2000, seed=3, malformed_rate=0.05)
table = pa.table({c: data.column(c).cast(pa.string()) for c in plan.spec.columns})
out = IngestPlan(plan).process(table.to_batches(700)[1])
print(json.dumps({"native": hmac.NATIVE, "rows": out.to_pylist()}, default=str, sort_keys=True))
"""
    runs = {}
    for flag in ("1", "0"):
        env = {**os.environ, "LAKEHOUSE_PHI_NATIVE": flag}
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True,
                              cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
        runs[flag] = done.stdout
    import json

    on, off = json.loads(runs["1"]), json.loads(runs["0"])
    assert on["native"] is True and off["native"] is False
    assert len(on["rows"]) == len(off["rows"]) == 700
    differing = {k for a, b in zip(on["rows"], off["rows"]) for k in a if a[k] != b[k]}
    assert differing == {"ssn"}  # encrypt: AES-GCM with a random IV; every other output is deterministic
    assert all(len(r["_row_fingerprint"]) == 64 for r in on["rows"])
