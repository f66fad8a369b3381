"""Attribute-based access control: the same functions, bound by tag through ``CREATE POLICY`` on the governed
table's schema instead of per-table ``SET MASK`` / ``SET ROW FILTER``.

Every governed column is tagged with the function that masks it (``phi_mask = 'mask_patients_ssn'``, beside the
``phi`` category and ``phi_protection`` tags of the ``databricks`` target), and every row-filter column with its
place in the filter's arguments (``phi_filter_arg = 'filter_patients__state'``). One policy per function then
matches on those tags, so a table that is tagged later (or by hand) is governed the moment it is tagged, and a table
owner cannot drop the policy. The bodies keep their ``CASE`` (first matching rule wins), so every policy is ``TO
`account users``` ``EXCEPT`` the policy's ``governance.except`` principals (pipeline run-as identities, which must not
bake masked values into downstream tables). Rollback drops the policies (``DROP POLICY … ON SCHEMA …``) before the
tags and the functions.

ABAC matches governed tags only, and a governed tag without allowed values is key-only (every valued ``SET TAGS``
is rejected), so ``apply`` first creates each tag key this target sets with the values it sets
(``CREATE GOVERNED TAG k DESCRIPTION … VALUES (…)``; when the tag exists, ``ALTER GOVERNED TAG k SET VALUES (…)``).

Needs Databricks Runtime 16.4+ or serverless for every reader, ``MANAGE`` on the schema, ``APPLY TAG`` on the tables,
``ASSIGN`` on the governed tags (and the account-level ``CREATE`` for governed tags, or ``MANAGE`` on them; see the
README).
"""

from __future__ import annotations

import re

from lakehouse_phi.sql.dialects.databricks import Databricks
from lakehouse_phi.sql.generator import TAG_MASK, TAG_PHI, TAG_POLICY, TAG_PROTECTION, Statement
from lakehouse_phi.sql.ir import MaskFunction, Name, PolicyIR, RowFilterFunction, TableIR
from lakehouse_phi.sql.quoting import ident, string

TAG_FILTER_ARG = "phi_filter_arg"
#: characters a governed tag key or value may not contain (governed tags reference)
GOVERNED_TAG_FORBIDDEN = re.compile(r"[*./<>%&?\\=]")
#: what each governed tag key means (its DESCRIPTION)
TAG_DESCRIPTIONS = {
    TAG_PHI: "PHI category of a column", TAG_PROTECTION: "how ingest protects a column",
    TAG_MASK: "the function that masks a column (matched by ABAC policies)",
    TAG_FILTER_ARG: "the place of a column among the arguments of a row filter (matched by ABAC policies)",
    TAG_POLICY: "the lakehouse-phi policy governing a table",
}
#: who a policy applies to: everyone; the function body decides per group
PRINCIPALS = "`account users`"
#: prefix of the policy names (one per function: ``lhp_mask_patients_ssn``)
POLICY_PREFIX = "lhp_"


def filter_arg(fn: RowFilterFunction, column: str) -> str:
    """The ``phi_filter_arg`` tag value of ``column`` as an argument of ``fn``."""
    return f"{fn.name.leaf}__{column.lower()}"


def except_clause(ir: PolicyIR | None) -> str:
    """``\n  EXCEPT `a`, `b``` for the policy's ``governance.except`` principals (empty when none)."""
    if ir is None or not ir.excepted:
        return ""
    return "\n  EXCEPT " + ", ".join(ident(p) for p in ir.excepted)


class DatabricksAbac(Databricks):
    target = "databricks-abac"

    def prerequisites(self, ir: PolicyIR) -> list[Statement]:
        """Each tag key this target sets, as a governed tag whose allowed values are exactly the values set (sorted,
        so the output is deterministic); never dropped by a rollback (the tags are account-level)."""
        values: dict[str, set[str]] = {}
        for st in self.tag_statements(ir):
            for key, value in st:
                values.setdefault(key, set()).add(value)
        out = []
        for key in sorted(values):
            bad = sorted(v for v in values[key] if GOVERNED_TAG_FORBIDDEN.search(v))
            if bad:
                raise ValueError(f"governed tag {key}: the value(s) {', '.join(map(repr, bad))} contain a character "
                                 "a governed tag value may not hold (* . / < > % & ? \\ =); rename (the policy name "
                                 "is the lakehouse_phi_policy value)")
            listed = ", ".join(string(v) for v in sorted(values[key]))
            about = f"governed tag {key}"
            update = Statement(f"ALTER GOVERNED TAG {ident(key)} SET VALUES ({listed})", "governed_tag", about)
            out.append(Statement(f"CREATE GOVERNED TAG {ident(key)} DESCRIPTION "
                                 f"{string(f'lakehouse-phi: {TAG_DESCRIPTIONS[key]}')} VALUES ({listed})",
                                 "governed_tag", about, if_exists=update))
        return out

    def tag_statements(self, ir: PolicyIR) -> list[list[tuple[str, str]]]:
        """The (key, value) pairs of every SET TAGS this target emits, read from its own ``describe``."""
        pairs: list[list[tuple[str, str]]] = []
        saved, self.ir = self.ir, ir
        try:
            tables = [*(self.govern_tags(t) for t in ir.tables), *(self.describe(b) for b in ir.bronze)]
        finally:
            self.ir = saved
        for statements in tables:
            for st in statements:
                if st.kind == "set_tags" and st.tags:
                    pairs.append(list(st.tags))
        return pairs

    def govern_tags(self, table: TableIR) -> list[Statement]:
        return self.describe(table, self.filter_tags(table))

    @staticmethod
    def filter_tags(table: TableIR) -> dict[str, dict[str, str]]:
        extra: dict[str, dict[str, str]] = {}
        if table.row_filter is not None:
            for col, _ in table.row_filter.params:
                extra.setdefault(col, {})[TAG_FILTER_ARG] = filter_arg(table.row_filter, col)
        return extra

    def govern(self, table: TableIR) -> list[Statement]:
        policies = [self.policy(table, m) for m in table.masks]
        if table.row_filter is not None:
            policies.insert(0, self.policy(table, table.row_filter))
        return self.govern_tags(table) + policies

    @staticmethod
    def scope(table: TableIR) -> Name:
        """The schema a table's policies are created on."""
        if len(table.name.parts) < 2:
            raise ValueError(f"{table.name}: the databricks-abac target needs SCHEMA.TABLE or CATALOG.SCHEMA.TABLE")
        return Name(table.name.parts[:-1])

    def policy(self, table: TableIR, fn: MaskFunction | RowFilterFunction) -> Statement:
        assert self.ir is not None
        name, scope = ident(POLICY_PREFIX + fn.name.leaf), f"ON SCHEMA {self.scope(table).sql()}"
        if isinstance(fn, MaskFunction):
            if fn.using_columns:  # a decrypt mask over key versions reads the row's _key_versions too
                raise ValueError(f"{table.name}.{fn.column}: its decrypt mask picks the key by _key_versions (the key "
                                 "has previous versions), which a tag-matched ABAC policy does not pass yet; use "
                                 "--target databricks for this table")
            about = f"{table.name}.{fn.column} mask policy"
            body = (f"COLUMN MASK {fn.name.sql()}\n  TO {PRINCIPALS}{except_clause(self.ir)}\n  FOR TABLES\n"
                    f"  MATCH COLUMNS hasTagValue({string(TAG_MASK)}, {string(fn.name.leaf)}) AS `c`\n"
                    "  ON COLUMN `c`")
        else:
            about = f"{table.name} row filter policy"
            aliases = [f"`a{i}`" for i in range(1, len(fn.params) + 1)]
            matches = ", ".join(f"hasTagValue({string(TAG_FILTER_ARG)}, {string(filter_arg(fn, col))}) AS {a}"
                                for (col, _), a in zip(fn.params, aliases))
            body = (f"ROW FILTER {fn.name.sql()}\n  TO {PRINCIPALS}{except_clause(self.ir)}\n  FOR TABLES\n"
                    f"  MATCH COLUMNS {matches}\n"
                    f"  USING COLUMNS ({', '.join(aliases)})")
        comment = string(f"lakehouse-phi {self.ir.policy_name} sha256:{self.ir.sha256[:12]}: {about}")
        undo = Statement(f"DROP POLICY {name} {scope}", "drop_policy", about)
        return Statement(f"CREATE OR REPLACE POLICY {name} {scope}\n  COMMENT {comment}\n  {body}", "create_policy",
                         about, undo)
