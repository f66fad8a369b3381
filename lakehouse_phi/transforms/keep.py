"""Output the value unchanged."""

from __future__ import annotations

from collections.abc import Mapping

import pyarrow as pa

from lakehouse_phi.transforms.base import NoParams, Strategy


class Keep(Strategy[NoParams]):
    name = "keep"

    def apply(self, values: pa.Array, others: Mapping[str, pa.Array] | None = None) -> pa.Array:
        return values
