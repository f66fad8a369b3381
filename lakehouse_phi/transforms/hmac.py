"""Lowercase hex HMAC-SHA256(key, UTF-8 of the normalized value): 64 characters.

``normalize``:

* ``none`` - the value as is;
* ``strip`` - leading and trailing whitespace removed;
* ``lower`` - stripped, then lowercased (``"  Ann@X.org "`` and ``"ann@x.org"`` give the same hash);
* ``digits`` - only the ASCII digits 0-9 kept (``"555-01-2345"`` and ``"555012345"`` agree; a value with no
  digit hashes the empty string).

A non-string input is first turned into its canonical string (:func:`.base.canonical_strings`): integers and decimals
in plain decimal, doubles as Arrow prints them (``1.5``, ``1e+20``), booleans ``true``/``false``, dates
``YYYY-MM-DD``, timestamps ISO 8601 in UTC with microseconds (``2024-01-02T03:04:05.000000Z``).

Speed. With the optional ``lakehouse-phi-native`` package (``native/``; :data:`NATIVE`), a batch is hashed in one C
loop over the Arrow buffers (OpenSSL's SHA-256 from midstates of the key's pads): about 130 ns a value here. Without
it, one keyed OpenSSL HMAC context per key (``cryptography``), ``copy()``-ed per value: about 540 ns a value, against
640 ns for copied ``hashlib`` pad states and 1,280 ns for ``hmac.digest`` (which redoes the key pads on every call);
the raw digests of a batch become one Arrow string array with a single ``binascii.hexlify`` over their concatenation
and fixed 64-character offsets (:func:`hex_array`). Both paths give the same bytes (``tests/unit/test_native_hmac.py``
holds them to each other and to RFC 4231); ``LAKEHOUSE_PHI_NATIVE=0`` turns the native loop off.
"""

from __future__ import annotations

import binascii
import os
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac

from lakehouse_phi.transforms.base import ColumnContext, KeyedParams, Strategy, canonical_strings, require_key


def _native_hmac() -> Any:
    """The optional C loop's class (package ``lakehouse-phi-native``, built from ``native/``), or None."""
    if os.environ.get("LAKEHOUSE_PHI_NATIVE", "1") == "0":
        return None
    try:
        import lakehouse_phi_native
    except ImportError:
        return None
    return lakehouse_phi_native.HmacSha256


_NativeHmac = _native_hmac()

#: True when :meth:`HmacSha256.hex_arrow` hashes a batch in the native loop (``lakehouse-phi-native``).
NATIVE = _NativeHmac is not None


class HmacParams(KeyedParams):
    normalize: Literal["none", "strip", "lower", "digits"] = "none"


def _normalize(values: pa.Array, how: str) -> pa.Array:
    if how == "strip":
        return pc.utf8_trim_whitespace(values)
    if how == "lower":
        return pc.utf8_lower(pc.utf8_trim_whitespace(values))
    if how == "digits":
        return pc.replace_substring_regex(values, pattern=r"[^0-9]+", replacement="")
    return values


class HmacSha256:
    """HMAC-SHA256 (RFC 2104) over many messages: the keyed OpenSSL context (``cryptography``) is set up once and
    ``copy()``-ed per message, so no message pays for the key pads again."""

    __slots__ = ("_base", "_native")

    def __init__(self, key: bytes) -> None:
        self._base = crypto_hmac.HMAC(key, hashes.SHA256())
        self._native = _NativeHmac(key) if _NativeHmac is not None else None

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("HmacSha256 holds key material and is not pickled; rebuild it from the key ring")

    def __repr__(self) -> str:  # never the key
        return "HmacSha256(key=***)"

    def digest(self, message: bytes) -> bytes:
        """The raw 32-byte MAC of one message."""
        c = self._base.copy()
        c.update(message)
        return c.finalize()

    def digests(self, messages: Iterable[bytes | None]) -> list[bytes | None]:
        """Raw 32-byte MACs; None stays None."""
        copy = self._base.copy
        out: list[bytes | None] = []
        append = out.append
        for m in messages:
            if m is None:
                append(None)
                continue
            c = copy()
            c.update(m)
            append(c.finalize())
        return out

    def hex_array(self, messages: Iterable[bytes | None]) -> pa.Array:
        """Lowercase hex MACs as an Arrow ``string`` array; None stays NULL. (The hot path of the ``hmac``
        strategy and of the row fingerprint: one loop of raw digests, then :func:`hex_array`.)"""
        copy = self._base.copy
        out: list[bytes] = []
        append = out.append
        nulls: list[int] = []
        for m in messages:
            if m is None:
                nulls.append(len(out))
                append(_NO_DIGEST)
                continue
            c = copy()
            c.update(m)
            append(c.finalize())
        return hex_array(out, nulls)

    def hex_arrow(self, messages: pa.Array | pa.ChunkedArray) -> pa.Array:
        """Lowercase hex MACs of the values of an Arrow ``string``/``binary`` array (UTF-8 bytes of a string), as
        an Arrow ``string`` array; NULL stays NULL. One C loop over the buffers with the native package, else
        :meth:`hex_array` over the values."""
        if isinstance(messages, pa.ChunkedArray):
            messages = messages.combine_chunks()
        if self._native is None:
            return self.hex_array(messages.cast(pa.binary()).to_pylist())
        wide = pa.types.is_large_string(messages.type) or pa.types.is_large_binary(messages.type)
        if not wide and not (pa.types.is_string(messages.type) or pa.types.is_binary(messages.type)):
            raise TypeError(f"hex_arrow takes string or binary values, not {messages.type}")
        n = len(messages)
        _, offsets, data = messages.buffers()
        hexed = self._native.hex(b"" if data is None else data, offsets, messages.offset, n, wide) if n else b""
        out = pa.StringArray.from_buffers(n, _offsets(n), pa.py_buffer(hexed))
        if messages.null_count:
            out = pc.if_else(pc.is_valid(messages), out, pa.scalar(None, pa.string()))
        return out

    def hexdigests(self, messages: Iterable[bytes | None]) -> list[str | None]:
        """Lowercase hex MACs; None stays None. (A loop of its own: the hot path of the ``hmac`` strategy.)"""
        copy = self._base.copy
        out: list[str | None] = []
        append = out.append
        for m in messages:
            if m is None:
                append(None)
                continue
            c = copy()
            c.update(m)
            append(c.finalize().hex())
        return out


_NO_DIGEST = bytes(32)
_OFFSETS: dict[int, pa.Buffer] = {}


def _offsets(n: int) -> pa.Buffer:
    """The int32 offsets of ``n`` values of 64 characters each (batch sizes repeat: a few are kept)."""
    offsets = _OFFSETS.get(n)
    if offsets is None:
        offsets = pa.py_buffer(np.arange(0, 64 * (n + 1), 64, dtype=np.int32))
        if len(_OFFSETS) < 64:
            _OFFSETS[n] = offsets
    return offsets


def hex_array(digests: list[bytes], nulls: list[int] | None = None) -> pa.Array:
    """32-byte digests as an Arrow array of their 64-character lowercase hex (``nulls``: positions to make NULL):
    one ``hexlify`` of the concatenation, fixed offsets, no Python ``str`` per value."""
    n = len(digests)
    out = pa.StringArray.from_buffers(n, _offsets(n), pa.py_buffer(binascii.hexlify(b"".join(digests))))
    if nulls:
        valid = np.ones(n, dtype=bool)
        valid[nulls] = False
        out = pc.if_else(pa.array(valid), out, pa.scalar(None, pa.string()))
    return out


def hmac_hex_many(key: bytes, values: list[str | None]) -> list[str | None]:
    """Lowercase hex HMAC-SHA256(key, UTF-8 of each value); None stays None."""
    return HmacSha256(key).hexdigests(None if v is None else v.encode("utf-8") for v in values)


class Hmac(Strategy[HmacParams]):
    name = "hmac"
    params_model = HmacParams
    key_kind = "hmac"

    def __init__(self, params: HmacParams, ctx: ColumnContext, key: bytes | None = None) -> None:
        super().__init__(params, ctx, key)
        self._mac = HmacSha256(require_key(self))

    @classmethod
    def output_type(cls, params: HmacParams, input_type: str) -> str:
        return "string"

    def apply(self, values: pa.Array, others: Mapping[str, pa.Array] | None = None) -> pa.Array:
        text = _normalize(canonical_strings(values), self.params.normalize)
        return self._mac.hex_arrow(text)
