"""Ages above ``cap - 1`` become ``cap`` (HIPAA Safe Harbor: ages over 89 are aggregated into 90+).

Same type as the input (int, long, double); ``89.5`` with the default cap becomes ``90``. NULL and NaN stay.
"""

from __future__ import annotations

from collections.abc import Mapping

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from lakehouse_phi.hipaa import AGE_CAP
from lakehouse_phi.transforms.base import Params, Strategy


class AgeCapParams(Params):
    cap: int = Field(default=AGE_CAP, ge=1)


class AgeCap(Strategy[AgeCapParams]):
    name = "age_cap"
    params_model = AgeCapParams
    accepts = ("int", "long", "double")

    def apply(self, values: pa.Array, others: Mapping[str, pa.Array] | None = None) -> pa.Array:
        cap = self.params.cap
        over = pc.greater(values, pa.scalar(cap - 1, values.type))
        return pc.if_else(over, pa.scalar(cap, values.type), values)
