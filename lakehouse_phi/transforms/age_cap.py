"""Ages above ``cap - 1`` become ``cap``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal  # noqa: F401

import pyarrow as pa
from pydantic import ConfigDict, Field  # noqa: F401

from lakehouse_phi.transforms.base import KeyedParams, NoParams, Params, Strategy  # noqa: F401

class AgeCapParams(Params):
    cap: int = Field(default=90, ge=1)


class AgeCap(Strategy):
    name = "age_cap"
    Params = AgeCapParams
    key_kind = None
    deterministic = True
    accepts = ("int", "long", "double")

    def apply(self, values: pa.Array, others: Mapping[str, pa.Array] | None = None) -> pa.Array:
        raise NotImplementedError("age_cap: contract only; implementation pending")
