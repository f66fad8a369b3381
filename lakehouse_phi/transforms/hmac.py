"""Lowercase hex HMAC-SHA256(key, UTF-8 of the normalized value): 64 characters."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal  # noqa: F401

import pyarrow as pa
from pydantic import ConfigDict, Field  # noqa: F401

from lakehouse_phi.transforms.base import KeyedParams, NoParams, Params, Strategy  # noqa: F401

class HmacParams(KeyedParams):
    normalize: Literal["none", "strip", "lower", "digits"] = "none"


class Hmac(Strategy):
    name = "hmac"
    Params = HmacParams
    key_kind = "hmac"
    deterministic = True
    accepts = None

    def apply(self, values: pa.Array, others: Mapping[str, pa.Array] | None = None) -> pa.Array:
        raise NotImplementedError("hmac: contract only; implementation pending")
