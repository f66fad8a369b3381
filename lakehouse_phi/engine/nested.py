"""Nested columns in the fused pass: Arrow struct and list arrays masked leaf by leaf, vectorized.

A nested column's Arrow array is taken apart down to its declared leaves (a struct into its children, with the
struct's validity merged in; a list into its values, with the original offsets kept), each leaf is checked and
masked as one flat array with the same functions as a flat column (:func:`lakehouse_phi.engine.plan.check_values`,
:func:`lakehouse_phi.engine.plan.mask_values`), and the column is rebuilt with the original offsets and validity:
the same shape, no element dropped or reordered, only declared fields (an undeclared one was refused or dropped
before any data was read, see :func:`undeclared_fields`). Every leaf element carries the index of its row, so a
failure quarantines its row with a reason by path (``address[].postalCode: pattern``), never the value.

Nothing here walks rows one at a time, except for ``type: json`` values: each is serialized to its JSON text
(sorted keys, NULL fields left out) so the same subtree always gives the same text.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from lakehouse_phi.engine.names import NameHasher
from lakehouse_phi.engine.types import arrow_type
from lakehouse_phi.policy import nested, types
from lakehouse_phi.policy.model import ColumnSpec, LeafSpec
from lakehouse_phi.transforms.base import Strategy

#: A check or strategy that failed on some rows: (row indexes, column or leaf label, rule, message).
Failure = tuple[NDArray[Any], str, str, str]
SHAPE_MESSAGE = "a {found} where {wanted} is declared; the value is withheld"


def arrow_of(tree: types.TypeTree) -> pa.DataType:
    """The Arrow type of a policy type tree."""
    if isinstance(tree, types.StructOf):
        return pa.struct([pa.field(n, arrow_of(t)) for n, t in tree.fields])
    if isinstance(tree, types.ArrayOf):
        return pa.list_(arrow_of(tree.element))
    return arrow_type(tree)


def is_nested_type(t: pa.DataType) -> bool:
    return bool(pa.types.is_struct(t) or pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_map(t)
                or pa.types.is_fixed_size_list(t))


def _shape_name(t: pa.DataType) -> str:
    if pa.types.is_struct(t):
        return "struct"
    if pa.types.is_map(t):
        return "map"
    return "array" if is_nested_type(t) else "scalar"


# ------------------------------------------------------------------------------------------------ values
def _plain(value: Any) -> Any:
    """A Python value from Arrow made JSON-ready: NULL struct fields left out, maps as objects."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        if value and all(isinstance(x, tuple) and len(x) == 2 for x in value):  # a map's (key, value) pairs
            return {str(k): _plain(v) for k, v in value if v is not None}
        return [_plain(v) for v in value]
    return value


def json_text(values: pa.Array) -> pa.Array:
    """Each value as compact JSON text with sorted keys and NULL fields left out (NULL stays NULL; a string is taken
    as JSON text already: a JSON source whose subtree Spark read as a string). Built with Arrow kernels, level by
    level (:func:`_json`); only maps and binary values are serialized value by value."""
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        return values.cast(pa.string())
    if pa.types.is_null(values.type):
        return pa.nulls(len(values), pa.string())
    return _json(values)


_ESCAPES = (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t"), ("\b", "\\b"),
            ("\f", "\\f"))


def _quoted(text: pa.Array) -> pa.Array:
    """JSON string literals, as ``json.dumps(ensure_ascii=False)`` writes them."""
    if pc.any(pc.match_substring_regex(text, r'[\x00-\x1f"\\]')).as_py():
        for old, new in _ESCAPES:
            text = pc.replace_substring(text, old, new)
        if pc.any(pc.match_substring_regex(text, r"[\x00-\x1f]")).as_py():
            for code in range(0x20):
                text = pc.replace_substring(text, chr(code), f"\\u{code:04x}")
    return pc.binary_join_element_wise('"', text, '"', "")


def _json(values: pa.Array) -> pa.Array:
    """JSON text of any Arrow array, NULL where the value is NULL."""
    t = values.type
    n = len(values)
    if pa.types.is_null(t):
        return pa.nulls(n, pa.string())
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return _quoted(values.cast(pa.string()))
    if pa.types.is_boolean(t):
        return pc.if_else(values, pa.scalar("true"), pa.scalar("false"))
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        return pc.cast(values, pa.string())
    if pa.types.is_date(t):
        return _quoted(pc.cast(values, pa.string()))
    if pa.types.is_timestamp(t):
        return _quoted(as_text(values, "string")[0])
    if pa.types.is_struct(t):
        names = sorted(t.field(i).name for i in range(t.num_fields))
        if not names:
            return pc.if_else(pc.is_valid(values), pa.scalar("{}"), pa.scalar(None, pa.string()))
        parts = []
        for name, child in zip(names, struct_children(values, names)):
            enc = _json(child)
            key = "," + json.dumps(name, ensure_ascii=False) + ":"
            parts.append(pc.fill_null(pc.binary_join_element_wise(key, enc, ""), ""))  # a NULL field: left out
        inner = pc.binary_join_element_wise(*parts, "") if len(parts) > 1 else parts[0]
        inner = pc.utf8_slice_codeunits(inner, 1)  # every part starts with its comma: drop the first
        wrapped = pc.binary_join_element_wise("{", inner, "}", "")
        return pc.if_else(pc.is_valid(values), wrapped, pa.scalar(None, pa.string()))
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        elements, offsets = list_parts(values)
        enc = pc.fill_null(_json(elements), "null")
        joined = pc.binary_join(pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), enc), ",")
        wrapped = pc.binary_join_element_wise("[", pc.fill_null(joined, ""), "]", "")
        return pc.if_else(pc.is_valid(values), wrapped, pa.scalar(None, pa.string())) if n else \
            pa.array([], pa.string())
    return pa.array([None if v is None else json.dumps(_plain(v), sort_keys=True, separators=(",", ":"),
                                                       ensure_ascii=False, default=str)
                     for v in values.to_pylist()], pa.string())


def as_text(values: pa.Array, policy_type: str) -> tuple[pa.Array, pa.Array | None]:
    """A landing array as strings for the parser: ``json`` columns as JSON text; a struct, list or map where a
    scalar is declared gives NULL and a flag (its row is quarantined: never stringified into a kept column).

    Returns:
        ``(text, shape_failed)``; ``shape_failed`` is ``None`` when no value had the wrong shape.
    """
    if policy_type == "json":
        return json_text(values), None
    if is_nested_type(values.type):
        return pa.nulls(len(values), pa.string()), pc.is_valid(values)
    if pa.types.is_string(values.type):
        return values, None
    if pa.types.is_null(values.type):
        return pa.nulls(len(values), pa.string()), None
    if pa.types.is_timestamp(values.type):
        values = values.cast(pa.timestamp("us", tz="UTC"))
        return pc.strftime(values, format="%Y-%m-%dT%H:%M:%SZ"), None  # %S carries the fraction
    return pc.cast(values, pa.string()), None


def json_structures(text: pa.Array) -> pa.Array | None:
    """True where a string is the JSON text of an object or array (``{...}``/``[...]`` that parses): what Spark's
    JSON reader gives for a key that holds an object in some records and a string in others. ``None`` when no
    value is one (the common case costs one regex pass)."""
    candidates = pc.fill_null(pc.match_substring_regex(text, r"^\s*(\{[\s\S]*\}|\[[\s\S]*\])\s*$"), False)
    if not pc.any(candidates).as_py():
        return None
    flags = np.zeros(len(text), dtype=bool)
    values = text.to_pylist()
    for i in np.flatnonzero(np.asarray(candidates, dtype=bool)):
        try:
            flags[i] = isinstance(json.loads(values[i]), (dict, list))
        except ValueError:
            flags[i] = False
    return pa.array(flags) if flags.any() else None


# ---------------------------------------------------------------------------------------------- navigation
def struct_children(values: pa.Array, names: list[str]) -> list[pa.Array]:
    """The named children of a struct array, with the struct's NULLs merged in (a missing field: all NULL)."""
    present = [values.type.field(i).name for i in range(values.type.num_fields)]
    flat = values.flatten()
    return [flat[present.index(n)] if n in present else pa.nulls(len(values)) for n in names]


def list_parts(values: pa.Array) -> tuple[pa.Array, NDArray[Any]]:
    """The elements of a list array (only those its rows reach) and its offsets rebased to 0."""
    if pa.types.is_fixed_size_list(values.type):
        values = values.cast(pa.list_(values.type.value_type))
    offsets = np.asarray(values.offsets).astype(np.int64)
    start, end = int(offsets[0]), int(offsets[-1])
    return values.values.slice(start, end - start), offsets - start


def pick(values: pa.Array, steps: tuple[nested.Step, ...]) -> pa.Array:
    """One value per row along a reference path (``[0].postalCode``); NULL where a step finds nothing."""
    for step in steps:
        if isinstance(step, nested.Field):
            if not pa.types.is_struct(values.type):
                return pa.nulls(len(values))
            values = struct_children(values, [step.name])[0]
        elif isinstance(step, nested.Index):
            if not (pa.types.is_list(values.type) or pa.types.is_large_list(values.type)):
                return pa.nulls(len(values))
            elements, offsets = list_parts(values)
            lengths = np.diff(offsets)
            ok = (lengths > step.i) & np.asarray(values.is_valid(), dtype=bool)
            idx = np.where(ok, offsets[:-1] + step.i, 0)
            taken = elements.take(pa.array(idx)) if len(elements) else pa.nulls(len(values), elements.type)
            values = pc.if_else(pa.array(ok), taken, pa.scalar(None, taken.type))
        else:  # pragma: no cover - the loader refuses [] in a reference
            raise ValueError("a reference picks one element: [N], not []")
    return values


# -------------------------------------------------------------------------------------------------- leaves
@dataclass(frozen=True)
class LeafPlan:
    """One declared leaf bound to its strategy."""

    path: str
    label: str
    spec: LeafSpec
    strategy: Strategy[Any]
    policy_type: str
    key_name: str | None
    key_version: int | None
    pattern: Callable[[pa.Array], pa.Array] | None


@dataclass
class _Walk:
    """The state of one column's pass over one batch."""

    failures: list[Failure]
    typed_rows: dict[str, pa.Array]
    check: Callable[..., pa.Array]
    mask: Callable[..., pa.Array]


class NestedColumn:
    """The pass of one struct or array column: its declared tree, each leaf's plan, and the bronze type.

    Args:
        name: the column.
        col: its declaration.
        make_leaf: ``(path, label, leaf spec) -> LeafPlan`` (the table plan binds strategies and keys).
    """

    def __init__(self, name: str, col: ColumnSpec, make_leaf: Callable[[str, str, LeafSpec], LeafPlan]) -> None:
        self.name = name
        self.spec = col
        self.tree = nested.column_tree(name, col)
        self.leaves = {lf.path: make_leaf(lf.path, nested.label(name, lf.path), lf.spec)
                       for lf in nested.leaves(self.tree)}
        self.type_tree = nested.output_tree(self.tree, {p: lp.policy_type for p, lp in self.leaves.items()})
        self.arrow = arrow_of(self.type_tree)
        self.ddl = types.ddl(self.type_tree)

    # --------------------------------------------------------------------------------------------- masking
    def process(self, values: pa.Array, typed: dict[str, pa.Array], failures: list[Failure],
                check: Callable[..., pa.Array], mask: Callable[..., pa.Array],
                malformed: pa.Array | None) -> pa.Array:
        """The column checked and masked leaf by leaf, rebuilt with its offsets and validity.

        Args:
            values: the landing array (any Arrow shape; the declared one is expected).
            typed: the checked flat columns of the batch (what a leaf strategy's ``needs_columns`` reads).
            check: ``(label, spec, text, pattern, failures) -> typed`` (the flat column's checks).
            mask: ``(label, strategy, out_type, values, others, failures) -> masked`` (the flat column's masking).
            malformed: rows the reader could not parse: their output is NULL.
        """
        n = len(values)
        if malformed is not None:
            values = pc.if_else(malformed, pa.scalar(None, values.type), values) if n else values
        rows = np.arange(n, dtype=np.int64)
        present = np.ones(n, dtype=bool)
        if self.spec.required:
            missing = np.flatnonzero(~np.asarray(values.is_valid(), dtype=bool))
            if malformed is not None:
                missing = missing[~np.asarray(malformed, dtype=bool)[missing]]
            failures.append((missing, self.name, "required", "required value is missing"))
        walk = _Walk(failures, typed, check, mask)
        return self._node(self.tree, values, rows, present, "", self.arrow, walk)

    def _node(self, node: nested.Node, values: pa.Array, rows: NDArray[Any], present: NDArray[Any], path: str,
              out_type: pa.DataType, w: _Walk) -> pa.Array:
        if isinstance(node, nested.Leaf):
            return self._leaf(self.leaves[node.path], values, rows, present, w)
        if isinstance(node, nested.StructNode):
            if not pa.types.is_struct(values.type):
                return self._wrong_shape(values, rows, path, "struct", out_type, w)
            valid = np.asarray(values.is_valid(), dtype=bool)
            names = list(node.fields)
            children = [self._node(child, arr, rows, present & valid, f"{path}.{name}", out_type.field(name).type, w)
                        for (name, child), arr in zip(node.fields.items(), struct_children(values, names))]
            return pa.StructArray.from_arrays(children, fields=list(out_type), mask=pa.array(~valid))
        if not (pa.types.is_list(values.type) or pa.types.is_large_list(values.type)
                or pa.types.is_fixed_size_list(values.type)):
            return self._wrong_shape(values, rows, path, "array", out_type, w)
        valid = np.asarray(values.is_valid(), dtype=bool)
        elements, offsets = list_parts(values)
        lengths = np.diff(offsets)
        assert node.element is not None
        inner = self._node(node.element, elements, np.repeat(rows, lengths), np.repeat(present & valid, lengths),
                           f"{path}[]", out_type.value_type, w)
        return pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), inner, type=out_type,
                                        mask=pa.array(~valid))

    def _wrong_shape(self, values: pa.Array, rows: NDArray[Any], path: str, wanted: str, out_type: pa.DataType,
                     w: _Walk) -> pa.Array:
        """A landing value whose shape is not the declared one: NULL, and its row quarantined (rule ``type``)."""
        bad = np.asarray(values.is_valid(), dtype=bool)
        if bad.any():
            w.failures.append((np.unique(rows[bad]), nested.label(self.name, path) or self.name, "type",
                               SHAPE_MESSAGE.format(found=_shape_name(values.type), wanted=f"a {wanted}")))
        return pa.nulls(len(values), out_type)

    def _leaf(self, lp: LeafPlan, values: pa.Array, rows: NDArray[Any], present: NDArray[Any], w: _Walk) -> pa.Array:
        local: list[Failure] = []
        text, shape = as_text(values, lp.spec.type)
        if shape is not None and pc.any(shape).as_py():
            local.append((np.flatnonzero(np.asarray(pc.fill_null(shape, False), dtype=bool)), lp.label, "type",
                          SHAPE_MESSAGE.format(found=_shape_name(values.type), wanted=f"a {lp.spec.type}")))
        checked = w.check(lp.label, lp.spec, text, lp.pattern, local)
        others = {c: w.typed_rows[c].take(pa.array(rows)) for c in lp.strategy.needs_columns(lp.strategy.params)}
        out = w.mask(lp.label, lp.strategy, arrow_type(lp.policy_type), checked, others, local)
        for idx, label, rule, message in local:
            if not len(idx):
                continue
            if rule == "required":  # only where the leaf's parent exists (an absent address has no postalCode)
                idx = idx[present[idx]]
            w.failures.append((np.unique(rows[idx]), label, rule, message))
        return out

    # --------------------------------------------------------------------------------------- other passes
    def texts(self, values: pa.Array, want: Callable[[LeafPlan], bool]) -> Iterator[tuple[str, pa.Array,
                                                                                         NDArray[Any]]]:
        """``(label, text, row of each element)`` of every leaf that ``want`` selects (the PHI scan)."""
        yield from self._texts(self.tree, values, np.arange(len(values), dtype=np.int64), want)

    def _texts(self, node: nested.Node, values: pa.Array, rows: NDArray[Any],
               want: Callable[[LeafPlan], bool]) -> Iterator[tuple[str, pa.Array, NDArray[Any]]]:
        if isinstance(node, nested.Leaf):
            lp = self.leaves[node.path]
            if want(lp) and not is_nested_type(values.type):
                yield lp.label, as_text(values, lp.spec.type)[0], rows
        elif isinstance(node, nested.StructNode):
            if pa.types.is_struct(values.type):
                for child, arr in zip(node.fields.values(), struct_children(values, list(node.fields))):
                    yield from self._texts(child, arr, rows, want)
        elif node.element is not None and (pa.types.is_list(values.type) or pa.types.is_large_list(values.type)):
            elements, offsets = list_parts(values)
            yield from self._texts(node.element, elements, np.repeat(rows, np.diff(offsets)), want)

    def canonical(self, values: pa.Array) -> pa.Array:
        """Each row's raw value of the declared leaves as one self-delimiting string (the row fingerprint's
        input): a leaf ``LEN:TEXT`` or ``-`` for NULL, a struct ``{...}`` of its declared fields in order, a list
        ``[...]`` of its elements. Fields the source lacks count as NULL, so the same record gives the same string
        whatever other records of its file hold."""
        return _canonical(self.tree, values, self.leaves)


def _framed(text: pa.Array) -> pa.Array:
    length = pc.cast(pc.binary_length(text), pa.string())
    return pc.fill_null(pc.binary_join_element_wise(length, text, ":"), "-")


def _wrap(inner: pa.Array, valid: pa.Array, left: str, right: str) -> pa.Array:
    n = len(inner)
    wrapped = pc.binary_join_element_wise(pa.array([left] * n, pa.string()), inner,
                                          pa.array([right] * n, pa.string()), "")
    return pc.if_else(valid, wrapped, pa.scalar("-", pa.string()))


def _canonical(node: nested.Node, values: pa.Array, leaves: dict[str, LeafPlan]) -> pa.Array:
    n = len(values)
    if isinstance(node, nested.Leaf):
        if is_nested_type(values.type) and leaves[node.path].spec.type != "json":
            return _wrap(_framed(json_text(values)), pc.is_valid(values), "!", "")
        return _framed(as_text(values, leaves[node.path].spec.type)[0])
    if isinstance(node, nested.StructNode):
        if not pa.types.is_struct(values.type):
            return _wrap(_framed(json_text(values) if is_nested_type(values.type) else as_text(values, "string")[0]),
                         pc.is_valid(values), "!", "")
        parts = [_canonical(c, a, leaves) for c, a in zip(node.fields.values(),
                                                           struct_children(values, list(node.fields)))]
        inner = pc.binary_join_element_wise(*parts, "") if len(parts) > 1 else parts[0]
        return _wrap(inner, pc.is_valid(values), "{", "}")
    if not (pa.types.is_list(values.type) or pa.types.is_large_list(values.type)) or node.element is None:
        text = json_text(values) if is_nested_type(values.type) else as_text(values, "string")[0]
        return _wrap(_framed(text), pc.is_valid(values), "!", "")
    elements, offsets = list_parts(values)
    inner = _canonical(node.element, elements, leaves)
    joined = pc.binary_join(pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), inner), "")
    return _wrap(pc.fill_null(joined, ""), pc.is_valid(values), "[", "]") if n else pa.array([], pa.string())


# ---------------------------------------------------------------------------------------- schema drift
def spark_tree(spark_type: Any) -> Any:
    """A Spark ``DataType.jsonValue()`` as nested Python: ``{"struct": [(name, tree), ...]}``, ``{"array": tree}``,
    ``{"map": ...}`` or a scalar type name."""
    if isinstance(spark_type, dict):
        kind = spark_type.get("type")
        if kind == "struct":
            return {"struct": [(f["name"], spark_tree(f["type"])) for f in spark_type.get("fields", [])]}
        if kind == "array":
            return {"array": spark_tree(spark_type.get("elementType"))}
        if kind == "map":
            return {"map": True}
    return spark_type


def undeclared_fields(name: str, col: ColumnSpec, source: Any, hasher: NameHasher) -> list[str]:
    """The struct fields the source has below a nested column and the policy does not declare, as labels
    ``COLUMN.PATH.#POSITION h:HASH`` (the parent's path is the policy's; the field by its 1-based position in its
    struct and a keyed hash of its name, never the name, which may itself be PHI).

    Args:
        source: the column's type as :func:`spark_tree` gives it.
    """
    out: list[str] = []
    _undeclared(nested.column_tree(name, col), source, name, hasher, out)
    return out


def _undeclared(node: nested.Node, source: Any, path: str, hasher: NameHasher, out: list[str]) -> None:
    if isinstance(node, nested.Leaf) or not isinstance(source, dict):
        return
    if isinstance(node, nested.StructNode) and "struct" in source:
        fields = source["struct"]
        for position, (fname, ftype) in enumerate(fields, start=1):
            if fname in node.fields:
                _undeclared(node.fields[fname], ftype, f"{path}.{fname}", hasher, out)
            else:
                out.append(f"{path}.{hasher.column_label(fname, position)}")
    elif isinstance(node, nested.ListNode) and "array" in source and node.element is not None:
        _undeclared(node.element, source["array"], f"{path}[]", hasher, out)
