"""First day of the year, quarter, month or ISO week, or midnight of the day; same type as the input.

A date stays a date; a timestamp becomes 00:00:00 of that first day in its own time zone (UTC for our
``timestamp[us, UTC]`` columns). Vectorized with Arrow's ``floor_temporal``; ``week`` is the ISO week's Monday.

Safe Harbor's "90 or older" (45 CFR 164.514(b)(2)(i)(C)): with ``top_code_age: N`` a birth date that makes the
subject N or older at the reference date becomes the first day of year (reference year - N), one category for every
such subject whatever ``to`` is. On a ``phi: date_of_birth`` column (ingest column or ``derive`` output) N defaults
to 90; ``top_code_age: null`` turns it off there (the policy loader then asks for a ``justification``). The
reference is ``run_date`` (today in UTC, taken when the strategy is built, i.e. once per job and executor) or a
fixed ``YYYY-MM-DD``. A subject is N or older when born on or before the reference moved back N years, where a
29 February reference becomes 28 February of a common year (Spark's ``add_months``, which the SQL rendering uses):
born 29 February 1936, one is 90 on 1 March 2026.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Mapping
from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, field_validator

from lakehouse_phi.transforms.base import ColumnContext, Params, Strategy

#: Safe Harbor: ages over 89 are one category.
DEFAULT_TOP_CODE_AGE = 90
_EPOCH = dt.date(1970, 1, 1)


class GeneralizeDateParams(Params):
    to: Literal["year", "quarter", "month", "week", "day"]
    #: Subjects this old or older at ``reference`` are one category; default 90 on ``phi: date_of_birth``.
    top_code_age: int | None = Field(default=None, ge=1, le=150)
    #: ``run_date`` (UTC) or a fixed ``YYYY-MM-DD``.
    reference: str = "run_date"

    _reference = field_validator("reference")(classmethod(lambda cls, v: check_reference(v)))


def check_reference(v: str) -> str:
    """``run_date`` or an ISO date."""
    if v != "run_date":
        try:
            dt.date.fromisoformat(v)
        except ValueError:
            raise ValueError(f"found {v!r}; reference is run_date or a date written YYYY-MM-DD") from None
    return v


def effective_top_code_age(params: GeneralizeDateParams, phi: str | None) -> int | None:
    """``top_code_age`` as written, else 90 on a date-of-birth column, else none."""
    if "top_code_age" in params.model_fields_set:
        return params.top_code_age
    return DEFAULT_TOP_CODE_AGE if phi == "date_of_birth" else None


def reference_date(reference: str) -> dt.date:
    return dt.datetime.now(dt.timezone.utc).date() if reference == "run_date" else dt.date.fromisoformat(reference)


def years_before(day: dt.date, years: int) -> dt.date:
    """``day`` moved back ``years`` years; 29 February becomes 28 February in a common year."""
    year = day.year - years
    return dt.date(year, day.month, min(day.day, calendar.monthrange(year, day.month)[1]))


def top_code(values: pa.Array, generalized: pa.Array, age: int, reference: dt.date) -> pa.Array:
    """``generalized`` where the subject born on ``values`` is younger than ``age`` at ``reference``, else the first
    day of year (reference year - age), in the type of ``values`` (date32, or a timestamp at 00:00 UTC)."""
    latest = years_before(reference, age)  # born on or before this day: ``age`` or older at the reference
    first_day = dt.date(reference.year - age, 1, 1)
    if pa.types.is_date32(values.type):
        limit, bucket = pa.scalar(latest, pa.date32()), pa.scalar(first_day, pa.date32())
    elif pa.types.is_timestamp(values.type):
        unit_per_day = {"s": 86_400, "ms": 86_400_000, "us": 86_400_000_000, "ns": 86_400_000_000_000}
        per_day = unit_per_day[values.type.unit]
        # born on ``latest`` at any time of day counts: compare with the start of the next day
        limit_i = ((latest - _EPOCH).days + 1) * per_day
        values_i = values.cast(pa.int64())
        old = pc.less(values_i, pa.scalar(limit_i, pa.int64()))
        bucket_i = pa.scalar((first_day - _EPOCH).days * per_day, pa.int64())
        return pc.if_else(old, bucket_i, generalized.cast(pa.int64())).cast(values.type)
    else:  # pragma: no cover - accepts limits the types
        raise TypeError(f"top-coding needs a date or timestamp, found {values.type}")
    old = pc.less_equal(values, limit)
    return pc.if_else(old, bucket, generalized)


def floor_to(values: pa.Array, to: str) -> pa.Array:
    """First day of the period ``to`` (``week``: the ISO week's Monday; ``day``: midnight)."""
    if to == "week":
        return pc.floor_temporal(values, multiple=1, unit="week", week_starts_monday=True)
    return pc.floor_temporal(values, multiple=1, unit=to)


class GeneralizeDate(Strategy):
    name = "generalize_date"
    Params = GeneralizeDateParams
    key_kind = None
    deterministic = True
    accepts = ("date", "timestamp")

    def __init__(self, params: GeneralizeDateParams, ctx: ColumnContext, key: bytes | None = None) -> None:
        super().__init__(params, ctx, key)
        self.top_code_age = effective_top_code_age(params, ctx.phi)
        self.reference = reference_date(params.reference)

    def apply(self, values: pa.Array, others: Mapping[str, pa.Array] | None = None) -> pa.Array:
        out = floor_to(values, self.params.to)  # type: ignore[attr-defined]
        if self.top_code_age is None or pa.types.is_null(values.type):
            return out
        return top_code(values, out, self.top_code_age, self.reference)
