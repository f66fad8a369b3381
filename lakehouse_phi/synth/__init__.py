"""Synthetic landing data for the worked example (``conf/policy.yaml``): patients, encounters with clinical notes,
claims — deterministic by seed, vectorized, with optional malformed rows and labeled identifiers in notes.

Public API::

    generate(table, rows, seed=0, malformed_rate=0.0, patients=None) -> pa.Table
    generate_table(...) -> Generated(table, defects)          # defects: row, column, kind
    generate_all(patients=1000, encounters=None, claims=None, seed=0, malformed_rate=0.0) -> dict[str, pa.Table]
    inject(table, column, value, rows, *, embed=False) -> pa.Table   # sentinels for leak tests
    write_landing(root, rows=1000, seed=0, malformed_rate=0.01) -> dict[str, Path]
    write_tables(root, {table: pa.Table | [pa.Table, ...]}) -> dict[str, Path]
    labeled_notes(n, seed=0) -> (list[str], list[list[(start, end, detector)]])
"""

from lakehouse_phi.synth.landing import LANDING, json_lines, write_landing, write_tables
from lakehouse_phi.synth.notes import IDENTIFIER_KINDS, NoteLabels, generate_notes, labeled_notes
from lakehouse_phi.synth.tables import (
    CHUNK_ROWS,
    COLUMNS,
    DEFECT_KINDS,
    REFERENCE_DATE,
    TABLES,
    Generated,
    generate,
    generate_all,
    generate_table,
    inject,
)

__all__ = [
    "CHUNK_ROWS", "COLUMNS", "DEFECT_KINDS", "IDENTIFIER_KINDS", "LANDING", "REFERENCE_DATE", "TABLES", "Generated",
    "NoteLabels", "generate", "generate_all", "generate_notes", "generate_table", "inject", "json_lines",
    "labeled_notes", "write_landing", "write_tables",
]
