"""Reading the landing data: the source files with a ``_source_file`` column, and for CSV every file mapped by the
names of its own header.

Classic Spark's CSV reader is permissive: a row with a field missing, an unterminated quote or an embedded newline
shifts values into the next columns, extra fields are dropped, and a second file's header is ignored (values land
by position). So for CSV:

* every file's header is read and checked (no empty or duplicate names, every declared column present); files are
  grouped by header and each group is read with an explicit all-string schema of positional names (``_c0``, …:
  a header name may be PHI and must not reach the Spark plan), and each declared column is taken from its
  position in *that* header, so values land by name; undeclared columns are read (every field is counted) but
  not returned;
* rows are read ``PERMISSIVE`` with ``columnNameOfCorruptRecord: _corrupt_record``: a row whose field count differs
  from its header's, or that did not parse, keeps its raw line there, and the fused pass
  (:meth:`~lakehouse_phi.engine.plan.TablePlan.process`) turns it into a ``malformed_row`` quarantine row with every
  value NULL. ``_corrupt_record`` is never written anywhere;
* engines without per-row parse failures (pysail) read file by file and refuse a file that does not parse, whole.

File names may be PHI: a file is named in messages by its position in the sorted listing and a keyed hash
(``file_label``), or by its path only where the policy says paths are safe (``source_file: path``).
Files whose name, or a folder's below the source path, starts with ``_`` or ``.`` are skipped as Spark skips them,
and counted (:attr:`Landing.skipped_files`).
"""

from __future__ import annotations

import csv
import glob
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lakehouse_phi.engine.drift import CORRUPT_COL
from lakehouse_phi.engine.names import NameHasher
from lakehouse_phi.engine.plan import SOURCE_FILE_COL
from lakehouse_phi.errors import JobRefused
from lakehouse_phi.spark.session import functions
from lakehouse_phi.storage.rules import spark_error_class
from lakehouse_phi.storage.targets import local_path

#: Options the CSV reader sets itself (compared without case): a policy's value for them is replaced.
_CSV_FORCED = {"header": "true", "mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT_COL,
               "enforceSchema": "false", "inferSchema": "false"}

log = logging.getLogger(__name__)
#: the fix every "cannot read the source" message ends with
_FIX = "check source.path and source.format, or pass --input"
FileLabel = Callable[[int, str], str]


@dataclass(frozen=True)
class Landing:
    """What :func:`read_landing` read.

    Attributes:
        df: the rows: the source columns (CSV read with ``declared``: the declared ones only, all strings),
            ``_source_file`` (the file's path; the fused pass hashes it), and ``_corrupt_record`` where the engine
            reports rows that did not parse (never to be written).
        columns: the source's column names in source order (CSV: the union of the files' headers, first seen
            first); never ``_corrupt_record`` nor ``_source_file``.
        files: how many files were read (``None``: the engine listed them; not counted).
        skipped_files: files skipped because their name or a folder's starts with ``_`` or ``.``
            (``None``: a remote path, listed by the engine, which skips them silently).
        malformed_rows: ``quarantine`` when a row that does not parse is flagged in ``_corrupt_record``,
            ``refuse`` when the engine fails the file instead (checked before anything is written).
    """

    df: Any
    columns: list[str]
    files: int | None
    skipped_files: int | None
    malformed_rows: str


def position_label(position: int, path: str) -> str:
    """The default way to name a file: its position in the sorted listing (never its path, which may be PHI)."""
    return f"file #{position}"


def read_source(spark: Any, fmt: str, path: str, options: Mapping[str, str]) -> Any:
    """``(df, columns)`` of :func:`read_landing` (kept for callers of the first version)."""
    landing = read_landing(spark, fmt, path, options)
    return landing.df, landing.columns


def read_landing(spark: Any, fmt: str, path: str, options: Mapping[str, str], *,
                 declared: Sequence[str] = (), file_label: FileLabel = position_label,
                 names: NameHasher | None = None, files: Sequence[str] | None = None) -> Landing:
    """Read the landing data with a ``_source_file`` column (see the module docstring).

    Args:
        declared: the policy's columns: a CSV file whose header lacks one is refused (named by ``file_label``).
        file_label: ``(position, path) -> label`` for messages (1-based position in the sorted listing).
        names: when given, file paths are kept out of the Spark plan: files with different headers are told apart
            on the executors by the keyed hash of their path (``None``: paths may be in the plan, as with
            ``source_file: path``).
        files: read exactly these files of ``path`` (a stream's micro-batch, listed by Spark's file source; their
            paths are then in the plan, as they are in the stream's checkpoint).

    Raises:
        JobRefused: an unreadable source, a CSV file with a bad header or (pysail) rows that do not parse; the
            message names the source path, the file by its label and the Spark error class, never a value.
    """
    explicit = files is not None
    skipped: int | None
    if files is not None:
        files, skipped = sorted(files), 0
        if not files:
            raise JobRefused(f"no files to read from the source {path!r}")
    else:
        local = local_path(path)
        if local is not None and local == path and not os.path.isabs(path):
            # Spark resolves a relative path against the JVM's working directory, not this process's: absolute
            path = local = os.path.abspath(path)
        if local is not None and not glob.glob(local):
            raise JobRefused(f"cannot read the source {path!r}: no such file or directory; {_FIX}")
        listed = _list_local(local) if local is not None else None
        files, skipped = listed if listed is not None else (None, None)
        if files is not None and not files:
            raise JobRefused(f"cannot read the source {path!r} as {fmt}: no files (only {skipped} skipped file(s) "
                             f"whose name starts with _ or .); {_FIX}")
    if fmt == "csv":
        return _read_csv(spark, path, options, files, skipped, declared, file_label, names, explicit)
    opts = dict(options)
    if fmt == "json":
        opts = {**_without(opts, ("mode", "columnNameOfCorruptRecord")), "mode": "PERMISSIVE",
                "columnNameOfCorruptRecord": CORRUPT_COL}
    try:
        df = spark.read.format(fmt).options(**opts).load(list(files) if explicit and files else path)
        columns = df.columns
    except Exception as exc:  # noqa: BLE001 - engines raise many classes (Py4J, gRPC, Spark); reduced to its error class
        raise JobRefused(f"cannot read the source {path!r} as {fmt} ({spark_error_class(exc)}); {_FIX}") from None
    source_columns = [c for c in columns if c != CORRUPT_COL]
    if not source_columns:  # some engines read a missing or empty location as an empty frame
        raise JobRefused(f"cannot read the source {path!r} as {fmt}: no columns (empty or missing); {_FIX}")
    F = functions(spark)
    try:
        tagged = _with_corrupt_guard(df, F, source_columns).select(
            "*", F.col("_metadata.file_path").alias(SOURCE_FILE_COL))
        tagged.schema  # noqa: B018 - forces analysis on Spark Connect
        return Landing(tagged, source_columns, len(files) if files is not None else None, skipped,
                       "quarantine" if fmt == "json" else "refuse")
    except Exception as exc:  # noqa: BLE001 - no _metadata on this engine (pysail): tagged file by file below
        log.debug("no _metadata.file_path on this engine (%s); reading file by file", type(exc).__name__)
    if not files:
        return Landing(df.withColumn(SOURCE_FILE_COL, F.lit(None).cast("string")), source_columns, None, skipped,
                       "refuse")
    reader = spark.read.format(fmt).options(**options)
    if fmt == "json":  # every file read with the folder's schema: files whose structs hold different fields union
        from pyspark.sql.types import StructType

        reader = reader.schema(StructType([f for f in df.schema.fields if f.name != CORRUPT_COL]))
    parts = [reader.load(f).withColumn(SOURCE_FILE_COL, F.lit(_uri(f))) for f in files]
    return Landing(_file_by_file(spark, parts), source_columns, len(files), skipped, "refuse")


def file_columns(spark: Any, fmt: str, f: str, options: Mapping[str, str], declared: Sequence[str],
                 label: str) -> list[str]:
    """One landing file's column names, checked as :func:`read_landing` checks them (CSV: the header row, read in
    Python: no empty, duplicate or reserved name, every declared column present); the stream screens each new file
    with it, so one bad file is skipped instead of failing every micro-batch after it.

    Raises:
        JobRefused: naming the file by ``label`` and positions or the engine's error class, never a name or value.
    """
    if fmt == "csv":
        user = dict(options.items())
        header = _header(spark, f, user, {**_without(user, _CSV_FORCED), **_CSV_FORCED}, label)
        _check_header(header, declared, label)
        return list(header)
    try:
        return [c for c in spark.read.format(fmt).options(**dict(options)).load(f).columns if c != CORRUPT_COL]
    except Exception as exc:  # noqa: BLE001 - engines raise many classes (Py4J, gRPC, Spark); reduced to its error class
        raise JobRefused(f"{label} of the {fmt} source cannot be read ({spark_error_class(exc)})") from None


# -------------------------------------------------------------------------------------------------- CSV
def _read_csv(spark: Any, path: str, options: Mapping[str, str], files: list[str] | None, skipped: int | None,
              declared: Sequence[str], file_label: FileLabel, hasher: NameHasher | None,
              explicit: bool = False) -> Landing:
    user = dict(options.items())
    header_opt = next((v for k, v in user.items() if k.lower() == "header"), "true")
    if str(header_opt).strip().lower() != "true":
        raise JobRefused(f"the CSV source {path!r} is read without a header (source.options.header: {header_opt}); "
                         "columns can only be mapped by name: set header: true and give the files a header row")
    base = {**_without(user, _CSV_FORCED), **_CSV_FORCED}
    files = files if files is not None else _list_remote(spark, path)
    headers: dict[tuple[str, ...], list[tuple[int, str]]] = {}
    for position, f in enumerate(files, start=1):
        label = file_label(position, _uri(f))
        header = tuple(_header(spark, f, user, base, label))
        _check_header(header, declared, label)
        headers.setdefault(header, []).append((position, f))
    columns = list(dict.fromkeys(c for h in headers for c in h))
    flagged = _supports_corrupt_record(spark)
    parts = []
    for header, group in headers.items():
        csv = _CsvGroup(spark, header, declared)
        if flagged:
            parts.append(csv.flagged(path, base, group, len(headers) > 1 or explicit,
                                     None if explicit else hasher))
        else:
            parts.extend(csv.strict(base, group, file_label))
    out = _union(parts) if flagged else _file_by_file(spark, parts)
    try:
        out.schema  # noqa: B018 - analysis now, not in the middle of the job
    except Exception as exc:  # noqa: BLE001 - engines raise many classes (Py4J, gRPC, Spark); reduced to its error class
        raise JobRefused(f"cannot read the source {path!r} as csv ({spark_error_class(exc)}); {_FIX}") from None
    return Landing(out, columns, len(files), skipped, "quarantine" if flagged else "refuse")


def _list_remote(spark: Any, path: str) -> list[str]:
    """The files of a remote path, as the engine lists them (skipping _ and . files without a count)."""
    try:
        files = sorted(spark.read.format("text").load(path).inputFiles())
    except Exception as exc:  # noqa: BLE001 - engines raise many classes (Py4J, gRPC, Spark); reduced to its error class
        raise JobRefused(f"cannot list the source {path!r} ({spark_error_class(exc)}); {_FIX}") from None
    if not files:
        raise JobRefused(f"cannot read the source {path!r} as csv: no files; {_FIX}")
    return files


class _CsvGroup:
    """The CSV files that share one header: read with a positional schema (``_c0``, ``_c1``, ...) and only the
    declared columns named, since a header name may be PHI and so must not reach the Spark plan (nor Spark's
    header-mismatch log line)."""

    def __init__(self, spark: Any, header: tuple[str, ...], declared: Sequence[str]) -> None:
        from pyspark.sql.types import StringType, StructField

        self.spark, self.F, self.declared = spark, functions(spark), declared
        self.names = [f"_c{i}" for i in range(len(header))] if declared else list(header)
        self.wanted = ([_q(self.F, self.names[header.index(c)]).alias(c) for c in declared] if declared
                       else [_q(self.F, c) for c in header])
        self.fields = [StructField(c, StringType()) for c in self.names]

    def flagged(self, path: str, base: Mapping[str, str], group: list[tuple[int, str]], several: bool,
                hasher: NameHasher | None) -> Any:
        """Every file of the group in one read; a row that does not parse is kept whole in ``_corrupt_record``."""
        from pyspark.sql.types import StringType, StructField, StructType

        F = self.F
        schema = StructType(self.fields + [StructField(CORRUPT_COL, StringType())])
        opts = {**base, "enforceSchema": "true"} if self.declared else dict(base)
        by_hash = several and hasher is not None and hasher.file_hash("") is not None
        # the source path itself, as the engine lists it (one header; or several, this group's files then picked
        # by the keyed hash of their path, so no path is in the plan); else this group's files by name
        where: Any = path if not several or by_hash else [f for _, f in group]
        df = self.spark.read.format("csv").options(**opts).schema(schema).load(where)
        df = _with_corrupt_guard(df, F, self.names).select(
            *self.wanted, CORRUPT_COL, F.col("_metadata.file_path").alias(SOURCE_FILE_COL))
        if by_hash:
            assert hasher is not None
            members = {hasher.file_hash(_uri(f)) for _, f in group}
            df = df.where(_member_of(F, hasher, members)(F.col(SOURCE_FILE_COL)))
        return df

    def strict(self, base: Mapping[str, str], group: list[tuple[int, str]], file_label: FileLabel) -> list[Any]:
        """pysail: strict parsing, file by file; a file that does not parse is refused whole."""
        from pyspark.sql.types import StructType

        strict = _without(base, ("mode", "columnNameOfCorruptRecord", "enforceSchema"))
        parts = []
        for position, f in group:
            df = self.spark.read.format("csv").options(**strict).schema(StructType(self.fields)).load(f)
            _parse_or_refuse(df, self.F, self.names, file_label(position, _uri(f)))
            parts.append(df.select(*self.wanted, self.F.lit(_uri(f)).alias(SOURCE_FILE_COL)))
        return parts


def _header(spark: Any, f: str, user: Mapping[str, str], base: Mapping[str, str], label: str) -> list[str]:
    """The column names of one file's header row, as Spark's CSV reader splits it."""
    local = local_path(f)
    if local is not None:
        opt = {k.lower(): v for k, v in user.items()}
        encoding = opt.get("encoding", opt.get("charset", "utf-8"))
        delimiter = opt.get("sep", opt.get("delimiter", ","))
        quote = opt.get("quote", '"') or None
        escape = opt.get("escape", "\\")
        try:
            with open(local, encoding="utf-8-sig" if encoding.lower().replace("_", "-") == "utf-8" else encoding,
                      newline="") as fh:
                line = fh.readline()  # Spark takes the first line as the header
            rows = list(csv.reader([line.rstrip("\r\n")], delimiter=delimiter, quotechar=quote,
                                   escapechar=escape if escape and escape != quote else None,
                                   doublequote=escape == quote or not escape))
        except (OSError, UnicodeDecodeError, LookupError, csv.Error, TypeError) as exc:
            raise JobRefused(f"{label} of the CSV source: cannot read its header ({type(exc).__name__}); check "
                             "the file and source.options (sep, quote, escape, encoding)") from None
        return rows[0] if rows else []
    try:
        return list(spark.read.format("csv").options(**_without(base, ("mode", "columnNameOfCorruptRecord",
                                                                          "enforceSchema"))).load(f).columns)
    except Exception as exc:  # noqa: BLE001 - engines raise many classes (Py4J, gRPC, Spark); reduced to its error class
        raise JobRefused(f"{label} of the CSV source: cannot read its header ({spark_error_class(exc)})") from None


def _check_header(header: Sequence[str], declared: Sequence[str], label: str) -> None:
    if not header:
        raise JobRefused(f"{label} of the CSV source has no header row; every CSV file needs one (columns are "
                         "mapped by name)")
    empty = [i + 1 for i, c in enumerate(header) if not c.strip()]
    seen: dict[str, int] = {}
    duplicate = [i + 1 for i, c in enumerate(header) if seen.setdefault(c, i) != i]
    reserved = [i + 1 for i, c in enumerate(header) if c in (CORRUPT_COL, SOURCE_FILE_COL)]
    if empty or duplicate or reserved:
        what = "; ".join(s for s in (f"empty name(s) at position(s) {empty}" if empty else "",
                                     f"duplicate name(s) at position(s) {duplicate}" if duplicate else "",
                                     f"reserved name(s) at position(s) {reserved}" if reserved else "") if s)
        raise JobRefused(f"{label} of the CSV source has a header that cannot be mapped by name ({what}); fix "
                         "the file's header row")
    missing = [c for c in declared if c not in header]
    if missing:
        raise JobRefused(f"{label} of the CSV source lacks declared column(s) {', '.join(missing)} in its header; "
                         "fix the extract (every file must carry every declared column) or the policy")


def _supports_corrupt_record(spark: Any) -> bool:
    """Real Spark (classic, Databricks, Spark Connect to Spark) flags rows that do not parse; pysail fails the
    read instead and has no ``_metadata``."""
    from lakehouse_phi.storage.engines import caps

    return caps(spark).corrupt_record


def _parse_or_refuse(df: Any, F: Any, columns: list[str], label: str) -> None:
    """Parse every field of a file now (only lengths come back): on an engine that fails a bad row's whole read,
    refuse before anything is written, naming the file by its label and the engine's error class only."""
    try:
        df.agg(*[F.max(F.length(_q(F, c))) for c in columns]).collect()
    except Exception as exc:  # noqa: BLE001 - engines raise many classes (Py4J, gRPC, Spark); reduced to its error class
        raise JobRefused(f"{label} of the CSV source does not parse ({spark_error_class(exc)}): a row's field count "
                         "differs from its header's or its quoting is broken; on this engine such a file is refused "
                         "whole (Spark quarantines the rows); fix or remove the file") from None


def _with_corrupt_guard(df: Any, F: Any, columns: Sequence[str]) -> Any:
    """Replace ``_corrupt_record`` (where present) by an expression that references every source column.

    Spark's CSV parser only counts the fields it is asked for: once a projection drops unused columns, a row with a
    field missing no longer reports itself. ``CASE WHEN coalesce(all columns) IS NULL AND c IS NULL THEN NULL ELSE c
    END`` is ``c``, but the optimizer cannot see it, so every column stays in the scan and the field count is
    checked whatever the caller selects."""
    if CORRUPT_COL not in df.columns or not columns:
        return df
    corrupt = F.col(CORRUPT_COL)
    every = F.coalesce(*[_q(F, c) for c in columns]) if len(columns) > 1 else _q(F, columns[0])
    guard = F.when(every.isNull() & corrupt.isNull(), F.lit(None).cast("string")).otherwise(corrupt)
    return df.withColumn(CORRUPT_COL, guard)


# -------------------------------------------------------------------------------------------------- files
def _list_local(local: str) -> tuple[list[str], int]:
    """The files Spark reads under a local path (sorted) and how many it skips (name or a folder below the path
    starting with ``_`` or ``.``)."""
    files: list[str] = []
    skipped = 0
    for root in sorted(glob.glob(local)):
        if os.path.isfile(root):
            files.append(root)
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            hidden_dirs = [d for d in dirnames if d.startswith(("_", "."))]
            for d in hidden_dirs:
                skipped += sum(len(fs) for _, _, fs in os.walk(os.path.join(dirpath, d)))
            dirnames[:] = sorted(d for d in dirnames if d not in hidden_dirs)
            for name in sorted(filenames):
                if name.startswith(("_", ".")):
                    skipped += 1
                else:
                    files.append(os.path.join(dirpath, name))
    return files, skipped


def _member_of(F: Any, hasher: NameHasher, members: set[str | None]) -> Any:
    """A filter UDF: is this row's file (by the keyed hash of its path) one of ``members``? Only hashes and the
    pickled key are in the plan, never a path."""
    from pyspark.sql.types import BooleanType

    wanted = frozenset(m for m in members if m)

    def member(paths: Any) -> Any:
        known = {p: p is not None and hasher.file_hash(p) in wanted for p in paths.unique()}
        return paths.map(known).astype(bool)

    import pandas as pd

    member.__annotations__ = {"paths": pd.Series, "return": pd.Series}  # Series -> Series (a scalar pandas UDF)

    return F.pandas_udf(member, BooleanType())


def _uri(f: str) -> str:
    return "file:" + os.path.abspath(f) if local_path(f) is not None and not f.startswith("file:") else f


def _q(F: Any, name: str) -> Any:
    return F.col("`" + name.replace("`", "``") + "`")


def _without(options: Mapping[str, str], keys: Sequence[str] | Mapping[str, str]) -> dict[str, str]:
    drop = {k.lower() for k in keys}
    return {k: v for k, v in options.items() if k.lower() not in drop}


def _file_by_file(spark: Any, parts: list[Any]) -> Any:
    """The union of one read per file, run a few files at a time.

    Each file read is one partition, and this process's pysail server runs every partition of a union at once:
    the mask pass's Python then held all of them open together, and its memory grew with the number of files
    (measured for issue 21.4: 2,000,000 rows in 8 files peaked at 1,442 MB, in 2 files at 1,047 MB). Coalesced to
    this machine's cores, the files are read that many at a time, each partition after the other, as a folder
    read would be; the rows of one file keep their order (``bronze_mode: latest`` orders by file, then row)."""
    from lakehouse_phi.storage.engines import caps

    out = _union(parts)
    if caps(spark).sail and len(parts) > _cores():
        out = out.coalesce(_cores())
    return out


def _cores() -> int:
    """The cores this process may run on (what the in-process pysail server parallelizes over)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _union(parts: list[Any]) -> Any:
    out = parts[0]
    for part in parts[1:]:
        out = out.unionByName(part, allowMissingColumns=True)
    return out
