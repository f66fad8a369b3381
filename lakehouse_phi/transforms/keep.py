"""Output the value unchanged."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal  # noqa: F401

import pyarrow as pa
from pydantic import ConfigDict, Field  # noqa: F401

from lakehouse_phi.transforms.base import KeyedParams, NoParams, Params, Strategy  # noqa: F401



class Keep(Strategy):
    name = "keep"
    Params = NoParams
    key_kind = None
    deterministic = True
    accepts = None

    def apply(self, values: pa.Array, others: Mapping[str, pa.Array] | None = None) -> pa.Array:
        raise NotImplementedError("keep: contract only; implementation pending")
