"""Unity Catalog column masks and row filters (``shared/design/policy.md``, "Generated SQL"), plus governed tags,
column comments and grants.

Per governed table: the table tag, each governed column's tags and comment, the row filter, then the masks (rows
are restricted before columns, so a half-applied table shows fewer rows, not more). Bronze tables get tags and
comments on every PHI column. A materialized view or streaming table (``kind:``) is altered with its own form.
"""

from __future__ import annotations

from lakehouse_phi.sql.generator import Generator, Statement
from lakehouse_phi.sql.ir import BronzeIR, MaskFunction, TableIR
from lakehouse_phi.sql.quoting import ident


def _using(mask: MaskFunction) -> str:
    """`` USING COLUMNS (…)`` for a mask that reads other columns of the row (``_key_versions``)."""
    cols = mask.using_columns
    return f" USING COLUMNS ({', '.join(ident(c) for c in cols)})" if cols else ""


class Databricks(Generator):
    target = "databricks"

    def govern(self, table: TableIR) -> list[Statement]:
        return self.describe(table) + self.bind(table)

    def describe_bronze(self, table: BronzeIR) -> list[Statement]:
        return self.describe(table)

    def bind(self, table: TableIR) -> list[Statement]:
        alter = self.alter(table)
        out = []
        rf = table.row_filter
        if rf is not None:
            cols = ", ".join(ident(c) for c, _ in rf.params)
            about = f"{table.name} row filter"
            undo = Statement(f"{alter} DROP ROW FILTER", "drop_row_filter", about)
            out.append(Statement(f"{alter} SET ROW FILTER {rf.name.sql()} ON ({cols})", "set_row_filter", about,
                                 undo))
        for m in table.masks:
            about = f"{table.name}.{m.column}"
            undo = Statement(f"{alter} ALTER COLUMN {ident(m.column)} DROP MASK", "drop_mask", about)
            out.append(Statement(f"{alter} ALTER COLUMN {ident(m.column)} SET MASK {m.name.sql()}{_using(m)}",
                                 "set_mask", about, undo))
        return out
