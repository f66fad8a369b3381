"""``erase``: delete data subjects' rows from bronze and quarantine, matched by the subject column.

The subjects are raw values of the subject column (one per line, from a file or stdin: never argv, where other
users of the machine can read them). The subject column is the record key (a one-column key), or ``--by COLUMN``
(``mrn`` of ``encounters``/``claims``, say): a column masked by ``hmac`` is matched by pseudonym, each subject
pseudonymised exactly as ingest did under the active key version *and* every older one (``previous:``), since rows
ingested before a rotation carry the old pseudonym; a column kept raw (``keep``: ``encounter_id``) is matched by its
value.

Any number of subjects in bounded memory: they are read in chunks of :data:`CHUNK`, each chunk parsed and
pseudonymised at once and streamed into a temporary Delta table beside nothing (a local temp folder), which is then
the source of one delta-rs ``MERGE ... WHEN MATCHED THEN DELETE`` per table (the join runs in delta-rs's engine). One
commit per table, tagged with the run id; the audit protocol and the key check of
:mod:`lakehouse_phi.lifecycle.tables` (an ``erase_started`` event before the first commit, ``erase`` after). The
events hold counts, the SHA-256 of the sorted pseudonyms and, for up to :data:`LISTED` subjects, the (active-version)
pseudonyms themselves; never a raw value.

Deleted rows stay in the table's older data files (time travel) until they are vacuumed: the command prints the
``VACUUM`` that drops them, and ``vacuum_hours`` runs it.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa

from lakehouse_phi.engine.types import arrow_type, parse
from lakehouse_phi.errors import JobRefused, UsageError
from lakehouse_phi.lifecycle.tables import KEY_VERSIONS_COL, Context, commit_of, open_table, vacuum_statement
from lakehouse_phi.storage.delta import DeltaRsTable
from lakehouse_phi.storage.sqltext import datafusion_ident, datafusion_literal, datafusion_qualified
from lakehouse_phi.transforms import registry
from lakehouse_phi.transforms.base import ColumnContext

log = logging.getLogger(__name__)

DEFAULT_RETENTION_HOURS = 168  # Delta's default delta.deletedFileRetentionDuration (7 days)
#: subjects parsed and pseudonymised at once
CHUNK = 50_000
#: up to this many subjects, the audit event lists their (active-version) pseudonyms
LISTED = 1000
#: raw subjects kept to check the audit event holds none of them (the first ones read)
SAMPLE = 1000


@dataclass
class EraseResult:
    run_id: str
    table: str
    subjects: int
    pseudonym_column: str
    key: str
    key_versions: list[int]
    bronze_rows_deleted: int
    quarantine_rows_deleted: int
    dry_run: bool
    vacuum: list[str] = field(default_factory=list)
    vacuumed_files: int | None = None
    audit_hash: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def read_subjects(lines: Iterable[str]) -> list[str]:
    """Subjects, one per line: surrounding whitespace and blank lines ignored, duplicates dropped, order kept."""
    out: dict[str, None] = {}
    for line in lines:
        value = line.strip()
        if value:
            out[value] = None
    return list(out)


@dataclass(frozen=True)
class SubjectRule:
    """How subjects are matched: ``column`` by ``hmac`` pseudonym under ``key`` (``params``), or raw (key None)."""

    column: str
    column_type: str
    key: str | None
    params: dict


def subject_rule(ctx: Context, by: str | None = None) -> SubjectRule:
    """The subject column (``by``, else the one-column record key) and how it was masked.

    Raises:
        UsageError: no such column, a record key of several columns without ``by``, or a column that is neither
            ``hmac`` nor kept raw.
    """
    spec = ctx.spec
    if by is None:
        if len(spec.record_key) != 1:
            raise UsageError(f"tables.{ctx.table}.record_key has {len(spec.record_key)} columns: pass --by COLUMN "
                             "(the column that names the data subject, e.g. mrn)")
        by = spec.record_key[0]
    if by not in spec.columns:
        raise UsageError(f"--by {by}: not a column of tables.{ctx.table} (declared: {', '.join(spec.columns)})")
    rule = spec.columns[by].effective_ingest
    if rule.strategy == "hmac":
        return SubjectRule(by, spec.columns[by].type, rule.params["key"], dict(rule.params))
    if rule.strategy == "keep":
        return SubjectRule(by, spec.columns[by].type, None, {})
    raise UsageError(f"tables.{ctx.table}.columns.{by}: erase matches subjects by hmac pseudonym or by the kept raw "
                     f"value, so this column must be masked by hmac or kept (found {rule.strategy}); pass --by with "
                     "another column")


def pseudonym_rule(ctx: Context) -> tuple[str, str, dict]:
    """(record key column, its hmac key name, its hmac parameters) (the record key's :func:`subject_rule`).

    Raises:
        UsageError: the record key is not one column masked by ``hmac``.
    """
    rule = subject_rule(ctx)
    if rule.key is None:
        raise UsageError(f"tables.{ctx.table}.columns.{rule.column}: matched by pseudonym, the record key must be "
                         "masked by hmac")
    return rule.column, rule.key, rule.params


@dataclass
class Spooled:
    """The subjects' match values in a temporary Delta table (``p``: value, ``v``: key version, 0 when raw)."""

    table: DeltaRsTable
    subjects: int
    versions: list[int]
    digest: str
    listed: list[str] | None
    sample: list[str]


def _chunks(lines: Iterable[str]) -> Iterator[tuple[list[int], list[str]]]:
    """(line numbers, stripped non-blank values), :data:`CHUNK` values at a time."""
    numbers: list[int] = []
    chunk: list[str] = []
    for n, line in enumerate(lines, start=1):
        value = line.strip()
        if value:
            numbers.append(n)
            chunk.append(value)
        if len(chunk) == CHUNK:
            yield numbers, chunk
            numbers, chunk = [], []
    if chunk:
        yield numbers, chunk


def spool_subjects(ctx: Context, rule: SubjectRule, lines: Iterable[str], folder: str) -> Spooled:
    """Parse, pseudonymise and stream the subjects into a Delta table under ``folder``, chunk by chunk.

    Raises:
        UsageError: no subjects, or lines that are not valid values of the subject column (line numbers named).
    """
    from deltalake import write_deltalake

    strategies: dict[int, Any] = {}
    if rule.key is not None:
        ring = ctx.keys([(rule.key, "hmac")])
        cls = registry.get("hmac")
        for version, key in ring.all_versions(rule.key).items():
            strategies[version] = cls(cls.params_model.model_validate(rule.params),
                                      ColumnContext(ctx.table, rule.column, rule.column, rule.column_type),
                                      key.material)
        ctx.check_keys(ring)
    value_type = pa.string() if rule.key is not None else arrow_type(rule.column_type)
    schema = pa.schema([("p", value_type), ("v", pa.int32())])
    bad: list[int] = []
    sample: list[str] = []
    seen = [0]

    def batches() -> Iterator[pa.RecordBatch]:
        for numbers, chunk in _chunks(lines):
            if len(sample) < SAMPLE:
                sample.extend(chunk[: SAMPLE - len(sample)])
            typed, failed = parse(pa.array(chunk, pa.string()), rule.column_type)
            flags = failed.to_pylist()
            if any(flags):
                bad.extend(numbers[i] for i, f in enumerate(flags) if f and len(bad) < 20)
                typed = typed.filter(pa.array([not f for f in flags]))
            seen[0] += len(typed)
            if rule.key is None:
                yield pa.record_batch({"p": typed.cast(value_type), "v": pa.array([0] * len(typed), pa.int32())},
                                      schema=schema)
                continue
            for version, strategy in strategies.items():
                out = strategy.apply(typed)
                yield pa.record_batch({"p": out, "v": pa.array([version] * len(out), pa.int32())}, schema=schema)

    location = f"{folder}/subjects"
    write_deltalake(location, pa.RecordBatchReader.from_batches(schema, batches()), mode="error")
    if bad:
        raise UsageError(f"subjects: line(s) {', '.join(map(str, bad[:20]))} are not a valid {rule.column_type} "
                         f"value of {rule.column}; fix those lines")
    if not seen[0]:
        raise UsageError("subjects: none given; pass a file with one subject per line, or - for stdin")
    table = DeltaRsTable(location)
    active = max(strategies) if strategies else 0
    where = f"v = {active} AND p IS NOT NULL"
    subjects = _distinct(table, where)
    digest = hashlib.sha256()
    listed: list[str] | None = [] if subjects <= LISTED and rule.key is not None else None
    for batch in _iter(table.stream(f"SELECT DISTINCT CAST(p AS VARCHAR) AS p FROM t WHERE {where} ORDER BY p")):
        for value in pa.array(batch.column(0)).cast(pa.string()).to_pylist():
            digest.update(value.encode("utf-8") + b"\n")
            if listed is not None:
                listed.append(value)
    return Spooled(table, subjects, sorted(strategies) or [0], digest.hexdigest(), listed, sample)


def _iter(stream: Any) -> Iterator[pa.RecordBatch]:
    reader = pa.RecordBatchReader.from_stream(stream)
    yield from reader


def _distinct(table: DeltaRsTable, where: str) -> int:
    out = pa.table(table.stream(f"SELECT count(DISTINCT p) AS n FROM t WHERE {where}").read_all())
    return int(out.column("n")[0].as_py())



def _versions_in(name: str, table: DeltaRsTable, column: str) -> set[int]:
    """The key versions the rows of ``table`` record for ``column`` (``_key_versions``).

    Raises:
        JobRefused: the table cannot be read (nothing has been changed yet).
    """
    if KEY_VERSIONS_COL not in table.columns():
        return set()
    sql = (f"SELECT DISTINCT {datafusion_ident(KEY_VERSIONS_COL)}[{datafusion_literal(column)}] AS v FROM t")
    try:
        found = pa.table(table.stream(sql).read_all()).column("v").to_pylist()
    except Exception as exc:  # noqa: BLE001 - delta-rs raises several types; reduced to its class, nothing changed
        raise JobRefused(f"{name} {table.target}: cannot be read ({type(exc).__name__}: a data file is missing or "
                         "unreadable); nothing was changed - repair or restore the table, then rerun") from None
    return {v for v in found if v is not None}


def _match_sql(column: str) -> str:
    return f"{datafusion_qualified('t', column)} = {datafusion_qualified('s', 'p')}"


def _count(table: DeltaRsTable, spooled: Spooled, column: str) -> int:
    from deltalake import QueryBuilder

    from lakehouse_phi.storage.delta import plain_types

    sql = (f"SELECT count(*) AS n FROM t WHERE {datafusion_qualified('t', column)} IN "
           "(SELECT p FROM s WHERE p IS NOT NULL)")
    qb = QueryBuilder().register("t", table.open()).register("s", spooled.table.open())
    return int(plain_types(pa.table(qb.execute(sql).read_all())).column("n")[0].as_py())


def _delete(ctx: Context, table: DeltaRsTable, spooled: Spooled, column: str) -> int:
    """One ``MERGE ... WHEN MATCHED THEN DELETE`` with the spooled values as the source (re-read per attempt)."""
    def operation(delta: Any, props: Any) -> int:
        source = spooled.table.stream("SELECT DISTINCT p FROM t WHERE p IS NOT NULL")
        metrics = (delta.merge(source, predicate=_match_sql(column), source_alias="s", target_alias="t",
                               commit_properties=props).when_matched_delete().execute())
        return int(metrics.get("num_target_rows_deleted", 0))

    return table.commit_with(operation, commit_of(ctx))


def erase(ctx: Context, subjects: Iterable[str], *, dry_run: bool = False, vacuum_hours: int | None = None,
          by: str | None = None) -> EraseResult:
    """Delete the subjects' rows from bronze and quarantine (see the module docstring). ``subjects``: lines (a file
    object streams; a list works too).

    Raises:
        UsageError: no subjects, a subject that is not a valid value, a table that is not there.
        KeyMaterialError: a version of the pseudonym key (or the audit key) cannot be resolved; nothing deleted.
        JobRefused: key material other than the table was written with, or rows under a key version that is not
            resolved (they could not be matched); nothing deleted.
    """
    rule = subject_rule(ctx, by)
    seal = ctx.seal_key()  # before anything is deleted: a missing audit key stops here
    tables = {"bronze": open_table(ctx.targets.bronze, required=True),
              "quarantine": open_table(ctx.targets.quarantine, required=False)}
    for name, t in tables.items():
        if t is not None and rule.column not in t.columns():
            raise UsageError(f"{name} {t.target}: no column {rule.column!r} to match subjects in")
    with tempfile.TemporaryDirectory(prefix="lakehouse-phi-erase-") as folder:
        spooled = spool_subjects(ctx, rule, subjects, folder)
        if rule.key is not None:
            for name, t in tables.items():
                missing = sorted(v for v in _versions_in(name, t, rule.column) if v not in spooled.versions) \
                    if t is not None else []
                if missing:
                    raise JobRefused(f"{name} {t.target} holds rows of {rule.column} under key '{rule.key}' "  # type: ignore[union-attr]
                                     f"version(s) {missing}, which this run did not resolve, so those subjects "
                                     f"could not be found; add them under keys.{rule.key}.previous - nothing "
                                     "was deleted")
        targets = [ctx.targets.bronze] + ([ctx.targets.quarantine] if tables["quarantine"] is not None else [])
        result = EraseResult(ctx.run_id, ctx.table, spooled.subjects, rule.column, rule.key or "", spooled.versions,
                             0, 0, dry_run,
                             vacuum=[vacuum_statement(t, vacuum_hours if vacuum_hours is not None
                                                      else DEFAULT_RETENTION_HOURS) for t in targets])
        if dry_run:
            result.bronze_rows_deleted = _count(tables["bronze"], spooled, rule.column)  # type: ignore[arg-type]
            q = tables["quarantine"]
            result.quarantine_rows_deleted = _count(q, spooled, rule.column) if q is not None else 0
            return result
        active = max(spooled.versions)
        columns = {rule.column: {"strategy": "hmac", "key_version": active} if rule.key else {"strategy": "keep"}}
        plan = {"subjects": spooled.subjects, "subjects_sha256": spooled.digest, "by": rule.column,
                "key": rule.key, "key_versions": spooled.versions}
        ctx.begin("erase", plan, seal, forbidden=spooled.sample)
        done: dict[str, int] = {}
        for name, t in tables.items():
            if t is None:
                done[f"{name}_rows_deleted"] = 0
                continue
            done[f"{name}_rows_deleted"] = ctx.commit("erase", name, dict(done), seal,
                                                      lambda t=t: _delete(ctx, t, spooled, rule.column))
        result.bronze_rows_deleted = done["bronze_rows_deleted"]
        result.quarantine_rows_deleted = done["quarantine_rows_deleted"]
        if vacuum_hours is not None:
            result.vacuumed_files = sum(len(t.commit_with(
                lambda d, props: d.vacuum(retention_hours=vacuum_hours, dry_run=False,
                                          enforce_retention_duration=False, commit_properties=props),
                commit_of(ctx))) for t in tables.values() if t is not None)
        details = {**plan, **done, "vacuum_hours": vacuum_hours, "vacuumed_files": result.vacuumed_files}
        if spooled.listed is not None:
            details["pseudonyms"] = spooled.listed
        sealed = ctx.audit("erase", columns, details, seal, forbidden=spooled.sample)
    result.audit_hash = sealed["hash"]
    return result
