"""Vectorized building blocks: numpy draws turned into Arrow string arrays without a per-row Python loop."""

from __future__ import annotations

from collections.abc import Sequence
from math import gcd

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

EPOCH_DAY = np.datetime64("1970-01-01", "D")


def fixed_width(chars: np.ndarray) -> pa.StringArray:
    """An ``(n, w)`` uint8 array of ASCII codes -> ``n`` strings of width ``w`` (zero copy of the bytes)."""
    n, w = chars.shape
    offsets = np.arange(0, (n + 1) * w, w, dtype=np.int32) if w else np.zeros(n + 1, dtype=np.int32)
    data = np.ascontiguousarray(chars, dtype=np.uint8)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data))


def digit_matrix(values: np.ndarray, width: int) -> np.ndarray:
    """Non-negative integers -> ``(n, width)`` uint8 ASCII digits, zero-padded on the left."""
    values = np.asarray(values, dtype=np.int64)
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return ((values[:, None] // powers) % 10 + 48).astype(np.uint8)


def zero_padded(values: np.ndarray, width: int) -> pa.StringArray:
    """Non-negative integers as decimal strings of exactly ``width`` digits (leading zeros kept)."""
    return fixed_width(digit_matrix(values, width))


def random_digits(rng: np.random.Generator, n: int, width: int, first_min: int = 0) -> np.ndarray:
    """``(n, width)`` random ASCII digits; the first is at least ``first_min``."""
    chars = rng.integers(48, 58, size=(n, width), dtype=np.uint8)
    if first_min and width:
        chars[:, 0] = rng.integers(48 + first_min, 58, size=n, dtype=np.uint8)
    return chars


def digits(rng: np.random.Generator, n: int, width: int, first_min: int = 0) -> pa.StringArray:
    """Random digit strings; the first digit is at least ``first_min``."""
    return fixed_width(random_digits(rng, n, width, first_min))


def templated(templates: Sequence[str], form: np.ndarray, chars: np.ndarray, hole: str = "#") -> pa.StringArray:
    """Row ``i`` is ``templates[form[i]]`` with its ``hole`` placeholders filled, in order, from ``chars[i]``.

    E.g. templates ``("(###) ###-####", "###.###.####")`` and 10 digits per row give phone numbers in two
    layouts, built as one byte matrix instead of one concatenation per piece and layout.
    """
    width = np.array([len(t) for t in templates], dtype=np.int64)
    w_max = int(width.max())
    literal = np.zeros((len(templates), w_max), dtype=np.uint8)
    source = np.full((len(templates), w_max), -1, dtype=np.int64)
    for t, text in enumerate(templates):
        raw = np.frombuffer(text.encode("ascii"), dtype=np.uint8)
        literal[t, : len(raw)] = raw
        holes = np.flatnonzero(raw == ord(hole))
        if len(holes) > chars.shape[1]:
            raise ValueError(f"templated: {text!r} has {len(holes)} placeholders, rows have {chars.shape[1]}")
        source[t, holes] = np.arange(len(holes))
    form = np.asarray(form, dtype=np.int64)
    src = source[form]
    filled = np.take_along_axis(chars, np.maximum(src, 0), axis=1) if chars.shape[1] else literal[form]
    out = np.where(src >= 0, filled, literal[form])
    w = width[form]
    data = out[np.arange(w_max)[None, :] < w[:, None]]
    offsets = np.zeros(len(form) + 1, dtype=np.int32)
    np.cumsum(w, out=offsets[1:])
    return pa.StringArray.from_buffers(len(form), pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(data)))


def pick(rng: np.random.Generator, n: int, vocab: Sequence[str], weights: Sequence[float] | None = None
         ) -> pa.Array:
    """``n`` draws from ``vocab`` (uniform, or proportional to ``weights``)."""
    p = None if weights is None else np.asarray(weights, dtype=float) / float(np.sum(weights))
    return pa.array(vocab, pa.string()).take(rng.choice(len(vocab), size=n, p=p))


def concat(*parts: pa.Array | str) -> pa.Array:
    """Element-wise concatenation; a NULL part makes the row NULL."""
    return pc.binary_join_element_wise(*parts, "")


def with_nulls(rng: np.random.Generator, values: pa.Array, rate: float) -> pa.Array:
    """``values`` with a ``rate`` fraction of rows set to NULL."""
    if rate <= 0:
        return values
    return pc.if_else(pa.array(rng.random(len(values)) < rate), pa.scalar(None, values.type), values)


def iso_dates(days: np.ndarray) -> pa.Array:
    """Days since 1970-01-01 -> ``YYYY-MM-DD`` strings."""
    return pa.array(np.asarray(days, dtype=np.int32), pa.date32()).cast(pa.string())


def day_number(iso: str) -> int:
    return int((np.datetime64(iso, "D") - EPOCH_DAY).astype(np.int64))


def affine_bijection(rng: np.random.Generator, modulus: int) -> tuple[int, int]:
    """``(a, b)`` with ``i -> (a*i + b) % modulus`` a permutation of ``range(modulus)``: unique ids, no lookup."""
    a = int(rng.integers(modulus // 3, modulus)) | 1
    while gcd(a, modulus) != 1:
        a += 2
    return a % modulus, int(rng.integers(0, modulus))


def permute(index: np.ndarray, ab: tuple[int, int], modulus: int) -> np.ndarray:
    """Apply :func:`affine_bijection`'s permutation to row numbers ``index`` (all ``< modulus``)."""
    a, b = ab
    index = np.asarray(index, dtype=np.int64)
    if len(index) and int(index.max()) * a >= 2**63 - modulus:
        raise ValueError(f"synth: {int(index.max()) + 1} rows is too many for ids below {modulus}; generate fewer")
    return (index * a + b) % modulus
