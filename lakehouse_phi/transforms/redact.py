"""Output a constant string (default ``[REDACTED]``); NULL stays NULL. The output is a string column."""

from __future__ import annotations

from collections.abc import Mapping

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import ConfigDict, Field

from lakehouse_phi.transforms.base import Params, Strategy


class RedactParams(Params):
    with_: str = Field(default="[REDACTED]", alias="with")
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Redact(Strategy[RedactParams]):
    name = "redact"
    params_model = RedactParams

    @classmethod
    def output_type(cls, params: RedactParams, input_type: str) -> str:
        return "string"

    def apply(self, values: pa.Array, others: Mapping[str, pa.Array] | None = None) -> pa.Array:
        const = pa.scalar(self.params.with_, pa.string())
        return pc.if_else(pc.is_valid(values), const, pa.scalar(None, pa.string()))
