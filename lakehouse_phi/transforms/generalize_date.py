"""First day of the year, quarter or month; same type as the input.

A date stays a date; a timestamp becomes 00:00:00 of that first day in its own time zone (UTC for our
``timestamp[us, UTC]`` columns). Vectorized with Arrow's ``floor_temporal``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc

from lakehouse_phi.transforms.base import Params, Strategy


class GeneralizeDateParams(Params):
    to: Literal["year", "quarter", "month"]


class GeneralizeDate(Strategy):
    name = "generalize_date"
    Params = GeneralizeDateParams
    key_kind = None
    deterministic = True
    accepts = ("date", "timestamp")

    def apply(self, values: pa.Array, others: Mapping[str, pa.Array] | None = None) -> pa.Array:
        return pc.floor_temporal(values, multiple=1, unit=self.params.to)  # type: ignore[attr-defined]
