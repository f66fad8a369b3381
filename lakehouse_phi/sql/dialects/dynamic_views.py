"""Dynamic views, for workspaces and engines without Unity Catalog masks: the same functions, applied in
``CREATE OR REPLACE VIEW <table>_governed`` (same catalog and schema) with the row filter as its ``WHERE``.

The policy does not list a table's unmasked columns, so the view selects ``* EXCEPT (masked columns)`` followed by
each masked column through its function (Databricks SQL and open-source Spark 4 both support ``* EXCEPT``): the
masked columns move to the end of the view's column list. The row filter reads the table's own (unmasked) values,
as a Unity Catalog row filter does.

A view protects nothing while readers can still read its table: a ``select`` grant on a governed table becomes
SELECT on the view plus a REVOKE of SELECT on the table (never undone: a rollback must not hand the raw table back).
"""

from __future__ import annotations

from lakehouse_phi.sql.generator import Generator, Privileges, Statement
from lakehouse_phi.sql.ir import GrantIR, Name, TableIR
from lakehouse_phi.sql.quoting import ident

#: appended to the governed table's name
VIEW_SUFFIX = "_governed"


def view_name(table: Name) -> Name:
    return Name(table.parts[:-1] + (table.leaf + VIEW_SUFFIX,))


class DynamicViews(Generator):
    target = "dynamic-views"

    def govern(self, table: TableIR) -> list[Statement]:
        select = "*"
        if table.masks:
            masked = ", ".join(ident(m.column) for m in table.masks)
            calls = "".join(f",\n  {self.call(m.name, [c for c, _ in m.params])} AS {ident(m.column)}"
                            for m in table.masks)
            select = f"* EXCEPT ({masked}){calls}"
        sql = f"CREATE OR REPLACE VIEW {view_name(table.name).sql()} AS\nSELECT {select}\nFROM {table.name.sql()}"
        rf = table.row_filter
        if rf is not None:
            sql += f"\nWHERE {self.call(rf.name, [c for c, _ in rf.params])}"
        about = f"{table.name} governed view"
        undo = Statement(f"DROP VIEW IF EXISTS {view_name(table.name).sql()}", "drop_view", about)
        return [Statement(sql, "create_view", about, undo)]

    def grant_table(self, g: GrantIR) -> list[Statement]:
        lowered = tuple(p.lower() for p in g.table.parts)
        governed = self.ir is not None and any(tuple(p.lower() for p in t.name.parts) == lowered
                                               for t in self.ir.tables)
        if not governed or g.privileges != ("SELECT",):
            return super().grant_table(g)
        view, who = view_name(g.table), ident(g.principal)
        about = f"{g.principal} on {view}"
        undo = Statement(f"REVOKE SELECT ON VIEW {view.sql()} FROM {who}", "revoke", about)
        # the protective REVOKE first (Generator.apply also runs every REVOKE before any GRANT)
        return [Statement(f"REVOKE SELECT ON TABLE {g.table.sql()} FROM {who}", "revoke",
                          f"{g.principal} on {g.table} (readers get the view)"),
                Statement(f"GRANT SELECT ON VIEW {view.sql()} TO {who}", "grant", about, undo,
                          grant=Privileges("VIEW", view, g.principal, ("SELECT",)))]
