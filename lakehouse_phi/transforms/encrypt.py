"""Base64 of IV(12) || ciphertext || tag(16), AES-GCM, AAD = UTF-8 ``<table>.<column>``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal  # noqa: F401

import pyarrow as pa
from pydantic import ConfigDict, Field  # noqa: F401

from lakehouse_phi.transforms.base import KeyedParams, NoParams, Params, Strategy  # noqa: F401

class EncryptParams(KeyedParams):
    pass


class Encrypt(Strategy):
    name = "encrypt"
    Params = EncryptParams
    key_kind = "aes"
    deterministic = False
    accepts = ("string",)

    def apply(self, values: pa.Array, others: Mapping[str, pa.Array] | None = None) -> pa.Array:
        raise NotImplementedError("encrypt: contract only; implementation pending")
