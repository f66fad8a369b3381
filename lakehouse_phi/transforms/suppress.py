"""Output NULL (same type)."""

from __future__ import annotations

from collections.abc import Mapping

import pyarrow as pa

from lakehouse_phi.transforms.base import NoParams, Strategy


class Suppress(Strategy[NoParams]):
    name = "suppress"

    def apply(self, values: pa.Array, others: Mapping[str, pa.Array] | None = None) -> pa.Array:
        return pa.nulls(len(values), values.type)
