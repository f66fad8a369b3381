"""The strategy interface: a whole Arrow array in, one Arrow array out (no Spark, no per-row Python API).

A strategy is one small class per module (``transforms/<name>.py``), listed in :mod:`.registry`. Like Presidio's
operators, its parameters are validated up front (:attr:`Strategy.params_model`, a pydantic model that forbids
unknown keys) and only then is it applied; unlike them, ``apply`` takes a whole column. ``Strategy`` is generic
over its parameter model, so ``self.params`` has the strategy's own parameter type.

The helpers every strategy shares live here too: :func:`canonical_strings` (the canonical string of any Arrow
value) and :func:`require_key` (the key bytes of a keyed strategy, or a clear error).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Literal, TypeVar

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict


class Params(BaseModel):
    """Base of every strategy's parameter model: unknown parameters are an error."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NoParams(Params):
    pass


class KeyedParams(Params):
    #: Name of an entry under the policy's ``keys:``.
    key: str


P = TypeVar("P", bound=Params)


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


class Strategy(ABC, Generic[P]):
    """One masking strategy bound to its parameters, its column and (for keyed strategies) its key bytes.

    Arrays passed to :meth:`apply` are typed as the policy column's type (``string`` -> ``pa.string()``,
    ``int`` -> int32, ``long`` -> int64, ``double`` -> float64, ``decimal(p,s)`` -> decimal128, ``boolean`` -> bool,
    ``date`` -> date32, ``timestamp`` -> timestamp[us, UTC]). NULL in gives NULL out.
    """

    name: ClassVar[str]
    #: The pydantic model of this strategy's parameters (``P``).
    params_model: ClassVar[type[Params]] = NoParams
    #: ``"hmac"`` (>= 32 bytes) or ``"aes"`` (16/24/32 bytes) when ``params.key`` names a key; else ``None``.
    key_kind: ClassVar[Literal["hmac", "aes"] | None] = None
    #: Same input, key and parameters -> same output (``encrypt`` is not: its IV is random by design).
    deterministic: ClassVar[bool] = True
    #: Policy types this strategy accepts as input; ``None`` means any.
    accepts: ClassVar[tuple[str, ...] | None] = None

    def __init__(self, params: P, ctx: ColumnContext, key: bytes | None = None) -> None:
        self.params: P = params
        self.ctx = ctx
        self._key = key

    def __repr__(self) -> str:  # never the key
        return f"{type(self).__name__}(column={self.ctx.table}.{self.ctx.column}, params={self.params!r})"

    @classmethod
    def output_type(cls, params: P, input_type: str) -> str:
        """Policy type of the output column; by default the input's."""
        return input_type

    @classmethod
    def needs_columns(cls, params: P) -> tuple[str, ...]:
        """Other *input* columns :meth:`apply` reads from ``others`` (``date_shift``'s subject)."""
        return ()

    def invalid(self, values: pa.Array) -> pa.Array | None:
        """A boolean array, True where a value cannot be masked (its row goes to quarantine); None if never."""
        return None

    @abstractmethod
    def apply(self, values: pa.Array, others: Mapping[str, pa.Array] | None = None) -> pa.Array:
        """Mask a whole column. ``others`` holds the input columns named by :meth:`needs_columns`."""


def require_key(strategy: Strategy[Any]) -> bytes:
    """The key bytes a keyed strategy was built with; a clear error (without material) when there are none or they
    are weak (all-zero, one repeated byte or pattern, too short)."""
    if not strategy._key:
        ctx, key_name = strategy.ctx, getattr(strategy.params, "key", "?")
        raise ValueError(f"{strategy.name} on {ctx.table}.{ctx.column}: no key bytes were given; resolve key "
                         f"'{key_name}' with lakehouse_phi.keys.providers.load_key and pass its material")
    from lakehouse_phi.keys.strength import weak_key_problem

    weak = weak_key_problem(strategy._key)
    if weak is not None:
        ctx, key_name = strategy.ctx, getattr(strategy.params, "key", "?")
        raise ValueError(f"{strategy.name} on {ctx.table}.{ctx.column}: key '{key_name}' is not a random key "
                         f"({weak}); generate one with `openssl rand -base64 32`")
    return strategy._key


def canonical_strings(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """The canonical string of every value; NULL stays NULL.

    Integers and decimals in plain decimal, doubles as Arrow prints them (``1.5``, ``1e+20``), booleans
    ``true``/``false``, dates ``YYYY-MM-DD``, timestamps ISO 8601 in UTC with microseconds
    (``2024-01-02T03:04:05.000000Z``); strings as they are.
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    t = values.type
    if pa.types.is_string(t):
        return values
    if pa.types.is_large_string(t):
        return values.cast(pa.string())
    if pa.types.is_timestamp(t):
        utc = values.cast(pa.timestamp("us", tz="UTC"))
        return pc.strftime(utc, format="%Y-%m-%dT%H:%M:%SZ")
    return pc.cast(values, pa.string())
