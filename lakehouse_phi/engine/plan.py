"""A table's policy compiled into one fused pass over an Arrow RecordBatch: parse -> check -> mask.

This is the engine the Spark binding runs inside ``mapInArrow`` (one Python pass over all columns of a table, one
Arrow batch at a time) and that tests and benchmarks run directly, without Spark. Like DQX's
``apply_checks_and_split``, every row comes out once, with a structured ``_phi_errors`` list: empty for a bronze
row, one ``{column, rule, message}`` per failure for a quarantined one. A value that failed a check is never
emitted: its outputs are NULL, and the reason names the column and rule, never the value.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from lakehouse_phi.engine.drift import CORRUPT_COL
from lakehouse_phi.engine.names import NameHasher
from lakehouse_phi.engine.nested import (
    SHAPE_MESSAGE,
    LeafPlan,
    NestedColumn,
    as_text,
    is_nested_type,
    json_structures,
    json_text,
    pick,
)
from lakehouse_phi.engine.types import arrow_type, in_range, parse, spark_ddl
from lakehouse_phi.errors import KeyMaterialError
from lakehouse_phi.keys.providers import KeyKind, KeyRing
from lakehouse_phi.policy import columns
from lakehouse_phi.policy.load import LoadedPolicy
from lakehouse_phi.policy.model import ColumnSpec, IngestRule, LeafSpec, TableSpec
from lakehouse_phi.policy.nested import Step, leaf_at, split_reference
from lakehouse_phi.transforms import registry
from lakehouse_phi.transforms.base import ColumnContext, Strategy
from lakehouse_phi.transforms.scrub_text import ScrubText

log = logging.getLogger(__name__)

ERRORS_COL = columns.ERRORS
SOURCE_FILE_COL = columns.SOURCE_FILE
ERROR_TYPE = pa.struct([("column", pa.string()), ("rule", pa.string()), ("message", pa.string())])
ERRORS_FIELD = pa.field(ERRORS_COL, pa.list_(ERROR_TYPE))
ERRORS_DDL = f"{ERRORS_COL} array<struct<column:string,rule:string,message:string>>"
#: A check or strategy that failed on some rows: (row indexes, column, rule, message).
Failure = tuple[NDArray[Any], str, str, str]
#: The ``_phi_errors`` entry of a row that did not parse as a record of its file (field count, quoting): every
#: output of the row is NULL, so no shifted raw value reaches quarantine.
MALFORMED = ("_row", "malformed_row", "the row did not parse as one record of its file's header (field count or "
                                      "quoting); every value of the row is withheld")


@dataclass(frozen=True)
class OutputColumn:
    """One bronze column: ``source`` masked by ``strategy`` into ``name`` of ``policy_type``."""

    name: str
    source: str
    strategy: Strategy[Any]
    policy_type: str
    key_name: str | None
    key_version: int | None


def key_needs(table: TableSpec) -> list[tuple[str, KeyKind]]:
    """The keys (name, kind) a table's strategies need, known before any data is read."""
    needs: list[tuple[str, KeyKind]] = []
    for col in table.columns.values():
        for rule in (*col.ingest_rules(), *col.derive.values()):
            cls = registry.get(rule.strategy)
            if cls.key_kind and "key" in rule.params:
                needs.append((rule.params["key"], cls.key_kind))
    fingerprint = table.fingerprint_key_name
    if fingerprint:  # hashes _source_file and undeclared column names
        needs.append((fingerprint, "hmac"))
    return needs


def name_hasher(table: TableSpec, keys: KeyRing) -> NameHasher:
    """The keyed hasher of names (undeclared columns, file paths) of a table: under its fingerprint key."""
    fingerprint = table.fingerprint_key_name
    if fingerprint and fingerprint in keys:
        return NameHasher(keys[fingerprint].material)
    return NameHasher(None)


def _pattern_checker(pattern: str) -> Callable[[pa.Array], pa.Array]:
    """Vectorized with RE2 (pyarrow) when the pattern is RE2-compatible, else Python ``re`` per value."""
    try:
        pc.match_substring_regex(pa.array(["x"]), pattern)
        return lambda values: pc.match_substring_regex(values, pattern)
    except pa.ArrowInvalid:
        compiled = re.compile(pattern)
        return lambda values: pa.array([None if v is None else bool(compiled.search(v)) for v in values.to_pylist()],
                                       pa.bool_())


class TablePlan:
    """The fused parse/check/mask function of one policy table, bound to its keys.

    Args:
        loaded: the checked policy.
        table: the entry name under ``tables:``.
        keys: resolved key material (see :func:`key_needs` and :func:`lakehouse_phi.keys.load_keys`).
    """

    def __init__(self, loaded: LoadedPolicy, table: str, keys: KeyRing,
                 rosters: Mapping[str, Sequence[str | None]] | None = None, *,
                 prepared: Mapping[str, Any] | None = None) -> None:
        self.loaded = loaded
        self.table = table
        self._keys = keys
        #: output column -> its prepared ``scrub_text`` roster (``known:``), shipped with the plan to executors
        self._rosters: dict[str, Any] = {}
        self._roster_input = rosters or {}
        self._prepared = prepared or {}
        self.spec = loaded.policy.tables[table]
        #: derived outputs that read one leaf: reference -> (column, steps, leaf spec)
        self._picks: dict[str, tuple[str, tuple[Step, ...], LeafSpec]] = {}
        self.input_columns = list(self.spec.columns)
        self._patterns = {c: _pattern_checker(s.pattern) for c, s in self.spec.columns.items()
                          if s.pattern and not s.nested}
        self.outputs: list[OutputColumn] = []
        #: struct and array columns, masked leaf by leaf (:mod:`lakehouse_phi.engine.nested`)
        self.nested: dict[str, NestedColumn] = {}
        #: every bronze column in order: a flat or derived output, or a nested column
        self.columns_out: list[OutputColumn | NestedColumn] = []
        self._table_phi = tuple((c, s.phi) for c, s in self.spec.columns.items())
        for cname, col in self.spec.columns.items():
            if col.nested:
                nc = NestedColumn(cname, col, functools.partial(self._leaf_plan, cname))
                self.nested[cname] = nc
                self.columns_out.append(nc)
            rules = ([] if col.nested else [(cname, col.effective_ingest)]) + list(col.derive.items())
            for out_name, rule in rules:
                source_spec: LeafSpec = col
                source = cname
                if rule.source is not None:  # derive from a leaf: address[0].postalCode
                    _, steps = split_reference(rule.source)
                    found = leaf_at(self.nested[cname].tree, steps)
                    assert found is not None  # the loader checked it
                    source_spec, source = found.spec, rule.source
                    self._picks[source] = (cname, steps, found.spec)
                out = self._output(cname, out_name, source, source_spec, rule)
                self.outputs.append(out)
                self.columns_out.append(out)
        self.output_schema = pa.schema([pa.field(o.name, o.arrow if isinstance(o, NestedColumn)
                                                 else arrow_type(o.policy_type)) for o in self.columns_out])
        fingerprint = self.spec.fingerprint_key_name
        if self.spec.source_file == "hash" and fingerprint and fingerprint not in keys:
            raise KeyMaterialError(f"tables.{table}: _source_file is hashed under the fingerprint key "
                                   f"'{fingerprint}', which was not resolved; resolve the keys of key_needs()")
        #: hashes _source_file (source_file: hash); without a fingerprint key the column is NULL, never the path
        self.names = name_hasher(self.spec, keys)

    def _bound(self, out_name: str, source: str, spec: LeafSpec,
               rule: IngestRule) -> tuple[Strategy[Any], str, str | None, int | None]:
        """``rule``'s strategy bound to its parameters, context and key: (strategy, output type, key name, version)."""
        cls = registry.get(rule.strategy)
        params = cls.params_model.model_validate(rule.params)
        key_name = getattr(params, "key", None) if cls.key_kind else None
        key = self._keys[key_name] if key_name else None
        ctx = ColumnContext(table=self.table, column=out_name, source_column=source, input_type=spec.value_type,
                            phi=spec.phi, table_phi=self._table_phi)
        strategy = cls(params, ctx, key.material if key else None)
        if isinstance(strategy, ScrubText) and strategy.params.known:
            place = f"tables.{self.table}.columns.{source}." + ("ingest" if out_name == source
                                                                else f"derive.{out_name}")
            roster = self._prepared.get(out_name)
            if roster is None:
                roster = strategy.prepare_roster(_roster_values(self.loaded, strategy.params.known, self._roster_input,
                                                                place))
            strategy.roster = roster
            self._rosters[out_name] = roster
        return (strategy, cls.output_type(params, spec.value_type), key_name, key.version if key else None)

    def _output(self, cname: str, out_name: str, source: str, spec: LeafSpec, rule: IngestRule) -> OutputColumn:
        strategy, out_type, key_name, version = self._bound(out_name, source, spec, rule)
        return OutputColumn(name=out_name, source=source, strategy=strategy, policy_type=out_type,
                            key_name=key_name, key_version=version)

    def _leaf_plan(self, cname: str, path: str, label: str, spec: LeafSpec) -> LeafPlan:
        """A leaf's strategy: ``encrypt`` binds ``<table>.<column><path>`` (``patient.telecom[].value``)."""
        strategy, out_type, key_name, version = self._bound(label, cname, spec, spec.effective_ingest)
        return LeafPlan(path=path, label=label, spec=spec, strategy=strategy, policy_type=out_type,
                        key_name=key_name, key_version=version,
                        pattern=_pattern_checker(spec.pattern) if spec.pattern else None)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle as (policy, table, keys, prepared rosters) and rebuild on the executor: strategies hold
        precomputed cipher and HMAC states that cannot be pickled (and need not be shipped); rosters travel as
        their folded keys (broadcast with the plan)."""
        return (_rebuild_plan, (self.loaded, self.table, self._keys, self._rosters))

    def __repr__(self) -> str:
        return f"TablePlan(table={self.table!r}, outputs={[o.name for o in self.outputs]})"

    # ------------------------------------------------------------------------------------------------ schema
    def result_schema(self, passthrough: Iterable[str] = ()) -> pa.Schema:
        fields = list(self.output_schema) + [ERRORS_FIELD]
        fields += [pa.field(p, pa.string()) for p in passthrough]
        return pa.schema(fields)

    def result_ddl(self, passthrough: Iterable[str] = ()) -> str:
        """The Spark DDL schema of :meth:`process` output (for ``mapInArrow``)."""
        cols = [f"`{o.name}` {o.ddl if isinstance(o, NestedColumn) else spark_ddl(o.policy_type)}"
                for o in self.columns_out]
        cols.append(ERRORS_DDL)
        cols += [f"`{p}` string" for p in passthrough]
        return ", ".join(cols)

    def column_report(self) -> dict[str, dict[str, Any]]:
        """Per output column ``{strategy, key_version}`` for the audit event (names and versions, never keys)."""
        out = {o.name: {"strategy": o.strategy.name, "key_version": o.key_version} for o in self.outputs}
        for nc in self.nested.values():
            out.update({lp.label: {"strategy": lp.strategy.name, "key_version": lp.key_version}
                        for lp in nc.leaves.values()})
        return out

    def key_versions(self) -> dict[str, int]:
        """Output column (or leaf label) -> key version, for every keyed output."""
        out = {o.name: o.key_version for o in self.outputs if o.key_version is not None}
        for nc in self.nested.values():
            out.update({lp.label: lp.key_version for lp in nc.leaves.values() if lp.key_version is not None})
        return out

    # ------------------------------------------------------------------------------------------------ process
    def process(self, batch: pa.RecordBatch | pa.Table) -> pa.RecordBatch:
        """Parse, check and mask one batch. Never raises on a value: a value that cannot be parsed or masked (or
        that is longer than its column's ``max_length``) quarantines its row with a reason naming the column and
        rule, never the value nor the engine's error text (the error class at most).

        Besides the declared columns, the batch may carry ``_corrupt_record`` (the reader's parse failure: non-NULL
        makes the row ``malformed_row`` with every output NULL; never emitted) and ``_source_file`` (emitted as a
        keyed hash unless the table declares ``source_file: path``)."""
        failures: list[Failure] = []
        malformed = _malformed(batch)
        typed = {cname: self._checked(cname, col, _column(batch, cname), malformed, failures)
                 for cname, col in self.spec.columns.items() if not col.nested}
        for ref, (cname, steps, spec) in self._picks.items():  # derive from a leaf: checked again, reasons once
            picked = _rows_null_where(malformed, pick(_column(batch, cname), steps))
            typed[ref] = check_values(ref, spec, as_text(picked, spec.type)[0], None, [])
        columns = []
        for out in self.columns_out:
            if isinstance(out, NestedColumn):
                columns.append(out.process(_column(batch, out.name), typed, failures, check_values, mask_values,
                                           malformed))
            else:
                columns.append(self._masked(out, typed, malformed, failures))
        if malformed is not None:
            keep = pc.invert(malformed).to_numpy(zero_copy_only=False)  # a malformed row gets one reason only
            failures = [(rows[keep[rows]] if len(rows) else rows, c, r, m) for rows, c, r, m in failures]
            failures.insert(0, (_rows(malformed), *MALFORMED))
        columns.append(_errors_array(batch.num_rows, failures))
        out_names = [o.name for o in self.columns_out] + [ERRORS_COL]
        if SOURCE_FILE_COL in batch.schema.names:
            src = _column(batch, SOURCE_FILE_COL)
            columns.append(src.cast(pa.string()) if self.spec.source_file == "path" else self.names.file_hashes(src))
            out_names.append(SOURCE_FILE_COL)
        return pa.RecordBatch.from_arrays(columns, names=out_names)

    def _checked(self, cname: str, col: ColumnSpec, raw: pa.Array, malformed: pa.Array | None,
                 failures: list[Failure]) -> pa.Array:
        """One flat input column parsed to its type and checked (see :func:`check_values`); a ``json`` column's
        value is its JSON text; a struct or list where a scalar is declared quarantines its row (rule ``type``)."""
        text, shape = as_text(raw, col.type)
        if shape is not None and pc.any(shape).as_py():
            failures.append((_rows(shape), cname, "type", SHAPE_MESSAGE.format(
                found="struct" if pa.types.is_struct(raw.type) else "array or map", wanted=f"a {col.type}")))
        elif self.spec.source.format == "json" and col.type != "json" and pa.types.is_string(raw.type):
            structured = json_structures(text)
            if structured is not None:  # Spark reads a key that is an object in some records as their JSON text
                failures.append((_rows(structured), cname, "type", SHAPE_MESSAGE.format(
                    found="JSON object or array", wanted=f"a {col.type}")))
                text = pc.if_else(structured, pa.scalar(None, pa.string()), text)
        return check_values(cname, col, _rows_null_where(malformed, text), self._patterns.get(cname), failures)

    def _masked(self, out: OutputColumn, typed: dict[str, pa.Array], malformed: pa.Array | None,
                failures: list[Failure]) -> pa.Array:
        """One output column: its strategy over the checked input (see :func:`mask_values`)."""
        out_type = self.output_schema.field(out.name).type
        others = {c: typed[c] for c in out.strategy.needs_columns(out.strategy.params)}
        result = mask_values(out.source, out.strategy, out_type, typed[out.source], others, failures, out.name)
        return _rows_null_where(malformed, result)

    def process_iter(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        """The ``mapInArrow`` function body."""
        for batch in batches:
            if batch.num_rows:
                yield self.process(batch)


def check_values(label: str, col: LeafSpec, raw: pa.Array, pattern: Callable[[pa.Array], pa.Array] | None,
                 failures: list[Failure]) -> pa.Array:
    """Landing strings parsed to ``col``'s type and checked (``max_length``, type, ``required``, ``pattern``): a
    value that fails a check becomes NULL and its position gets a failure ``(positions, label, rule, message)``.
    The same for a flat column (positions are rows) and a leaf (positions are elements)."""
    if not pa.types.is_string(raw.type):
        raw = raw.cast(pa.string())
    too_long = pc.fill_null(pc.greater(pc.utf8_length(raw), col.effective_max_length), False)
    if pc.any(too_long).as_py():
        failures.append((_rows(too_long), label, "max_length",
                         f"longer than the column's max_length ({col.effective_max_length} characters)"))
        raw = pc.if_else(too_long, pa.scalar(None, pa.string()), raw)
    vtype = col.value_type
    values, failed = _guarded(lambda a, t=vtype: parse(a, t), (raw,), arrow_type(vtype), failures,
                              label, "type", "cannot be parsed as " + vtype)
    bad = failed
    if vtype != "string":
        failures.append((_rows(failed), label, "type", f"not a valid {vtype}"))
    if col.required:
        missing = pc.is_null(values) if vtype == "string" else pc.and_(pc.is_null(values), pc.invert(failed))
        missing = pc.and_(missing, pc.invert(too_long))
        failures.append((_rows(missing), label, "required", "required value is missing"))
    if pattern is not None:
        text = values if vtype == "string" else pc.cast(raw, pa.string())
        mismatch = pc.invert(pc.fill_null(pattern(text), True))
        mismatch = pc.and_(mismatch, pc.is_valid(text))
        failures.append((_rows(mismatch), label, "pattern", "does not match the declared pattern"))
        bad = pc.or_(bad, mismatch)
    if pc.any(bad).as_py():
        values = pc.if_else(bad, pa.scalar(None, values.type), values)
    return values


def mask_values(label: str, strategy: Strategy[Any], out_type: pa.DataType, values: pa.Array,
                others: dict[str, pa.Array], failures: list[Failure], into: str | None = None) -> pa.Array:
    """``strategy`` over checked values (value by value if the whole array raises); a value the strategy refuses,
    or whose result is out of its type's range, becomes NULL and its position gets a failure."""
    result, invalid = _guarded(functools.partial(_mask_values, strategy, out_type), (values, others), out_type,
                               failures, label, "error", f"{strategy.name} failed on this value")
    failures.append((_rows(invalid), label, strategy.name,
                     f"value cannot be masked by {strategy.name} into {into or label}"))
    return result


def _rows_null_where(malformed: pa.Array | None, values: pa.Array) -> pa.Array:
    """``values`` with NULL in the rows the reader could not parse."""
    if malformed is None or not len(values):
        return values
    return pc.if_else(malformed, pa.scalar(None, values.type), values)


def _rebuild_plan(loaded: LoadedPolicy, table: str, keys: KeyRing, prepared: Mapping[str, Any]) -> TablePlan:
    return TablePlan(loaded, table, keys, prepared=prepared)


def roster_refs(loaded: LoadedPolicy, table: str) -> list[str]:
    """Every ``table.column`` that the ``scrub_text`` rules of ``table`` name under ``known:`` (sorted)."""
    refs: set[str] = set()
    for col in loaded.policy.tables[table].columns.values():
        for rule in (col.effective_ingest, *col.derive.values()):
            refs.update(rule.params.get("known") or ())
    return sorted(refs)


def _roster_values(loaded: LoadedPolicy, refs: Sequence[str], rosters: Mapping[str, Sequence[str | None]],
                   place: str) -> list[tuple[str | None, Sequence[str | None]]]:
    """(phi category, values) of each roster a rule names; fail closed when one was not loaded."""
    missing = [r for r in refs if r not in rosters]
    if missing:
        raise ValueError(f"{place}.known: the roster(s) {missing} were not loaded; pass rosters= with the values of "
                         f"every table.column of roster_refs() (read from those tables' sources)")
    out = []
    for ref in refs:
        other_table, _, other_col = ref.rpartition(".")
        out.append((loaded.policy.tables[other_table].columns[other_col].phi, rosters[ref]))
    return out


def _malformed(batch: pa.RecordBatch | pa.Table) -> pa.Array | None:
    """Rows the reader could not parse (``_corrupt_record`` set), or ``None`` when there are none."""
    if CORRUPT_COL not in batch.schema.names:
        return None
    malformed = pc.is_valid(_column(batch, CORRUPT_COL))
    return malformed if pc.any(malformed).as_py() else None


def _mask_values(strategy: Strategy[Any], out_type: pa.DataType, values: pa.Array,
                 others: dict[str, pa.Array]) -> tuple[pa.Array, pa.Array]:
    """``strategy`` over ``values`` as ``out_type``; returns (result, flags of the values it could not mask)."""
    invalid = strategy.invalid(values)
    invalid = pa.array(np.zeros(len(values), dtype=bool)) if invalid is None else pc.fill_null(invalid, False)
    if pc.any(invalid).as_py():
        values = pc.if_else(invalid, pa.scalar(None, values.type), values)
    result = strategy.apply(values, others)
    if isinstance(result, pa.ChunkedArray):
        result = result.combine_chunks()
    result = result.cast(out_type)
    outside = pc.invert(pc.fill_null(in_range(result), True))  # e.g. a date shifted past 9999-12-31
    if pc.any(outside).as_py():
        result = pc.if_else(outside, pa.scalar(None, out_type), result)
        invalid = pc.or_(invalid, outside)
    return result, invalid


def _column(batch: pa.RecordBatch | pa.Table, name: str) -> pa.Array:
    col = batch.column(name)
    return col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col


def _guarded(fn: Callable[..., tuple[pa.Array, pa.Array]], args: tuple[Any, ...], out_type: pa.DataType,
             failures: list[Failure], column: str, rule: str,
             message: str) -> tuple[pa.Array, pa.Array]:
    """``fn(*args) -> (values, flags)`` on whole arrays (each arg an array, or a dict of arrays); if it raises (a
    poison value: an FF1 input of thousands of digits, a date that overflows), again value by value: the values it
    raises on become NULL, with a failure ``(column, rule, message (ErrorClass))``. The exception's text (which may
    quote the value) is never kept."""
    try:
        return fn(*args)
    except Exception as exc:  # noqa: BLE001 - any per-value failure must quarantine its row, not kill the batch
        log.debug("%s of %s failed on a batch (%s); retrying value by value", rule, column, type(exc).__name__)
    values: list[pa.Array] = []
    flags: list[bool] = []
    errors: dict[str, list[int]] = {}
    for i in range(len(args[0])):
        one = tuple({k: v.slice(i, 1) for k, v in a.items()} if isinstance(a, dict) else a.slice(i, 1) for a in args)
        try:
            v, f = fn(*one)
            values.append(v.cast(out_type))
            flags.append(bool(f[0].as_py()))
        except Exception as exc:  # noqa: BLE001 - the class is kept, never the text
            values.append(pa.nulls(1, out_type))
            flags.append(False)
            errors.setdefault(type(exc).__name__, []).append(i)
    for cls, rows in errors.items():
        failures.append((np.array(rows, dtype=np.int64), column, rule, f"{message} ({cls})"))
    return (pa.concat_arrays(values) if values else pa.nulls(0, out_type)), pa.array(flags, pa.bool_())


def _rows(mask: pa.Array) -> NDArray[Any]:
    """Indexes where ``mask`` is True (NULL counts as False)."""
    return np.flatnonzero(pc.fill_null(mask, False).to_numpy(zero_copy_only=False))


def _errors_array(n: int, failures: list[Failure]) -> pa.Array:
    """A ``list<struct<column, rule, message>>`` with one entry per failure, in policy order within a row."""
    failures = [f for f in failures if len(f[0])]
    if not failures:
        return pa.array([[]] * n, pa.list_(ERROR_TYPE)) if n < 64 else _empty_lists(n)
    offsets, which = _by_row(n, [f[0] for f in failures])
    dictionary = [(f[1], f[2], f[3]) for f in failures]
    structs = pa.StructArray.from_arrays(
        [pa.array([dictionary[w][k] for w in which], pa.string()) for k in range(3)],
        fields=list(ERROR_TYPE))
    return pa.ListArray.from_arrays(pa.array(offsets), structs)


def _by_row(n: int, rows_of: list[NDArray[Any]]) -> tuple[NDArray[Any], NDArray[Any]]:
    """Entries that each hold some of ``n`` rows, gathered per row: the list offsets (``n + 1``) and, element by
    element, the entry it comes from (rows in order, entries in the order given within a row)."""
    rows = np.concatenate(rows_of)
    which = np.concatenate([np.full(len(r), i, dtype=np.int32) for i, r in enumerate(rows_of)])
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.add.at(offsets, rows + 1, 1)
    return np.cumsum(offsets, dtype=np.int32), which[np.lexsort((which, rows))]


def _empty_lists(n: int) -> pa.Array:
    structs = pa.StructArray.from_arrays([pa.array([], pa.string())] * 3, fields=list(ERROR_TYPE))
    return pa.ListArray.from_arrays(pa.array(np.zeros(n + 1, dtype=np.int32)), structs)


# ------------------------------------------------------------------------------------ ingest bookkeeping columns
#: Keyed HMAC-SHA256 (hex) over the canonical encoding of a row's raw declared values (see :func:`row_messages`).
FINGERPRINT_COL = columns.FINGERPRINT
#: Per row, ``column:detector`` for every PHI-looking value in a non-PHI column (tallied, then dropped).
SCAN_COL = columns.SCAN_HITS
#: The detectors that the scan of non-PHI columns applies (RE2 patterns, evaluated inside the fused pass).
SCAN_DETECTORS = ("ssn", "email", "phone")
#: ``bronze_mode: latest``: the raw source file and row position, carried through the pass only to order versions
#: of one key (the writers drop them; they are never written).
ORDER_FILE_COL, ORDER_POS_COL = columns.ORDER_FILE, columns.ORDER_POS


def _scanned(spec: LeafSpec) -> bool:
    """A non-PHI string (or json) value kept raw: scanned for PHI-looking text."""
    return spec.phi is None and spec.value_type == "string" and spec.effective_ingest.strategy == "keep"


def scan_columns(table: TableSpec) -> list[str]:
    """Non-PHI string columns kept raw, and non-PHI string leaves kept raw (by label, ``name[].use``): the ones
    whose values are scanned for PHI-looking text."""
    if table.phi_scan.sample_rows == 0:
        return []
    out = []
    for c, s in table.columns.items():
        if s.fields:
            out += [c + path for path, leaf in s.fields.items() if _scanned(leaf)]
        elif s.nested:  # array<string>: every element
            out += [c + "[]"] if _scanned(s) else []
        elif _scanned(s):
            out.append(c)
    return out


def row_messages(batch: pa.RecordBatch | pa.Table, columns: list[str],
                 nested: dict[str, NestedColumn] | None = None) -> list[bytes]:
    """The canonical encoding of each row's raw values of ``columns``: per column, ``-`` for NULL, else the UTF-8
    length in decimal, ``:``, and the UTF-8 bytes (self-delimiting, so no two rows encode alike); a nested column
    by :meth:`NestedColumn.canonical`, a struct or list value of a flat column by its JSON text."""
    out: list[bytes] = row_message_array(batch, columns, nested).cast(pa.binary()).to_pylist()
    return out


def row_message_array(batch: pa.RecordBatch | pa.Table, columns: list[str],
                      nested: dict[str, NestedColumn] | None = None) -> pa.Array:
    """:func:`row_messages` as one Arrow ``string``/``binary`` array (never NULL), which the fingerprint's keyed
    hash reads without a Python object per row."""
    parts = []
    nested = nested or {}
    for name in columns:
        raw = batch.column(name)
        raw = raw.combine_chunks() if isinstance(raw, pa.ChunkedArray) else raw
        if name in nested:
            parts.append(nested[name].canonical(raw))
            continue
        text = raw if pa.types.is_string(raw.type) else (json_text(raw) if is_nested_type(raw.type)
                                                        else pc.cast(raw, pa.string()))
        length = pc.cast(pc.binary_length(text), pa.string())
        framed = pc.binary_join_element_wise(length, text, ":")
        parts.append(pc.fill_null(framed, "-"))
    if not parts:
        return pa.array([b""] * batch.num_rows, pa.binary())
    joined = pc.binary_join_element_wise(*parts, "") if len(parts) > 1 else parts[0]
    return joined.combine_chunks() if isinstance(joined, pa.ChunkedArray) else joined


class IngestPlan:
    """:class:`TablePlan` plus what the ingest job adds to every row in the same pass: ``_row_fingerprint`` and
    the PHI scan of non-PHI columns (``_phi_scan_hits``), so nothing needs a second read of the source."""

    def __init__(self, plan: TablePlan) -> None:
        self.plan = plan
        self.spec = plan.spec
        self.scan_columns = scan_columns(plan.spec)
        self._scan_flat = [c for c in self.scan_columns if c in plan.spec.columns]
        self._scan_set = frozenset(self.scan_columns)
        fp = plan.spec.fingerprint_key_name
        if fp is None:
            raise ValueError(f"tables.{plan.table}: no key for _row_fingerprint; set fingerprint_key")
        self.fingerprint_key = fp
        self._fingerprint_key = plan._keys[fp]
        self._mac: Any = None
        self.ordered = plan.spec.bronze_mode == "latest"

    def __reduce__(self) -> tuple[Any, ...]:
        return (IngestPlan, (self.plan,))

    def __repr__(self) -> str:
        return f"IngestPlan({self.plan!r})"

    @property
    def fingerprint_key_version(self) -> int:
        return self._fingerprint_key.version

    def result_ddl(self, passthrough: Iterable[str] = ()) -> str:
        ddl = self.plan.result_ddl(passthrough) + f", `{FINGERPRINT_COL}` string, `{SCAN_COL}` array<string>"
        return ddl + (f", `{ORDER_FILE_COL}` string, `{ORDER_POS_COL}` bigint" if self.ordered else "")

    def fingerprints(self, batch: pa.RecordBatch | pa.Table) -> pa.Array:
        if self._mac is None:
            from lakehouse_phi.transforms.hmac import HmacSha256

            self._mac = HmacSha256(self._fingerprint_key.material)
        out: pa.Array = self._mac.hex_arrow(row_message_array(batch, self.plan.input_columns, self.plan.nested))
        return out

    def scan_hits(self, batch: pa.RecordBatch | pa.Table) -> pa.Array:
        """``list<string>`` of ``column:detector`` per row (empty for most rows)."""
        from lakehouse_phi.transforms import detectors

        n = batch.num_rows
        hits: list[tuple[NDArray[Any], str]] = []
        names = batch.schema.names
        malformed = pc.is_valid(batch.column(CORRUPT_COL)) if CORRUPT_COL in names else None
        for c in self._scan_flat:
            raw = batch.column(c)
            raw = raw.combine_chunks() if isinstance(raw, pa.ChunkedArray) else raw
            text = as_text(raw, self.spec.columns[c].type)[0]  # a struct in a scalar column: quarantined, not scanned
            if malformed is not None:  # a row that did not parse is quarantined whole: its shifted text is no finding
                text = pc.if_else(malformed, pa.scalar(None, pa.string()), text)
            for kind in SCAN_DETECTORS:
                hits.append((_rows(pc.match_substring_regex(text, detectors.PATTERNS[kind])), f"{c}:{kind}"))
        for nc in self.plan.nested.values():  # string leaves of non-PHI fields, element by element
            raw = _column(batch, nc.name)
            if malformed is not None:
                raw = pc.if_else(malformed, pa.scalar(None, raw.type), raw)
            for label, text, rows in nc.texts(raw, lambda lp: lp.label in self._scan_set):
                for kind in SCAN_DETECTORS:
                    found = rows[_rows(pc.match_substring_regex(text, detectors.PATTERNS[kind]))]
                    hits.append((np.unique(found), f"{label}:{kind}"))
        hits = [h for h in hits if len(h[0])]
        if not hits:
            return pa.ListArray.from_arrays(pa.array(np.zeros(n + 1, dtype=np.int32)), pa.array([], pa.string()))
        offsets, which = _by_row(n, [h[0] for h in hits])
        labels = pa.array([hits[w][1] for w in which], pa.string())
        return pa.ListArray.from_arrays(pa.array(offsets), labels)

    def process(self, batch: pa.RecordBatch | pa.Table) -> pa.RecordBatch:
        out = self.plan.process(batch)
        columns = [*out.columns, self.fingerprints(batch), self.scan_hits(batch)]
        names = [*out.schema.names, FINGERPRINT_COL, SCAN_COL]
        if self.ordered:
            for name in (ORDER_FILE_COL, ORDER_POS_COL):
                columns.append(_column(batch, name))
                names.append(name)
        return pa.RecordBatch.from_arrays(columns, names=names)

    def process_iter(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        """The ``mapInArrow`` function body of the ingest pass."""
        for batch in batches:
            if batch.num_rows:
                yield self.process(batch)
