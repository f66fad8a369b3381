"""NIST SP 800-38G FF1, radix 10, over the digits; other characters stay in place.

The ASCII digits 0-9 of a value are taken out in order, encrypted together with FF1 (:mod:`.ff1`) under the
column's AES key and ``tweak`` (hex bytes, default empty), and put back in the same positions; every other
character is unchanged, so ``123-45-6789`` becomes ``ddd-dd-dddd``. A value with fewer than 6 digits is outside
FF1's domain (Rev. 1: ``10**n >= 10**6``), and one with more than ``MAX_DIGITS`` (1,024) digits is no identifier
(and past Python's 4,300-digit int conversion limit the step-by-step path would raise): :meth:`Fpe.invalid` marks
both (their rows go to quarantine) and :meth:`Fpe.apply` returns NULL for them.

Vectorized: digit strings are grouped by length and split into halves with Arrow; up to 18 digits the FF1 rounds
run on numpy arrays (:meth:`.ff1.FF1.rounds_u64`). Non-digits are put back per *shape* (the value with every
digit replaced by ``0``, e.g. ``000-00-0000``): one Arrow concatenation per distinct shape.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from lakehouse_phi.transforms.base import ColumnContext, KeyedParams, Strategy, canonical_strings, require_key
from lakehouse_phi.transforms.ff1 import FF1

MIN_DIGITS = 6
#: More digits than this is not an identifier but a poison value (the row is quarantined, not encrypted).
MAX_DIGITS = 1024
#: Beyond this many distinct shapes in a batch, the remaining values are put back one by one.
MAX_SHAPES = 64


class FpeParams(KeyedParams):
    tweak: str = Field(default="", pattern=r"^([0-9a-fA-F]{2})*$")


def _digits(text: pa.Array) -> pa.Array:
    return pc.replace_substring_regex(text, pattern=r"[^0-9]+", replacement="")


def _shapes(text: pa.Array) -> pa.Array:
    """``text`` with every ASCII digit replaced by ``0``, byte-wise on the UTF-8 data buffer (bytes 0x30-0x39
    never occur inside a multi-byte UTF-8 character); about 60x faster than a ``[0-9]`` regex replace."""
    validity, offsets, data = text.buffers()[:3]
    if data is None or data.size == 0:
        return text
    raw = np.frombuffer(data, dtype=np.uint8)
    shaped = np.where((raw >= 0x30) & (raw <= 0x39), np.uint8(0x30), raw)
    return pa.StringArray.from_buffers(len(text), offsets, pa.py_buffer(shaped), validity, text.null_count,
                                       text.offset)


def _put_back_one(template: str, digits: str) -> str:
    it = iter(digits)
    return "".join(next(it) if "0" <= ch <= "9" else ch for ch in template)


def _pieces(shape: str) -> list[tuple[bool, int, int, str]]:
    """Runs of a shape: (is_digits, start in the digit string, stop, literal text)."""
    runs: list[tuple[bool, int, int, str]] = []
    pos = 0
    k = 0
    while k < len(shape):
        j = k
        is_digit = shape[k] == "0"
        while j < len(shape) and (shape[j] == "0") == is_digit:
            j += 1
        if is_digit:
            runs.append((True, pos, pos + j - k, ""))
            pos += j - k
        else:
            runs.append((False, 0, 0, shape[k:j]))
        k = j
    return runs


def _put_back(text: pa.Array, digits: pa.Array, enc: pa.Array) -> pa.Array:
    """``text`` with its digits replaced, in order, by ``enc`` (all three arrays non-NULL, same length)."""
    plain = pc.equal(pc.utf8_length(text), pc.utf8_length(digits))
    if pc.all(plain).as_py():
        return enc
    out = enc
    shapes = _shapes(text).dictionary_encode()
    for code, shape in enumerate(shapes.dictionary.to_pylist()[:MAX_SHAPES]):
        if "0" * len(shape) == shape:
            continue
        mask = pc.equal(shapes.indices, code)
        sub = pc.filter(enc, mask)
        parts = [pc.utf8_slice_codeunits(sub, start=a, stop=b) if dig else pa.scalar(lit, pa.string())
                 for dig, a, b, lit in _pieces(shape)]
        joined = pc.binary_join_element_wise(*parts, pa.scalar("", pa.string()))
        out = pc.replace_with_mask(out, mask, joined)
    if len(shapes.dictionary) > MAX_SHAPES:
        rest = pc.greater_equal(shapes.indices, MAX_SHAPES)
        one = [_put_back_one(t, e) for t, e in zip(pc.filter(text, rest).to_pylist(),
                                                    pc.filter(enc, rest).to_pylist())]
        out = pc.replace_with_mask(out, rest, pa.array(one, pa.string()))
    return out


class Fpe(Strategy[FpeParams]):
    name = "fpe"
    params_model = FpeParams
    key_kind = "aes"
    accepts = ("string",)

    def __init__(self, params: FpeParams, ctx: ColumnContext, key: bytes | None = None) -> None:
        super().__init__(params, ctx, key)
        self._ff1 = FF1(require_key(self), radix=10)
        self._tweak = bytes.fromhex(params.tweak)

    @classmethod
    def output_type(cls, params: FpeParams, input_type: str) -> str:
        return "string"

    def invalid(self, values: pa.Array) -> pa.Array:
        """True where a non-NULL value has fewer than 6 or more than ``MAX_DIGITS`` digits."""
        n = pc.utf8_length(_digits(canonical_strings(values)))
        return pc.fill_null(pc.or_(pc.less(n, MIN_DIGITS), pc.greater(n, MAX_DIGITS)), False)

    def apply(self, values: pa.Array, others: Mapping[str, pa.Array] | None = None) -> pa.Array:
        return self._run(values, decrypt=False)

    def decrypt(self, values: pa.Array) -> pa.Array:
        """The inverse of :meth:`apply` (for tests and authorised re-identification)."""
        return self._run(values, decrypt=True)

    def _crypt_digits(self, digits: pa.Array, decrypt: bool) -> pa.Array:
        """FF1 over every digit string (each at least 6 digits), grouped by length."""
        lengths = pc.utf8_length(digits)
        out = pa.nulls(len(digits), pa.string())
        for n in pc.unique(lengths).to_pylist():
            mask = pc.equal(lengths, n)
            sub = pc.filter(digits, mask)
            if self._ff1.u64_ok(n):
                u = n // 2
                a = pc.cast(pc.utf8_slice_codeunits(sub, start=0, stop=u), pa.uint64()).to_numpy()
                b = pc.cast(pc.utf8_slice_codeunits(sub, start=u), pa.uint64()).to_numpy()
                ra, rb = self._ff1.rounds_u64(a, b, n, self._tweak, decrypt)
                sa = pc.utf8_lpad(pa.array(ra).cast(pa.string()), width=u, padding="0")
                sb = pc.utf8_lpad(pa.array(rb).cast(pa.string()), width=n - u, padding="0")
                done = pc.binary_join_element_wise(sa, sb, pa.scalar("", pa.string()))
            else:
                many = self._ff1.decrypt_many if decrypt else self._ff1.encrypt_many
                done = pa.array(many(sub.to_pylist(), self._tweak), pa.string())
            out = pc.replace_with_mask(out, mask, done)
        return out

    def _run(self, values: pa.Array, decrypt: bool) -> pa.Array:
        text = canonical_strings(values)
        digits = _digits(text)
        n = pc.utf8_length(digits)
        ok = pc.fill_null(pc.and_(pc.greater_equal(n, MIN_DIGITS), pc.less_equal(n, MAX_DIGITS)), False)
        if not pc.any(ok).as_py():
            return pa.nulls(len(text), pa.string())
        d_ok = pc.filter(digits, ok)
        merged = _put_back(pc.filter(text, ok), d_ok, self._crypt_digits(d_ok, decrypt))
        return pc.replace_with_mask(pa.nulls(len(text), pa.string()), ok, merged)
