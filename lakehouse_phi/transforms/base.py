"""The strategy interface: a whole Arrow array in, one Arrow array out (no Spark, no per-row Python API).

A strategy is one small class per module (``transforms/<name>.py``), listed in :mod:`.registry`. Like Presidio's
operators, its parameters are validated up front (``Params``, a pydantic model that forbids unknown keys) and
only then is it applied; unlike them, ``apply`` takes a whole column.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Literal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict


class Params(BaseModel):
    """Base of every strategy's parameter model: unknown parameters are an error."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NoParams(Params):
    pass


class KeyedParams(Params):
    #: Name of an entry under the policy's ``keys:``.
    key: str


@dataclass(frozen=True)
class ColumnContext:
    """Where a strategy is applied. ``column`` is the *output* column (``encrypt`` binds ``<table>.<column>``)."""

    table: str
    column: str
    source_column: str
    input_type: str = "string"
    #: The column's ``phi`` category (``date_of_birth`` turns on ``generalize_date``'s top-coding by default).
    phi: str | None = None
    #: ``(column, phi category)`` of every input column of the table (``scrub_text``'s ``row_values`` tags).
    table_phi: tuple[tuple[str, str | None], ...] = ()


class Strategy(ABC):
    """One masking strategy bound to its parameters, its column and (for keyed strategies) its key bytes.

    Arrays passed to :meth:`apply` are typed as the policy column's type (``string`` -> ``pa.string()``,
    ``int`` -> int32, ``long`` -> int64, ``double`` -> float64, ``decimal(p,s)`` -> decimal128, ``boolean`` -> bool,
    ``date`` -> date32, ``timestamp`` -> timestamp[us, UTC]). NULL in gives NULL out.
    """

    name: ClassVar[str]
    Params: ClassVar[type[Params]] = NoParams
    #: ``"hmac"`` (>= 32 bytes) or ``"aes"`` (16/24/32 bytes) when ``params.key`` names a key; else ``None``.
    key_kind: ClassVar[Literal["hmac", "aes"] | None] = None
    #: Same input, key and parameters -> same output (``encrypt`` is not: its IV is random by design).
    deterministic: ClassVar[bool] = True
    #: Policy types this strategy accepts as input; ``None`` means any.
    accepts: ClassVar[tuple[str, ...] | None] = None

    def __init__(self, params: Params, ctx: ColumnContext, key: bytes | None = None) -> None:
        self.params = params
        self.ctx = ctx
        self._key = key

    def __repr__(self) -> str:  # never the key
        return f"{type(self).__name__}(column={self.ctx.table}.{self.ctx.column}, params={self.params!r})"

    @classmethod
    def output_type(cls, params: Params, input_type: str) -> str:
        """Policy type of the output column; by default the input's."""
        return input_type

    @classmethod
    def needs_columns(cls, params: Params) -> tuple[str, ...]:
        """Other *input* columns :meth:`apply` reads from ``others`` (``date_shift``'s subject)."""
        return ()

    def invalid(self, values: pa.Array) -> pa.Array | None:
        """A boolean array, True where a value cannot be masked (its row goes to quarantine); None if never."""
        return None

    @abstractmethod
    def apply(self, values: pa.Array, others: Mapping[str, pa.Array] | None = None) -> pa.Array:
        """Mask a whole column. ``others`` holds the input columns named by :meth:`needs_columns`."""
