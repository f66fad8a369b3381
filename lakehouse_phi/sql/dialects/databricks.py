"""Unity Catalog column masks and row filters (``shared/design/policy.md``, "Generated SQL")."""

from __future__ import annotations

from lakehouse_phi.sql.generator import Generator, Statement
from lakehouse_phi.sql.ir import MaskFunction, TableIR
from lakehouse_phi.sql.quoting import ident


def _using(mask: MaskFunction) -> str:
    """`` USING COLUMNS (…)`` for a mask that reads other columns of the row (``_key_versions``)."""
    cols = mask.using_columns
    return f" USING COLUMNS ({', '.join(ident(c) for c in cols)})" if cols else ""


class Databricks(Generator):
    target = "databricks"

    def bind(self, table: TableIR) -> list[Statement]:
        t = table.name.sql()
        out = [Statement(f"ALTER TABLE {t} ALTER COLUMN {ident(m.column)} SET MASK {m.name.sql()}{_using(m)}",
                         "set_mask", f"{table.name}.{m.column}") for m in table.masks]
        rf = table.row_filter
        if rf is not None:
            cols = ", ".join(ident(c) for c, _ in rf.params)
            out.append(Statement(f"ALTER TABLE {t} SET ROW FILTER {rf.name.sql()} ON ({cols})", "set_row_filter",
                                 f"{table.name} row filter"))
        return out

    def unbind(self, table: TableIR) -> list[Statement]:
        t = table.name.sql()
        out = [Statement(f"ALTER TABLE {t} ALTER COLUMN {ident(m.column)} DROP MASK", "drop_mask",
                         f"{table.name}.{m.column}") for m in table.masks]
        if table.row_filter is not None:
            out.append(Statement(f"ALTER TABLE {t} DROP ROW FILTER", "drop_row_filter", f"{table.name} row filter"))
        return out
