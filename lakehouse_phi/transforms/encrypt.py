"""Base64 of IV(12) || ciphertext || tag(16), AES-GCM, AAD = UTF-8 ``<table>.<column>``.

Exactly the layout Spark SQL decrypts with
``aes_decrypt(unbase64(v), key, 'GCM', 'DEFAULT', '<table>.<column>')`` (checked on a real Spark session in
``tests/spark/test_encrypt_spark.py``). The IV is 12 random bytes per value from ``os.urandom`` (drawn for the
whole batch in one call), so the same plaintext encrypts differently each time; the AAD binds the ciphertext to
its column, so a value copied into another column does not decrypt there.
"""

from __future__ import annotations

import binascii
import os
from collections.abc import Mapping

import pyarrow as pa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from lakehouse_phi.transforms.base import ColumnContext, KeyedParams, Strategy, canonical_strings, require_key

IV_BYTES = 12


class EncryptParams(KeyedParams):
    pass


def aad_for(ctx: ColumnContext) -> bytes:
    """The associated data bound into every ciphertext of this column: UTF-8 of ``<table>.<column>``."""
    return f"{ctx.table}.{ctx.column}".encode()


class Encrypt(Strategy[EncryptParams]):
    name = "encrypt"
    params_model = EncryptParams
    key_kind = "aes"
    deterministic = False
    accepts = ("string",)

    def __init__(self, params: EncryptParams, ctx: ColumnContext, key: bytes | None = None) -> None:
        super().__init__(params, ctx, key)
        self._aead = AESGCM(require_key(self))
        self._aad = aad_for(ctx)

    @classmethod
    def output_type(cls, params: EncryptParams, input_type: str) -> str:
        return "string"

    def apply(self, values: pa.Array, others: Mapping[str, pa.Array] | None = None) -> pa.Array:
        plain = canonical_strings(values).cast(pa.binary()).to_pylist()
        ivs = os.urandom(IV_BYTES * len(plain))
        enc, aad, b64 = self._aead.encrypt, self._aad, binascii.b2a_base64
        out: list[str | None] = []
        append = out.append
        for k, p in enumerate(plain):
            if p is None:
                append(None)
                continue
            iv = ivs[IV_BYTES * k:IV_BYTES * (k + 1)]
            append(b64(iv + enc(iv, p, aad), newline=False).decode("ascii"))
        return pa.array(out, pa.string())
