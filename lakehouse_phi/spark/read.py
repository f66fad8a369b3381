"""Reading the landing data: the source files with a ``_source_file`` column."""

from __future__ import annotations

import glob
import os
from collections.abc import Mapping
from typing import Any

from lakehouse_phi.engine.plan import SOURCE_FILE_COL
from lakehouse_phi.errors import JobRefused
from lakehouse_phi.spark.session import functions
from lakehouse_phi.spark.targets import _local, _spark_error

def read_source(spark: Any, fmt: str, path: str, options: Mapping[str, str]) -> Any:
    """Read the landing data with a ``_source_file`` column (``_metadata.file_path`` where the engine has it,
    else one read per file, tagged). Raises :class:`JobRefused` naming the path and the Spark error class."""
    fix = "check source.path and source.format, or pass --input"
    local = _local(path)
    if local is not None and not glob.glob(local):
        raise JobRefused(f"cannot read the source {path!r}: no such file or directory; {fix}")
    reader = spark.read.format(fmt).options(**options)
    try:
        df = reader.load(path)
        columns = df.columns
    except Exception as exc:
        raise JobRefused(f"cannot read the source {path!r} as {fmt} ({_spark_error(exc)}); {fix}") from None
    if not columns:  # some engines read a missing or empty location as an empty frame
        raise JobRefused(f"cannot read the source {path!r} as {fmt}: no columns (empty or missing); {fix}")
    F = functions(spark)
    try:
        tagged = df.select("*", F.col("_metadata.file_path").alias(SOURCE_FILE_COL))
        tagged.schema  # noqa: B018 - forces analysis on Spark Connect
        return tagged, columns
    except Exception:
        pass
    files = sorted(f for f in glob.glob(os.path.join(local, "**", "*"), recursive=True)
                   if os.path.isfile(f) and not os.path.basename(f).startswith(("_", ".")))
    if local is None or not files:
        return df.withColumn(SOURCE_FILE_COL, F.lit(None).cast("string")), columns
    parts = [spark.read.format(fmt).options(**options).load(f)
             .withColumn(SOURCE_FILE_COL, F.lit("file:" + os.path.abspath(f)))
             for f in files]
    out = parts[0]
    for part in parts[1:]:
        out = out.unionByName(part, allowMissingColumns=True)
    return out, columns
