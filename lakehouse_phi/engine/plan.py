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
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from lakehouse_phi.engine.drift import CORRUPT_COL
from lakehouse_phi.engine.names import NameHasher
from lakehouse_phi.engine.types import arrow_type, in_range, parse, spark_ddl
from lakehouse_phi.errors import KeyMaterialError
from lakehouse_phi.keys.providers import KeyKind, KeyRing
from lakehouse_phi.policy.load import LoadedPolicy
from lakehouse_phi.policy.model import ColumnSpec, TableSpec
from lakehouse_phi.transforms import registry
from lakehouse_phi.transforms.base import ColumnContext, Strategy

log = logging.getLogger(__name__)

ERRORS_COL = "_phi_errors"
SOURCE_FILE_COL = "_source_file"
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
        for rule in (col.effective_ingest, *col.derive.values()):
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

    def __init__(self, loaded: LoadedPolicy, table: str, keys: KeyRing) -> None:
        self.loaded = loaded
        self.table = table
        self._keys = keys
        self.spec = loaded.policy.tables[table]
        self.input_columns = list(self.spec.columns)
        self._patterns = {c: _pattern_checker(s.pattern) for c, s in self.spec.columns.items() if s.pattern}
        self.outputs: list[OutputColumn] = []
        table_phi = tuple((c, s.phi) for c, s in self.spec.columns.items())
        for cname, col in self.spec.columns.items():
            for out_name, rule in ((cname, col.effective_ingest), *col.derive.items()):
                cls = registry.get(rule.strategy)
                params = cls.params_model.model_validate(rule.params)
                key_name = getattr(params, "key", None) if cls.key_kind else None
                key = keys[key_name] if key_name else None
                ctx = ColumnContext(table=table, column=out_name, source_column=cname, input_type=col.type,
                                    phi=col.phi, table_phi=table_phi)
                self.outputs.append(OutputColumn(
                    name=out_name, source=cname, strategy=cls(params, ctx, key.material if key else None),
                    policy_type=cls.output_type(params, col.type), key_name=key_name,
                    key_version=key.version if key else None))
        self.output_schema = pa.schema([pa.field(o.name, arrow_type(o.policy_type)) for o in self.outputs])
        fingerprint = self.spec.fingerprint_key_name
        if self.spec.source_file == "hash" and fingerprint and fingerprint not in keys:
            raise KeyMaterialError(f"tables.{table}: _source_file is hashed under the fingerprint key "
                                   f"'{fingerprint}', which was not resolved; resolve the keys of key_needs()")
        #: hashes _source_file (source_file: hash); without a fingerprint key the column is NULL, never the path
        self.names = name_hasher(self.spec, keys)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle as (policy, table, keys) and rebuild on the executor: strategies hold precomputed cipher and
        HMAC states that cannot be pickled (and need not be shipped)."""
        return (TablePlan, (self.loaded, self.table, self._keys))

    def __repr__(self) -> str:
        return f"TablePlan(table={self.table!r}, outputs={[o.name for o in self.outputs]})"

    # ------------------------------------------------------------------------------------------------ schema
    def result_schema(self, passthrough: Iterable[str] = ()) -> pa.Schema:
        fields = list(self.output_schema) + [ERRORS_FIELD]
        fields += [pa.field(p, pa.string()) for p in passthrough]
        return pa.schema(fields)

    def result_ddl(self, passthrough: Iterable[str] = ()) -> str:
        """The Spark DDL schema of :meth:`process` output (for ``mapInArrow``)."""
        cols = [f"`{o.name}` {spark_ddl(o.policy_type)}" for o in self.outputs]
        cols.append(ERRORS_DDL)
        cols += [f"`{p}` string" for p in passthrough]
        return ", ".join(cols)

    def column_report(self) -> dict[str, dict[str, Any]]:
        """Per output column ``{strategy, key_version}`` for the audit event (names and versions, never keys)."""
        return {o.name: {"strategy": o.strategy.name, "key_version": o.key_version} for o in self.outputs}

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
                 for cname, col in self.spec.columns.items()}
        columns = [self._masked(out, typed, malformed, failures) for out in self.outputs]
        if malformed is not None:
            keep = pc.invert(malformed).to_numpy(zero_copy_only=False)  # a malformed row gets one reason only
            failures = [(rows[keep[rows]] if len(rows) else rows, c, r, m) for rows, c, r, m in failures]
            failures.insert(0, (_rows(malformed), *MALFORMED))
        columns.append(_errors_array(batch.num_rows, failures))
        out_names = [o.name for o in self.outputs] + [ERRORS_COL]
        if SOURCE_FILE_COL in batch.schema.names:
            src = _column(batch, SOURCE_FILE_COL)
            columns.append(src.cast(pa.string()) if self.spec.source_file == "path" else self.names.file_hashes(src))
            out_names.append(SOURCE_FILE_COL)
        return pa.RecordBatch.from_arrays(columns, names=out_names)

    def _checked(self, cname: str, col: ColumnSpec, raw: pa.Array, malformed: pa.Array | None,
                 failures: list[Failure]) -> pa.Array:
        """One input column parsed to its type and checked (``max_length``, type, ``required``, ``pattern``); a
        value that fails a check becomes NULL and its row gets a failure."""
        if not pa.types.is_string(raw.type):
            raw = raw.cast(pa.string())
        if malformed is not None:
            raw = pc.if_else(malformed, pa.scalar(None, pa.string()), raw)
        too_long = pc.fill_null(pc.greater(pc.utf8_length(raw), col.effective_max_length), False)
        if pc.any(too_long).as_py():
            failures.append((_rows(too_long), cname, "max_length",
                             f"longer than the column's max_length ({col.effective_max_length} characters)"))
            raw = pc.if_else(too_long, pa.scalar(None, pa.string()), raw)
        values, failed = _guarded(lambda a, t=col.type: parse(a, t), (raw,), arrow_type(col.type), failures,
                                  cname, "type", "cannot be parsed as " + col.type)
        bad = failed
        if col.type != "string":
            failures.append((_rows(failed), cname, "type", f"not a valid {col.type}"))
        if col.required:
            missing = pc.is_null(values) if col.type == "string" else pc.and_(pc.is_null(values), pc.invert(failed))
            missing = pc.and_(missing, pc.invert(too_long))
            failures.append((_rows(missing), cname, "required", "required value is missing"))
        if cname in self._patterns:
            text = values if col.type == "string" else pc.cast(raw, pa.string())
            mismatch = pc.invert(pc.fill_null(self._patterns[cname](text), True))
            mismatch = pc.and_(mismatch, pc.is_valid(text))
            failures.append((_rows(mismatch), cname, "pattern", "does not match the declared pattern"))
            bad = pc.or_(bad, mismatch)
        if pc.any(bad).as_py():
            values = pc.if_else(bad, pa.scalar(None, values.type), values)
        return values

    def _masked(self, out: OutputColumn, typed: dict[str, pa.Array], malformed: pa.Array | None,
                failures: list[Failure]) -> pa.Array:
        """One output column: its strategy over the checked input (value by value if the batch raises); a value the
        strategy refuses, or whose result is out of its type's range, becomes NULL and its row gets a failure."""
        out_type = self.output_schema.field(out.name).type
        others = {c: typed[c] for c in out.strategy.needs_columns(out.strategy.params)}
        result, invalid = _guarded(functools.partial(_mask_values, out.strategy, out_type), (typed[out.source], others),
                                   out_type, failures, out.source, "error", f"{out.strategy.name} failed on this value")
        failures.append((_rows(invalid), out.source, out.strategy.name,
                         f"value cannot be masked by {out.strategy.name} into {out.name}"))
        if malformed is not None:
            result = pc.if_else(malformed, pa.scalar(None, out_type), result)
        return result

    def process_iter(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        """The ``mapInArrow`` function body."""
        for batch in batches:
            if batch.num_rows:
                yield self.process(batch)


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
FINGERPRINT_COL = "_row_fingerprint"
#: Per row, ``column:detector`` for every PHI-looking value in a non-PHI column (tallied, then dropped).
SCAN_COL = "_phi_scan_hits"
#: The detectors that the scan of non-PHI columns applies (RE2 patterns, evaluated inside the fused pass).
SCAN_DETECTORS = ("ssn", "email", "phone")
#: ``bronze_mode: latest``: the raw source file and row position, carried through the pass only to order versions
#: of one key (the writers drop them; they are never written).
ORDER_FILE_COL, ORDER_POS_COL = "_lhp_order_file", "_lhp_order_pos"


def scan_columns(table: TableSpec) -> list[str]:
    """Non-PHI string columns kept raw: the ones whose values are scanned for PHI-looking text."""
    if table.phi_scan.sample_rows == 0:
        return []
    return [c for c, s in table.columns.items()
            if s.phi is None and s.type == "string" and s.effective_ingest.strategy == "keep"]


def row_messages(batch: pa.RecordBatch | pa.Table, columns: list[str]) -> list[bytes]:
    """The canonical encoding of each row's raw values of ``columns``: per column, ``-`` for NULL, else the UTF-8
    length in decimal, ``:``, and the UTF-8 bytes (self-delimiting, so no two rows encode alike)."""
    parts = []
    for name in columns:
        raw = batch.column(name)
        raw = raw.combine_chunks() if isinstance(raw, pa.ChunkedArray) else raw
        text = raw if pa.types.is_string(raw.type) else pc.cast(raw, pa.string())
        length = pc.cast(pc.binary_length(text), pa.string())
        framed = pc.binary_join_element_wise(length, text, ":")
        parts.append(pc.fill_null(framed, "-"))
    if not parts:
        return [b""] * batch.num_rows
    joined = pc.binary_join_element_wise(*parts, "") if len(parts) > 1 else parts[0]
    out: list[bytes] = joined.cast(pa.binary()).to_pylist()
    return out


class IngestPlan:
    """:class:`TablePlan` plus what the ingest job adds to every row in the same pass: ``_row_fingerprint`` and
    the PHI scan of non-PHI columns (``_phi_scan_hits``), so nothing needs a second read of the source."""

    def __init__(self, plan: TablePlan) -> None:
        self.plan = plan
        self.spec = plan.spec
        self.scan_columns = scan_columns(plan.spec)
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
        return pa.array(self._mac.hexdigests(row_messages(batch, self.plan.input_columns)), pa.string())

    def scan_hits(self, batch: pa.RecordBatch | pa.Table) -> pa.Array:
        """``list<string>`` of ``column:detector`` per row (empty for most rows)."""
        from lakehouse_phi.transforms import detectors

        n = batch.num_rows
        hits: list[tuple[NDArray[Any], str]] = []
        names = batch.schema.names
        malformed = pc.is_valid(batch.column(CORRUPT_COL)) if CORRUPT_COL in names else None
        for c in self.scan_columns:
            raw = batch.column(c)
            raw = raw.combine_chunks() if isinstance(raw, pa.ChunkedArray) else raw
            text = raw if pa.types.is_string(raw.type) else pc.cast(raw, pa.string())
            if malformed is not None:  # a row that did not parse is quarantined whole: its shifted text is no finding
                text = pc.if_else(malformed, pa.scalar(None, pa.string()), text)
            for kind in SCAN_DETECTORS:
                hits.append((_rows(pc.match_substring_regex(text, detectors.PATTERNS[kind])), f"{c}:{kind}"))
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
