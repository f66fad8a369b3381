"""A Spark result as Arrow record batches in bounded memory, for writers that are not Spark (delta-rs).

``DataFrame.toArrow()`` holds a whole result in the driver (and, on classic Spark, each task's Arrow result in the
JVM first), so a run was bounded by one machine's RAM. :func:`spooled` instead:

* where the engine's executors write this machine's filesystem (a ``local[...]`` master, this process's pysail
  server: :attr:`EngineCaps.local_files`), Spark writes the result once as Parquet into a temporary folder, in
  parallel and spilling as it needs; :meth:`Spool.reader` then streams it back batch by batch (pyarrow datasets),
  as often as a retried commit needs it, and the folder is removed on exit;
* elsewhere, the rows come to the driver partition by partition (``toLocalIterator``) and are re-batched.

Either way the driver holds one batch (:data:`BATCH_ROWS` rows) at a time.

Hash buckets (``bucket_by``) on a local engine: Spark writes the rows once with their bucket number, as plain
Parquet, and the driver splits that into one folder per bucket, :data:`SPLIT_ROWS` rows at a time. Spark's own
``partitionBy`` would keep one open file per bucket: pysail's writer buffers every open file until the write ends
(about 30 MB each), so with a bucket per :data:`BUCKET_ROWS` rows its memory grew with the rows (issue 21.4).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pyarrow as pa

from lakehouse_phi.storage import sqltext
from lakehouse_phi.storage.engines import caps

#: rows per Arrow batch handed to the writer
BATCH_ROWS = 65_536
#: rows per hash bucket of :func:`spooled` with ``bucket_by`` (what the driver holds at once)
BUCKET_ROWS = 100_000
BUCKET_COL = "__lhp_bucket"
#: rows the driver reads at a time when it splits written rows into bucket folders
SPLIT_ROWS = 131_072
#: bucket files the split keeps open at once (more buckets: a bucket gets one more file when it comes back)
OPEN_BUCKET_FILES = 128
#: the bucket files' format (Arrow IPC with zstd wrote about 40% faster, but the delta-rs write that reads the
#: buckets back then peaked about 200 MB higher at 1,000,000 rows)
BUCKET_FORMAT = "parquet"
#: Spark writes timestamps as INT96 by default; micros keep the time zone-aware Arrow type delta-rs expects
TIMESTAMP_CONF = ("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")


class Spool:
    """The rows of one result, re-readable as a stream."""

    def __init__(self, schema: pa.Schema, num_rows: int) -> None:
        self.schema, self.num_rows = schema, num_rows

    def reader(self, per_bucket: Callable[[pa.Table], pa.Table] | None = None,
               schema: pa.Schema | None = None) -> pa.RecordBatchReader:  # pragma: no cover - overridden
        raise NotImplementedError


class ParquetSpool(Spool):
    def __init__(self, folder: str) -> None:
        import pyarrow.dataset as ds

        self.folder = folder
        self._dataset = ds.dataset(folder, format="parquet")
        super().__init__(self._dataset.schema, self._dataset.count_rows())

    def reader(self, per_bucket: Callable[[pa.Table], pa.Table] | None = None,
               schema: pa.Schema | None = None) -> pa.RecordBatchReader:
        if per_bucket is not None:  # one bucket: the whole spool
            table = per_bucket(self._dataset.to_table())
            return pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=BATCH_ROWS))
        return pa.RecordBatchReader.from_batches(self.schema, _batches(self._dataset, BATCH_ROWS))


class BucketedSpool(Spool):
    """Rows written in hash buckets of the ``bucket_by`` columns (one folder each): every row sharing those values
    is in one bucket, so a per-bucket step (deduplication, choosing one version per key) sees all of them while
    the driver holds one bucket at a time."""

    def __init__(self, folder: str, schema: pa.Schema, num_rows: int) -> None:
        self.folder = folder
        super().__init__(schema, num_rows)

    def _folders(self) -> list[str]:
        return [os.path.join(self.folder, n) for n in sorted(os.listdir(self.folder)) if n.startswith(BUCKET_COL + "=")]

    def buckets(self) -> Iterator[pa.Table]:
        import pyarrow.dataset as ds

        for folder in self._folders():
            table = ds.dataset(folder, format=BUCKET_FORMAT).to_table()
            yield table.cast(self.schema) if table.schema != self.schema else table

    def count_rows(self) -> int:
        """The rows the bucket files hold, counted from the files."""
        import pyarrow.dataset as ds

        return sum(int(ds.dataset(folder, format=BUCKET_FORMAT).count_rows()) for folder in self._folders())

    def reader(self, per_bucket: Callable[[pa.Table], pa.Table] | None = None,
               schema: pa.Schema | None = None) -> pa.RecordBatchReader:
        """The rows, bucket by bucket, each bucket passed through ``per_bucket`` (whose output has ``schema``)."""
        def batches() -> Iterator[pa.RecordBatch]:
            for table in self.buckets():
                out = per_bucket(table) if per_bucket is not None else table
                yield from out.to_batches(max_chunksize=BATCH_ROWS)

        return pa.RecordBatchReader.from_batches(schema or self.schema, batches())


class RowsSpool(Spool):
    """Rows brought to the driver partition by partition; each :meth:`reader` runs the query again."""

    def __init__(self, df: Any, schema: pa.Schema) -> None:
        self.df = df
        super().__init__(schema, int(df.count()))

    def reader(self, per_bucket: Callable[[pa.Table], pa.Table] | None = None,
               schema: pa.Schema | None = None) -> pa.RecordBatchReader:
        names = self.schema.names
        if per_bucket is not None:  # one bucket: every row (this fallback is not bounded)
            table = per_bucket(pa.Table.from_batches(list(self.reader()), schema=self.schema))
            return pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=BATCH_ROWS))

        def batches() -> Iterator[pa.RecordBatch]:
            rows: list[dict] = []
            for row in self.df.toLocalIterator():
                rows.append(dict(zip(names, row)))
                if len(rows) == BATCH_ROWS:
                    yield pa.RecordBatch.from_pylist(rows, schema=self.schema)
                    rows = []
            if rows:
                yield pa.RecordBatch.from_pylist(rows, schema=self.schema)

        return pa.RecordBatchReader.from_batches(self.schema, batches())


def _arrow_schema(df: Any) -> pa.Schema:
    from pyspark.sql.pandas.types import to_arrow_schema

    return to_arrow_schema(df.schema, timezone="UTC")


@contextlib.contextmanager
def _conf(spark: Any, key: str, value: str) -> Iterator[None]:
    try:
        before = spark.conf.get(key, None)
        spark.conf.set(key, value)
    except Exception:  # noqa: BLE001 - an engine without this setting writes its own default
        yield
        return
    try:
        yield
    finally:
        if before is None:
            spark.conf.unset(key)
        else:
            spark.conf.set(key, before)


@contextlib.contextmanager
def spooled(df: Any, folder: str | None = None, *, bucket_by: Sequence[str] | None = None,
            rows: int | None = None) -> Iterator[Any]:
    """``df`` evaluated once into a :class:`Spool` (see the module docstring); ``folder``: where the temporary
    folder goes (default: the system's temporary directory). ``bucket_by``: write hash buckets of about
    :data:`BUCKET_ROWS` rows (``rows``: how many ``df`` has, if known) as a :class:`BucketedSpool` (local engines;
    elsewhere the rows come back as one bucket)."""
    spark = df.sparkSession
    if not caps(spark).local_files:
        yield RowsSpool(df, _arrow_schema(df))
        return
    tmp = tempfile.mkdtemp(prefix="lakehouse-phi-spool-", dir=folder)
    try:
        path = os.path.join(tmp, "rows")
        with _conf(spark, *TIMESTAMP_CONF):
            if bucket_by:
                n = int(df.count()) if rows is None else rows
                count = max(1, -(-n // BUCKET_ROWS))
                keys = ", ".join(sqltext.ident(c) for c in bucket_by)
                written = os.path.join(tmp, "written")
                (df.selectExpr("*", f"pmod(hash({keys}), {count}) AS {BUCKET_COL}")
                 .write.mode("error").parquet("file://" + written))
                split_schema = _split_buckets(written, path)
                shutil.rmtree(written, ignore_errors=True)
            else:
                df.write.mode("error").parquet("file://" + path)
        if bucket_by:
            os.makedirs(path, exist_ok=True)
            yield BucketedSpool(path, split_schema or _arrow_schema(df), n)
        else:
            yield ParquetSpool(path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _split_buckets(written: str, folder: str) -> pa.Schema | None:
    """The rows under ``written`` (Parquet, with :data:`BUCKET_COL`) into ``folder/<BUCKET_COL>=<n>/`` as
    :data:`BUCKET_FORMAT` files without that column, read :data:`SPLIT_ROWS` at a time, at most
    :data:`OPEN_BUCKET_FILES` files open; returns their schema (``None``: no data files were written)."""
    import collections

    import numpy as np
    import pyarrow.compute as pc
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    if not os.path.isdir(written):  # an engine that writes nothing for no rows
        return None
    source = ds.dataset(written, format="parquet")
    if BUCKET_COL not in source.schema.names:  # no data files: nothing to split
        return None
    schema = pa.schema([f for f in source.schema if f.name != BUCKET_COL])
    open_files: collections.OrderedDict[int, pq.ParquetWriter] = collections.OrderedDict()
    files: collections.Counter[int] = collections.Counter()
    try:
        for batch in _batches(source, SPLIT_ROWS):
            batch = batch.take(pc.sort_indices(batch.column(BUCKET_COL)))
            buckets = batch.column(BUCKET_COL).to_numpy(zero_copy_only=False)
            rows = batch.select(schema.names)
            starts = np.flatnonzero(np.diff(buckets)) + 1
            for start, end in zip([0, *starts.tolist()], [*starts.tolist(), len(buckets)]):
                bucket = int(buckets[start])
                writer = open_files.pop(bucket, None)
                if writer is None:
                    if len(open_files) >= OPEN_BUCKET_FILES:
                        open_files.popitem(last=False)[1].close()
                    sub = os.path.join(folder, f"{BUCKET_COL}={bucket}")
                    os.makedirs(sub, exist_ok=True)
                    writer = pq.ParquetWriter(os.path.join(sub, f"part-{files[bucket]:05d}.parquet"), schema)
                    files[bucket] += 1
                open_files[bucket] = writer  # most recently used last
                writer.write_batch(rows.slice(start, end - start))
    finally:
        for writer in open_files.values():
            writer.close()
    return schema


def _batches(dataset: Any, rows: int) -> Iterator[pa.RecordBatch]:
    """The non-empty batches of a Parquet dataset, file after file, at most ``rows`` rows each and each read only
    when asked for. (A ``pyarrow.dataset`` scanner reads on ahead of a slower consumer whatever its readahead
    settings: streaming 4,000,000 rows to a writer it held about 1 GB.)"""
    import pyarrow.parquet as pq

    for path in dataset.files:
        with pq.ParquetFile(path) as f:
            for batch in f.iter_batches(batch_size=rows):
                if batch.num_rows:
                    yield batch if batch.schema == dataset.schema else batch.cast(dataset.schema)
