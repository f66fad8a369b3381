"""NIST SP 800-38G FF1, radix 10, over the digits; other characters stay in place.

The ASCII digits 0-9 of a value are taken out in order, encrypted together with FF1 (:mod:`.ff1`) under the
column's AES key and ``tweak`` (hex bytes, default empty), and put back in the same positions; every other
character is unchanged, so ``123-45-6789`` becomes ``ddd-dd-dddd``. A value with fewer than 6 digits is outside
FF1's domain (Rev. 1: ``10**n >= 10**6``): :meth:`Fpe.invalid` marks it (its row goes to quarantine) and
:meth:`Fpe.apply` returns NULL for it.
"""

from __future__ import annotations

from collections.abc import Mapping

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from lakehouse_phi.transforms.base import ColumnContext, KeyedParams, Strategy
from lakehouse_phi.transforms.ff1 import FF1
from lakehouse_phi.transforms.hmac import canonical_strings, require_key

MIN_DIGITS = 6


class FpeParams(KeyedParams):
    tweak: str = Field(default="", pattern=r"^([0-9a-fA-F]{2})*$")


def _digits(values: pa.Array) -> pa.Array:
    return pc.replace_substring_regex(canonical_strings(values), pattern=r"[^0-9]+", replacement="")


def _put_back(template: str, digits: str) -> str:
    """``template`` with its digits replaced, in order, by ``digits``."""
    if len(template) == len(digits):
        return digits
    it = iter(digits)
    return "".join(next(it) if "0" <= ch <= "9" else ch for ch in template)


class Fpe(Strategy):
    name = "fpe"
    Params = FpeParams
    key_kind = "aes"
    deterministic = True
    accepts = ("string",)

    def __init__(self, params: FpeParams, ctx: ColumnContext, key: bytes | None = None) -> None:
        super().__init__(params, ctx, key)
        self._ff1 = FF1(require_key(self), radix=10)
        self._tweak = bytes.fromhex(params.tweak)

    @classmethod
    def output_type(cls, params: FpeParams, input_type: str) -> str:  # type: ignore[override]
        return "string"

    def invalid(self, values: pa.Array) -> pa.Array:
        """True where a non-NULL value has fewer than 6 digits."""
        return pc.fill_null(pc.less(pc.utf8_length(_digits(values)), MIN_DIGITS), False)

    def apply(self, values: pa.Array, others: Mapping[str, pa.Array] | None = None) -> pa.Array:
        return self._run(values, decrypt=False)

    def decrypt(self, values: pa.Array) -> pa.Array:
        """The inverse of :meth:`apply` (for tests and authorised re-identification)."""
        return self._run(values, decrypt=True)

    def _run(self, values: pa.Array, decrypt: bool) -> pa.Array:
        text = canonical_strings(values)
        digits = _digits(text)
        ok = pc.fill_null(pc.greater_equal(pc.utf8_length(digits), MIN_DIGITS), False)
        idx = pc.indices_nonzero(ok).to_pylist()
        out: list[str | None] = [None] * len(text)
        if idx:
            many = self._ff1.decrypt_many if decrypt else self._ff1.encrypt_many
            done = many(pc.filter(digits, ok).to_pylist(), self._tweak)
            templates = pc.filter(text, ok).to_pylist()
            for k, t, d in zip(idx, templates, done):
                out[k] = _put_back(t, d)
        return pa.array(out, pa.string())
