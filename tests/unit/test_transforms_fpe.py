"""fpe: FF1 radix 10 over the digits of a value; non-digits stay; fewer than 6 digits is quarantined."""

from __future__ import annotations

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lakehouse_phi.transforms.base import ColumnContext
from lakehouse_phi.transforms.fpe import Fpe

CTX = ColumnContext(table="patients", column="phone", source_column="phone")
K128 = bytes.fromhex("2B7E151628AED2A6ABF7158809CF4F3C")
K256 = bytes.fromhex("2B7E151628AED2A6ABF7158809CF4F3CEF4359D8D580AA4F7F036D6F04FC6A94")


def _fpe(key: bytes = K128, tweak: str = "") -> Fpe:
    return Fpe(Fpe.params_model(key="fpe", tweak=tweak), CTX, key)


@pytest.mark.parametrize(("key", "tweak", "ct"), [
    (K128, "", "2433477484"),                         # NIST FF1 sample 1
    (K128, "39383736353433323130", "6124200773"),     # sample 2
    (K256, "", "6657667009"),                         # sample 7
    (K256, "39383736353433323130", "1001623463"),     # sample 8
])
def test_nist_samples_through_the_strategy_with_separators(key, tweak, ct):
    f = _fpe(key, tweak)
    out = f.apply(pa.array(["0123456789", "(012) 345-6789", None])).to_pylist()
    assert out == [ct, f"({ct[:3]}) {ct[3:6]}-{ct[6:]}", None]
    assert f.decrypt(pa.array(out)).to_pylist() == ["0123456789", "(012) 345-6789", None]


def test_fewer_than_six_digits_is_invalid_and_null():
    f = _fpe()
    values = pa.array(["12345", "1-2-3-4-5-6", "no digits", "", None, "123456"])
    assert f.invalid(values).to_pylist() == [True, False, True, True, False, False]
    out = f.apply(values).to_pylist()
    assert out[0] is None and out[2] is None and out[3] is None and out[4] is None
    assert out[1] is not None and out[5] is not None


def test_only_ascii_digits_are_encrypted():
    out = _fpe().apply(pa.array(["١٢٣ 123456"])).to_pylist()[0]  # Arabic-Indic digits stay as they are
    assert out.startswith("١٢٣ ") and out[4:].isascii() and out[4:].isdigit()


def test_contract():
    assert Fpe.output_type(Fpe.params_model(key="fpe"), "string") == "string"
    with pytest.raises(ValueError):
        Fpe.params_model(key="fpe", tweak="abc")
    with pytest.raises(ValueError, match="patients.phone"):
        Fpe(Fpe.params_model(key="fpe"), CTX, None)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(alphabet=st.sampled_from("0123456789-() .x/é"), max_size=30)),
                max_size=15), st.sampled_from(["", "00", "39383736353433323130", "ab" * 20]))
def test_length_and_non_digit_positions_are_preserved(values, tweak):
    f = _fpe(tweak=tweak)
    arr = pa.array(values, pa.string())
    out = f.apply(arr).to_pylist()
    assert f.apply(arr).to_pylist() == out  # deterministic
    bad = f.invalid(arr).to_pylist()
    for v, o, b in zip(values, out, bad):
        if v is None:
            assert o is None and not b
        elif b:
            assert o is None and sum(c.isdigit() for c in v) < 6
        else:
            assert len(o) == len(v)
            assert [c if not c.isdigit() else "d" for c in v] == [c if not c.isdigit() else "d" for c in o]
    assert f.decrypt(pa.array(out, pa.string())).to_pylist() == [None if o is None else v for v, o in zip(values, out)]


def _reference(value: str, key: bytes = K128, tweak: bytes = b"") -> str:
    """Step-by-step FF1 over the digits, put back one character at a time."""
    from lakehouse_phi.transforms.ff1 import FF1

    it = iter(FF1(key).encrypt("".join(c for c in value if "0" <= c <= "9"), tweak))
    return "".join(next(it) if "0" <= c <= "9" else c for c in value)


def test_every_code_path_matches_the_step_by_step_reference():
    # 6..18 digits: numpy rounds; 19..57: batched ints; 58+: step by step. Over 64 shapes: per-value put-back.
    values = ["9" * n for n in (6, 17, 18, 19, 40, 57, 58, 70)]
    values += ["x" * k + "-123-456" for k in range(100)]
    values += ["0" * 6, "123 456 789 012 345 678 9"]
    out = _fpe().apply(pa.array(values)).to_pylist()
    assert out == [_reference(v) for v in values]
    assert _fpe().decrypt(pa.array(out)).to_pylist() == values
