"""Ages above ``cap - 1`` become ``cap`` (HIPAA Safe Harbor: ages over 89 are aggregated into 90+).

Same type as the input (int, long, double); ``89.5`` with the default cap becomes ``90``. NULL and NaN stay.

On a date or timestamp (a date of birth) it top-codes instead: a subject ``cap`` or older at the reference date
(``run_date``, today in UTC, or ``YYYY-MM-DD``) gets the first day of year (reference year - cap); younger subjects
keep their date. That is the ``age_cap`` SQL rendering on a DATE column, with ``current_date()`` as reference.
"""

from __future__ import annotations

from collections.abc import Mapping

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, field_validator

from lakehouse_phi.hipaa import AGE_CAP
from lakehouse_phi.transforms.base import ColumnContext, Params, Strategy
from lakehouse_phi.transforms.generalize_date import check_reference, reference_date, top_code


class AgeCapParams(Params):
    cap: int = Field(default=AGE_CAP, ge=1)
    #: For dates of birth only: ``run_date`` (UTC) or a fixed ``YYYY-MM-DD``.
    reference: str = "run_date"

    _reference = field_validator("reference")(classmethod(lambda cls, v: check_reference(v)))


class AgeCap(Strategy[AgeCapParams]):
    name = "age_cap"
    params_model = AgeCapParams
    accepts = ("int", "long", "double", "date", "timestamp")

    def __init__(self, params: AgeCapParams, ctx: ColumnContext, key: bytes | None = None) -> None:
        super().__init__(params, ctx, key)
        self.reference = reference_date(params.reference)

    def apply(self, values: pa.Array, others: Mapping[str, pa.Array] | None = None) -> pa.Array:
        cap = self.params.cap
        if pa.types.is_date32(values.type) or pa.types.is_timestamp(values.type):
            return top_code(values, values, cap, self.reference)
        over = pc.greater(values, pa.scalar(cap - 1, values.type))
        return pc.if_else(over, pa.scalar(cap, values.type), values)
