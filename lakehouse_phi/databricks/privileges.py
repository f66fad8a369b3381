"""What ``apply`` needs the applying principal to hold, checked by ``apply --dry-run --warehouse-id`` through the
Unity Catalog effective-permissions API (``GET /api/2.1/unity-catalog/effective-permissions/{type}/{name}``, direct
and inherited privileges) where the API allows.

Per statement kind (documented requirements):

* ``CREATE FUNCTION``: ``USE CATALOG``, ``USE SCHEMA`` and ``CREATE FUNCTION`` on the function schema;
* ``SET MASK`` / ``SET ROW FILTER`` (and their DROP): ``MANAGE`` on the table, or its ownership;
* ``SET TAGS`` / ``UNSET TAGS``: ``APPLY TAG`` on the table (plus ``ASSIGN`` on a governed tag: an account-level
  permission this API does not show, so it is listed as not checked);
* ``COMMENT ON COLUMN``: ``MODIFY`` on the table;
* ``CREATE POLICY`` / ``DROP POLICY``: ``MANAGE`` on the schema;
* ``GRANT`` / ``REVOKE``: ``MANAGE`` on the securable, or its ownership.

Ownership is not a privilege in that API, so where ``MANAGE`` is missing the owner of the table or schema is read
(``GET …/tables/{name}``, ``…/schemas/{name}``) and compared with the caller (``/api/2.0/preview/scim/v2/Me``). A
securable that does not exist yet (bronze before the first ingest) is reported as such, not as missing privileges.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from lakehouse_phi.sql.compile import Compiled
from lakehouse_phi.sql.generator import Statement
from lakehouse_phi.sql.ir import Name

#: statement kind -> (what it acts on, the privileges it needs there)
NEEDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "set_mask": ("table", ("MANAGE",)), "drop_mask": ("table", ("MANAGE",)),
    "set_row_filter": ("table", ("MANAGE",)), "drop_row_filter": ("table", ("MANAGE",)),
    "set_tags": ("table", ("APPLY_TAG",)), "unset_tags": ("table", ("APPLY_TAG",)),
    "comment": ("table", ("MODIFY",)),
    "create_policy": ("schema", ("MANAGE",)), "drop_policy": ("schema", ("MANAGE",)),
    "grant": ("securable", ("MANAGE",)), "revoke": ("securable", ("MANAGE",)),
}
#: privileges that imply every other one
ALL = {"ALL_PRIVILEGES"}


@dataclass(frozen=True)
class Finding:
    securable_type: str
    name: str
    missing: tuple[str, ...]
    note: str = ""

    def __str__(self) -> str:
        if self.note:
            return f"{self.securable_type} {self.name}: {self.note}"
        return f"{self.securable_type} {self.name}: missing {', '.join(self.missing)}"


def _table_of(st: Statement) -> Name | None:
    """The table an ALTER/COMMENT statement acts on (its ``about`` starts with the table's name)."""
    parts = tuple(st.about.split(" ", 1)[0].split("."))
    return Name(parts[:3]) if len(parts) >= 3 else None


def required(compiled: Compiled) -> dict[tuple[str, str], set[str]]:
    """(securable type, full name) -> the privileges ``apply`` needs there."""
    need: dict[tuple[str, str], set[str]] = {}

    def add(kind: str, name: Name | str, privileges: Iterable[str]) -> None:
        need.setdefault((kind, str(name).lower()), set()).update(privileges)

    fs = compiled.ir.function_schema
    if len(fs.parts) == 2:
        add("catalog", fs.parts[0], ["USE_CATALOG"])
        add("schema", fs, ["USE_SCHEMA", "CREATE_FUNCTION"])
    for st in compiled.apply:
        what = NEEDS.get(st.kind)
        if what is None:
            continue
        target, privileges = what
        if target == "securable" and st.grant is not None:
            kind = {"VIEW": "table"}.get(st.grant.securable, st.grant.securable.lower())
            add(kind, st.grant.name, privileges)
        elif target == "table" and (table := _table_of(st)) is not None:
            add("table", table, privileges)
            add("catalog", table.parts[0], ["USE_CATALOG"])
            add("schema", Name(table.parts[:2]), ["USE_SCHEMA"])
        elif target == "schema":
            scope = st.sql.split(" ON SCHEMA ", 1)[1].split("\n", 1)[0]
            add("schema", ".".join(p.strip("`") for p in scope.split("`.`")), privileges)
    return need


def _held(client: Any, kind: str, name: str, me: str) -> set[str] | None:
    """Effective privileges of ``me`` on the securable; None when it does not exist."""
    from databricks.sdk.errors import NotFound

    try:
        got = client.grants.get_effective(kind, name, principal=me)
    except NotFound:
        return None
    out: set[str] = set()
    for a in got.privilege_assignments or []:
        for p in a.privileges or []:
            if p.privilege is not None:
                out.add(str(getattr(p.privilege, "value", p.privilege)).upper())
    return out


def _owner(client: Any, kind: str, name: str) -> str | None:
    try:
        info = client.tables.get(name) if kind == "table" else client.schemas.get(name) if kind == "schema" else \
            client.catalogs.get(name)
    except Exception:  # noqa: BLE001 - unknown owner: the finding stands
        return None
    return getattr(info, "owner", None)


def check(client: Any, compiled: Compiled) -> list[Finding]:
    """Every securable where the caller lacks a privilege ``apply`` needs (empty: nothing found missing)."""
    me = client.current_user.me().user_name
    out: list[Finding] = []
    for (kind, name), privileges in sorted(required(compiled).items()):
        held = _held(client, kind, name, me)
        if held is None:
            out.append(Finding(kind, name, (), "does not exist yet (statements on it wait until it does)"))
            continue
        if held & ALL:
            continue
        missing = sorted(p for p in privileges if p not in held)
        if missing == ["MANAGE"] and _owner(client, kind, name) == me:
            continue  # the owner may do what MANAGE allows
        if missing:
            out.append(Finding(kind, name, tuple(missing)))
    if any(st.kind == "governed_tag" for st in compiled.apply):
        out.append(Finding("governed tags", ", ".join(sorted({st.about.split()[-1] for st in compiled.apply
                                                               if st.kind == "governed_tag"})), (),
                           "ASSIGN (and CREATE or MANAGE) on governed tags is account-level: not checked here"))
    return out
