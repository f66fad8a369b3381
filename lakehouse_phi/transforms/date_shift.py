"""Shift by an offset in [-max_days, max_days] derived from HMAC(key, subject value)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal  # noqa: F401

import pyarrow as pa
from pydantic import ConfigDict, Field  # noqa: F401

from lakehouse_phi.transforms.base import KeyedParams, NoParams, Params, Strategy  # noqa: F401

class DateShiftParams(KeyedParams):
    subject: str
    max_days: int = Field(ge=1, le=3650)


class DateShift(Strategy):
    name = "date_shift"
    Params = DateShiftParams
    key_kind = "hmac"
    deterministic = True
    accepts = ("date", "timestamp")

    def apply(self, values: pa.Array, others: Mapping[str, pa.Array] | None = None) -> pa.Array:
        raise NotImplementedError("date_shift: contract only; implementation pending")
