"""Issue 16 item 5: key check values (truncated HMAC of a fixed label under the key) and the refusal of a run
whose material differs under the same key version."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from lakehouse_phi.errors import JobRefused
from lakehouse_phi.keys.providers import CHECK_LABEL, KeyRing, SecretKey, check_value, verify_check_values

A, B = bytes(range(32)), bytes(range(1, 33))


def test_check_value_is_the_truncated_hmac_of_the_label_under_the_key():
    # independent computation with the standard library's HMAC (RFC 2104), and RFC 4231 test case 2's key
    assert check_value(A) == hmac.new(A, b"lakehouse_phi/key_check/v1", hashlib.sha256).hexdigest()[:16]
    assert CHECK_LABEL == b"lakehouse_phi/key_check/v1"
    rfc4231_key = b"Jefe"
    assert hmac.new(rfc4231_key, b"what do ya want for nothing?", hashlib.sha256).hexdigest().startswith(
        "5bdcc146bf60754e")  # the published vector: the construction check_value uses
    assert check_value(A) != check_value(B) and len(check_value(A)) == 16


def test_keyring_check_values_carry_version_and_never_material():
    ring = KeyRing({"k": SecretKey("k", 3, A), "a": SecretKey("a", 1, B)})
    values = ring.check_values()
    assert values == {"a": {"version": 1, "check": check_value(B)}, "k": {"version": 3, "check": check_value(A)}}
    assert A.hex() not in repr(values) and B.hex() not in repr(values)


def test_same_version_other_material_refuses_naming_the_key():
    recorded = KeyRing({"k": SecretKey("k", 1, A), "x": SecretKey("x", 1, A)}).check_values()
    wrong = KeyRing({"k": SecretKey("k", 1, B), "x": SecretKey("x", 1, A)}).check_values()
    with pytest.raises(JobRefused) as info:
        verify_check_values(recorded, wrong, "bronze t")
    message = str(info.value)
    assert "key 'k' version 1" in message and "'x'" not in message and B.hex() not in message
    assert check_value(B) in message and check_value(A) in message


@pytest.mark.parametrize("recorded", [None, {}, {"other": {"version": 1, "check": "00"}}])
def test_nothing_recorded_or_other_keys_pass(recorded):
    verify_check_values(recorded, KeyRing({"k": SecretKey("k", 1, A)}).check_values(), "bronze t")


def test_a_new_version_passes_and_a_malformed_record_refuses():
    recorded = KeyRing({"k": SecretKey("k", 1, A)}).check_values()
    verify_check_values(recorded, KeyRing({"k": SecretKey("k", 2, B)}).check_values(), "bronze t")
    with pytest.raises(JobRefused, match="malformed"):
        verify_check_values({"k": "abc"}, KeyRing({"k": SecretKey("k", 1, A)}).check_values(), "bronze t")
    with pytest.raises(JobRefused, match="not a JSON object"):
        ring = KeyRing({"k": SecretKey("k", 1, A)})
        verify_check_values(["k"], ring.check_values(), "bronze t")  # type: ignore[arg-type]
