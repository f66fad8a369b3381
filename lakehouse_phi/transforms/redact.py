"""Output a constant string (default ``[REDACTED]``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal  # noqa: F401

import pyarrow as pa
from pydantic import ConfigDict, Field  # noqa: F401

from lakehouse_phi.transforms.base import KeyedParams, NoParams, Params, Strategy  # noqa: F401

class RedactParams(Params):
    with_: str = Field(default="[REDACTED]", alias="with")
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Redact(Strategy):
    name = "redact"
    Params = RedactParams
    key_kind = None
    deterministic = True
    accepts = None

    def apply(self, values: pa.Array, others: Mapping[str, pa.Array] | None = None) -> pa.Array:
        raise NotImplementedError("redact: contract only; implementation pending")
