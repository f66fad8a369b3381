"""First day of the year, quarter or month; same type as the input."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal  # noqa: F401

import pyarrow as pa
from pydantic import ConfigDict, Field  # noqa: F401

from lakehouse_phi.transforms.base import KeyedParams, NoParams, Params, Strategy  # noqa: F401

class GeneralizeDateParams(Params):
    to: Literal["year", "quarter", "month"]


class GeneralizeDate(Strategy):
    name = "generalize_date"
    Params = GeneralizeDateParams
    key_kind = None
    deterministic = True
    accepts = ("date", "timestamp")

    def apply(self, values: pa.Array, others: Mapping[str, pa.Array] | None = None) -> pa.Array:
        raise NotImplementedError("generalize_date: contract only; implementation pending")
