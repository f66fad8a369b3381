"""Write synthetic tables into a landing zone laid out like ``conf/policy.yaml``'s ``source.path`` entries.

``patients`` -> CSV with a header, ``encounters`` -> JSON lines, ``claims`` -> Parquet; one ``part-NNNNN`` file per
generated batch of at most :data:`~lakehouse_phi.synth.tables.CHUNK_ROWS` rows.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from lakehouse_phi.synth.tables import TABLES, generate

#: Table -> (directory under the root, file format, file suffix), as in conf/policy.yaml.
LANDING: dict[str, tuple[str, str, str]] = {
    "patients": ("landing/patients", "csv", ".csv"),
    "encounters": ("landing/encounters", "json", ".json"),
    "claims": ("landing/claims", "parquet", ".parquet"),
}

_CONTROL = r"[\x00-\x08\x0b\x0c\x0e-\x1f]"  # control characters without a short JSON escape
_NEEDS_ESCAPE = r'[\x00-\x1f"\\]'


def _json_string(col: pa.Array) -> pa.Array:
    """JSON string literals (with quotes) for a string column; NULL -> ``null``."""
    if not pc.any(pc.match_substring_regex(col, _NEEDS_ESCAPE)).as_py():
        esc = col  # the common case: ids, dates, generated notes
    elif pc.any(pc.match_substring_regex(col, _CONTROL)).as_py():
        return pa.array(["null" if v is None else json.dumps(v, ensure_ascii=False) for v in col.to_pylist()])
    else:
        esc = col
        for old, new in (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t")):
            esc = pc.replace_substring(esc, old, new)
    return pc.fill_null(pc.binary_join_element_wise('"', esc, '"', ""), "null")


def json_lines(batch: pa.RecordBatch | pa.Table) -> bytes:
    """One JSON object per row, vectorized (string columns escaped, integer columns as numbers)."""
    parts: list[pa.Array | str] = []
    for i, name in enumerate(batch.column_names):
        col = batch.column(i)
        col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
        if pa.types.is_integer(col.type):
            lit = pc.fill_null(col.cast(pa.string()), "null")
        elif pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            lit = _json_string(col.cast(pa.string()))
        else:
            raise TypeError(f"synth.json_lines: column {name!r} has type {col.type}; only strings and integers")
        parts += [("{" if i == 0 else ",") + json.dumps(name) + ":", lit]
    if not parts:
        return b""
    lines = pc.binary_join_element_wise(*parts, "}\n", "")
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)
    start, end = int(offsets[lines.offset]), int(offsets[lines.offset + len(lines)])
    return bytes(memoryview(lines.buffers()[2])[start:end])


def _write(fmt: str, data: pa.Table, path: Path) -> None:
    if fmt == "csv":
        pacsv.write_csv(data, path, pacsv.WriteOptions(include_header=True))
    elif fmt == "json":
        with open(path, "wb") as f:
            for batch in data.to_batches():
                f.write(json_lines(batch))
    else:
        pq.write_table(data, path)


def _clear(directory: Path, suffix: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob(f"part-*{suffix}"):
        old.unlink()


def write_tables(root: Path | str, tables: Mapping[str, pa.Table | Iterable[pa.Table]]) -> dict[str, Path]:
    """Write given tables (e.g. after :func:`~lakehouse_phi.synth.tables.inject`) under ``root``; a value may be
    one table or an iterable of parts. Earlier ``part-*`` files of the same format there are removed first.
    Returns table -> directory."""
    out: dict[str, Path] = {}
    for name, data in tables.items():
        if name not in LANDING:
            raise ValueError(f"synth.write_tables: unknown table {name!r}; use one of {', '.join(TABLES)}")
        sub, fmt, suffix = LANDING[name]
        directory = Path(root) / sub
        _clear(directory, suffix)
        for i, part in enumerate([data] if isinstance(data, pa.Table) else data):
            _write(fmt, part, directory / f"part-{i:05d}{suffix}")
        out[name] = directory
    return out


def write_landing(root: Path | str, rows: Mapping[str, int] | int = 1000, seed: int = 0,
                  malformed_rate: float = 0.01) -> dict[str, Path]:
    """Generate and write all three tables under ``root/landing/``.

    Args:
        root: the directory that ``conf/policy.yaml``'s ``source.path`` entries are relative to.
        rows: rows per table, or a number of patients (then 3 encounters and 2 claims per patient).
        seed: as in :func:`~lakehouse_phi.synth.tables.generate`.
        malformed_rate: fraction of rows of each table with one defect.
    """
    counts = dict(rows) if isinstance(rows, Mapping) else {"patients": rows, "encounters": 3 * rows,
                                                            "claims": 2 * rows}
    patients = counts.get("patients", 1000)
    tables = {name: generate(name, n, seed, malformed_rate, patients=None if name == "patients" else patients)
              for name, n in counts.items()}
    return write_tables(root, {name: [pa.Table.from_batches([b]) for b in t.to_batches()] or [t]
                               for name, t in tables.items()})
