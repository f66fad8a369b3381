"""partial: same length, first/last kept, everything masked when keeping would reveal it all, keep_domain."""

from __future__ import annotations

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lakehouse_phi.transforms.base import ColumnContext
from lakehouse_phi.transforms.partial import Partial

CTX = ColumnContext(table="patients", column="phone", source_column="phone")


def _p(**kw) -> list:
    values = kw.pop("values")
    return Partial(Partial.params_model(**kw), CTX).apply(pa.array(values, pa.string())).to_pylist()


def test_keep_first_and_last():
    assert _p(values=["555-867-5309", None, ""], keep_last=4) == ["********5309", None, ""]
    assert _p(values=["555-867-5309"], keep_first=3, keep_last=2, mask_char="#") == ["555#######09"]
    assert _p(values=["secret"]) == ["******"]


def test_keeping_the_whole_value_masks_it_all():
    assert _p(values=["1234", "12345", "123"], keep_last=4) == ["****", "*2345", "***"]
    assert _p(values=["abcd"], keep_first=2, keep_last=2) == ["****"]


def test_unicode_counts_code_points():
    assert _p(values=["Zoë Ünal"], keep_first=3) == ["Zoë*****"]


def test_keep_domain():
    values = ["jane.doe@example.org", "a@b@c.com", "not-an-email", "@x.org", "j@x.org", None]
    assert _p(values=values, keep_first=1, keep_domain=True) == [
        "j*******@example.org", "a**@c.com", "************", "@x.org", "*@x.org", None]
    assert _p(values=["jane.doe@example.org"], keep_domain=True) == ["********@example.org"]


def test_output_type():
    assert Partial.output_type(Partial.params_model(), "string") == "string"
    with pytest.raises(ValueError):
        Partial.params_model(mask_char="**")


@given(st.lists(st.one_of(st.none(), st.text(max_size=40)), max_size=20), st.integers(0, 6), st.integers(0, 6),
       st.booleans())
def test_same_length_and_kept_characters(values, kf, kl, keep_domain):
    out = _p(values=values, keep_first=kf, keep_last=kl, keep_domain=keep_domain)
    for v, o in zip(values, out):
        if v is None:
            assert o is None
            continue
        assert len(o) == len(v)
        if not keep_domain:
            if kf + kl < len(v):
                assert o[:kf] == v[:kf] and o[len(o) - kl:] == v[len(v) - kl:]
                assert set(o[kf:len(o) - kl]) <= {"*"}
            else:
                assert o == "*" * len(v)
        elif "@" in v:
            assert o[o.rindex("@"):] == v[v.rindex("@"):]
        else:
            assert o == "*" * len(v)
