"""First three digits of a US ZIP; 000 for Safe Harbor restricted prefixes; NULL if not a ZIP."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal  # noqa: F401

import pyarrow as pa
from pydantic import ConfigDict, Field  # noqa: F401

from lakehouse_phi.transforms.base import KeyedParams, NoParams, Params, Strategy  # noqa: F401



class Zip3(Strategy):
    name = "zip3"
    Params = NoParams
    key_kind = None
    deterministic = True
    accepts = ("string",)

    def apply(self, values: pa.Array, others: Mapping[str, pa.Array] | None = None) -> pa.Array:
        raise NotImplementedError("zip3: contract only; implementation pending")
