"""Profile a source with Spark: the whole column where it is cheap (row and null counts, and which candidate patterns
every value fits, in one aggregation of ``rlike`` counts), and a sample of values for the detectors (the first
``sample_rows`` rows, collected to the driver as text and never written anywhere).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lakehouse_phi.errors import UsageError
from lakehouse_phi.suggest.classify import ColumnProfile, candidate_patterns, detector_shares

SOURCE_FORMATS = ("csv", "json", "parquet")


def source_format(source: str, given: str | None) -> str:
    """``given``, else the format of the source's files by their extension (a file, or the files of a folder),
    else csv."""
    if given:
        return given
    path = Path(source)
    names = [path.name] if path.is_file() else [f.name for f in path.glob("*") if f.is_file()] if path.is_dir() else []
    for ext, fmt in ((".parquet", "parquet"), (".json", "json"), (".jsonl", "json"), (".ndjson", "json"),
                     (".csv", "csv")):
        if any(n.lower().endswith(ext) for n in names):
            return fmt
    return "csv"


def read_source(spark: Any, path: str, fmt: str) -> Any:
    """The source as Spark reads it: CSV with a header row and every column as text (types are inferred from the
    values, so a ZIP's leading zero stays); JSON Lines and Parquet with their own types."""
    if fmt not in SOURCE_FORMATS:
        raise UsageError(f"--format {fmt!r}; allowed: {', '.join(SOURCE_FORMATS)}", place="--format")
    reader = spark.read.format(fmt)
    if fmt == "csv":
        reader = reader.option("header", "true").option("inferSchema", "false")
    return reader.load(path)


def check_headers(columns: list[str]) -> None:
    """Refuse a header that is itself an identifier (a file without a header row makes its first row the header):
    the draft would carry it. The message names the column by position and the detector, never the header."""
    for i, name in enumerate(columns):
        _, contains, _ = detector_shares([name])
        if contains:
            kinds = ", ".join(sorted(t.lower() for t in contains))
            raise UsageError(f"column #{i + 1}'s header looks like data ({kinds}): the source may have no header "
                             "row, so its first row would become column names; add a header row (or rename the "
                             "column) and run suggest again. The header is not shown", place="SOURCE")


def profile_source(spark: Any, path: str, fmt: str, sample_rows: int = 10_000) -> list[ColumnProfile]:
    """Every column of the source: counts and pattern fits over the whole column, sampled values for the
    detectors."""
    from lakehouse_phi.spark.session import functions

    F = functions(spark)
    df = read_source(spark, path, fmt)
    columns = list(df.columns)
    if not columns:
        raise UsageError(f"{path}: no columns found; check --format and the path", place="SOURCE")
    check_headers(columns)
    types = {f.name: f.dataType.simpleString() for f in df.schema.fields}
    text = {c: F.col(f"`{c}`").cast("string") for c in columns}
    rows = df.select(*[text[c].alias(f"c{i}") for i, c in enumerate(columns)]).limit(sample_rows).collect()
    profiles = []
    for i, c in enumerate(columns):
        sample = [str(r[f"c{i}"]).strip() for r in rows if r[f"c{i}"] is not None and str(r[f"c{i}"]).strip()]
        profiles.append(ColumnProfile(name=c, spark_type=types[c], rows=0, non_null=0, sample=sample))
    aggs = [F.count(F.lit(1)).alias("_rows")]
    checks: list[tuple[int, str, str]] = []
    for i, p in enumerate(profiles):
        aggs.append(F.count(text[p.name]).alias(f"n{i}"))
        for j, pattern in enumerate(candidate_patterns(p)):
            alias = f"f{i}_{j}"
            aggs.append(F.sum(F.when(F.trim(text[p.name]).rlike(pattern), 1).otherwise(0)).alias(alias))
            checks.append((i, pattern, alias))
    totals = df.agg(*aggs).collect()[0]
    for i, p in enumerate(profiles):
        p.rows, p.non_null = int(totals["_rows"]), int(totals[f"n{i}"])
    for i, pattern, alias in checks:
        p = profiles[i]
        fit = int(totals[alias] or 0)
        p.fits[pattern] = fit / p.non_null if p.non_null else 0.0
    return profiles
