"""Shift by a non-zero offset in [-max_days, max_days] derived from HMAC(key, subject value).

The offset of a subject (its value in the ``subject`` column, as its canonical string, see
:func:`.base.canonical_strings`) is::

    n      = first 8 bytes of HMAC-SHA256(k_ds, UTF-8 of the subject), unsigned big-endian
    r      = n mod (2 * max_days)
    offset = r - max_days        if r <  max_days    (-max_days .. -1)
             r - max_days + 1    if r >= max_days    (1 .. max_days)

Zero is excluded on purpose: an offset of 0 would leave 1 in 2*max_days+1 subjects' dates untouched.

``k_ds = HMAC-SHA256(key, "lakehouse_phi/date_shift/v1")`` is a sub-key for this use only. Without it, a policy
that pseudonymises the subject with ``hmac`` under the same key would publish HMAC(key, subject) next to the
shifted dates, so anyone could recompute each subject's offset and undo the shift.

The same subject always moves by the same offset (across batches, tables and runs with the same key). The
offset is computed once per distinct subject in a batch. A NULL date or a NULL subject gives NULL.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from lakehouse_phi.transforms.base import ColumnContext, KeyedParams, Strategy, canonical_strings, require_key
from lakehouse_phi.transforms.hmac import HmacSha256

SUBKEY_LABEL = b"lakehouse_phi/date_shift/v1"
_PER_DAY = {"s": 86_400, "ms": 86_400_000, "us": 86_400_000_000, "ns": 86_400_000_000_000}


class DateShiftParams(KeyedParams):
    subject: str
    max_days: int = Field(ge=1, le=3650)


def date_shift_subkey(key: bytes) -> bytes:
    """The sub-key the offsets are derived with (see the module docstring)."""
    return HmacSha256(key).digest(SUBKEY_LABEL)


def offset_from_digest(digest: bytes, max_days: int) -> int:
    """The non-zero day offset in [-max_days, max_days] for one HMAC digest."""
    r = int.from_bytes(digest[:8], "big") % (2 * max_days)
    return r - max_days if r < max_days else r - max_days + 1


def shift_offsets(key: bytes, subjects: Sequence[str | None], max_days: int) -> list[int | None]:
    """The day offset of each subject string (None stays None), for a date_shift ``key``."""
    mac = HmacSha256(date_shift_subkey(key))
    digests = mac.digests(None if s is None else s.encode("utf-8") for s in subjects)
    return [None if d is None else offset_from_digest(d, max_days) for d in digests]


class DateShift(Strategy[DateShiftParams]):
    name = "date_shift"
    params_model = DateShiftParams
    key_kind = "hmac"
    accepts = ("date", "timestamp")

    def __init__(self, params: DateShiftParams, ctx: ColumnContext, key: bytes | None = None) -> None:
        super().__init__(params, ctx, key)
        self._mac = HmacSha256(date_shift_subkey(require_key(self)))

    @classmethod
    def needs_columns(cls, params: DateShiftParams) -> tuple[str, ...]:
        return (params.subject,)

    def offsets(self, subjects: pa.Array) -> pa.Array:
        """int32 day offset of every subject; computed once per distinct subject."""
        enc = canonical_strings(subjects).dictionary_encode()
        uniq = enc.dictionary.cast(pa.binary()).to_pylist()
        max_days = self.params.max_days
        digests = self._mac.digests(uniq)  # a dictionary holds no NULL (those are in the indices)
        per_uniq = pa.array([offset_from_digest(d, max_days) for d in digests if d is not None], pa.int32())
        return per_uniq.take(enc.indices)

    def apply(self, values: pa.Array, others: Mapping[str, pa.Array] | None = None) -> pa.Array:
        subject = self.params.subject
        if others is None or subject not in others:
            raise ValueError(f"date_shift on {self.ctx.table}.{self.ctx.column}: the subject column "
                             f"'{subject}' was not passed in `others`")
        subjects = others[subject]
        if isinstance(subjects, pa.ChunkedArray):
            subjects = subjects.combine_chunks()
        if len(subjects) != len(values):
            raise ValueError(f"date_shift on {self.ctx.table}.{self.ctx.column}: {len(values)} dates but "
                             f"{len(subjects)} subjects")
        days = self.offsets(subjects)
        if pa.types.is_date32(values.type):
            shifted = pc.add_checked(values.cast(pa.int32()), days)
            return shifted.cast(pa.date32())
        if pa.types.is_timestamp(values.type):
            per_day = _PER_DAY[values.type.unit]
            shifted = pc.add_checked(values.cast(pa.int64()), pc.multiply(days.cast(pa.int64()), per_day))
            return shifted.cast(values.type)
        raise TypeError(f"date_shift on {self.ctx.table}.{self.ctx.column}: needs a date or timestamp column, "
                        f"found {values.type}")
