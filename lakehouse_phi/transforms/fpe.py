"""NIST SP 800-38G FF1, radix 10, over the digits; other characters stay in place."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal  # noqa: F401

import pyarrow as pa
from pydantic import ConfigDict, Field  # noqa: F401

from lakehouse_phi.transforms.base import KeyedParams, NoParams, Params, Strategy  # noqa: F401

class FpeParams(KeyedParams):
    tweak: str = Field(default="", pattern=r"^([0-9a-fA-F]{2})*$")


class Fpe(Strategy):
    name = "fpe"
    Params = FpeParams
    key_kind = "aes"
    deterministic = True
    accepts = ("string",)

    def apply(self, values: pa.Array, others: Mapping[str, pa.Array] | None = None) -> pa.Array:
        raise NotImplementedError("fpe: contract only; implementation pending")
