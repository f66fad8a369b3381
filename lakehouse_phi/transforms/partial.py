"""Mask all but the first/last characters; same length. ``keep_domain`` keeps an email's ``@domain``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal  # noqa: F401

import pyarrow as pa
from pydantic import ConfigDict, Field  # noqa: F401

from lakehouse_phi.transforms.base import KeyedParams, NoParams, Params, Strategy  # noqa: F401

class PartialParams(Params):
    keep_first: int = Field(default=0, ge=0)
    keep_last: int = Field(default=0, ge=0)
    mask_char: str = Field(default="*", min_length=1, max_length=1)
    keep_domain: bool = False


class Partial(Strategy):
    name = "partial"
    Params = PartialParams
    key_kind = None
    deterministic = True
    accepts = ("string",)

    def apply(self, values: pa.Array, others: Mapping[str, pa.Array] | None = None) -> pa.Array:
        raise NotImplementedError("partial: contract only; implementation pending")
