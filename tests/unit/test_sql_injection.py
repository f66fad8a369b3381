"""Injection attempts against the compiler: each is rejected with exit 2 naming its place, or quoted so it is inert.

Quoted-and-inert is also executed on Spark in ``tests/spark/test_sql_exec_renderings.py`` (a group name and a redact
constant full of quotes, backslashes, backticks and comment markers).
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import sqlglot
import yaml
from sqlglot import exp

from lakehouse_phi.cli import main
from lakehouse_phi.errors import PolicyError
from lakehouse_phi.policy.load import LoadedPolicy, policy_from_data
from lakehouse_phi.sql import build_ir, compile_ir
from lakehouse_phi.sql.quoting import ident, string

ROOT = Path(__file__).resolve().parents[2]
BASE = yaml.safe_load((ROOT / "conf" / "policy.yaml").read_text())
PATIENTS = "main.silver.patients"


def _data() -> dict:
    return copy.deepcopy(BASE)


def _compile(tmp_path: Path, data: dict, capsys) -> tuple[int, str, str]:
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    rc = main(["compile", str(path), "--target", "all"])
    out = capsys.readouterr()
    return rc, out.out, out.err


def _loaded(data: dict) -> LoadedPolicy:
    return LoadedPolicy(policy_from_data(data, "test"), "0" * 64, "test")


def _with_where(where: str) -> dict:
    data = _data()
    data["governance"]["tables"][PATIENTS]["row_filter"]["rules"][1]["where"] = where
    return data


WHERE_PLACE = f"governance.tables.{PATIENTS}.row_filter.rules.1.where"


@pytest.mark.parametrize("where,message", [
    ("state IN (SELECT state FROM main.silver.vip)", "subquery"),
    ("EXISTS (SELECT 1)", "subquery"),
    ("state = 'NY'; DROP TABLE main.silver.patients", "';' is not allowed"),
    ("state = 'NY' -- and the rest", "comments"),
    ("state = 'NY' /* hidden */ OR TRUE", "comments"),
    ("ssn IS NOT NULL", "unknown column 'ssn'"),
    ("patients.state = 'NY'", "names a table"),
    ("is_account_group_member('phi-admins')", "is_account_group_member() is not allowed"),
    ("secret('phi-keys', 'ssn-dek') = 'x'", "secret() is not allowed"),
    ("state = '${spark.app.name}'", "'${'"),
    ("state = :who", "parameters"),
    ("reflect('java.lang.System', 'exit', 0) = 1", "function reflect() is not allowed"),
    ("state = 'NY'')", "does not parse"),
    ("state = 'it''s'", "write a quote inside a string"),
])
def test_where_injections_exit_2_naming_the_place(tmp_path, capsys, where, message):
    rc, out, err = _compile(tmp_path, _with_where(where), capsys)
    assert rc == 2 and not out
    assert WHERE_PLACE in err and message in err, err


@pytest.mark.parametrize("table", ["main.silver.`patients`", "main.silver.pat`ients", "main.silver.pat'ients",
                                   "main.silver.patients; DROP TABLE x", "main.silver.patients --",
                                   "main..patients", "a.b.c.d"])
def test_table_name_injections_exit_2(tmp_path, capsys, table):
    data = _data()
    tables = data["governance"]["tables"]
    tables[table] = tables.pop(PATIENTS)
    rc, out, err = _compile(tmp_path, data, capsys)
    assert rc == 2 and not out
    assert f"governance.tables.{table}" in err


@pytest.mark.parametrize("column", ["ss`n", "ssn'", "ssn) RETURN 1; --", "s sn", "1ssn", "ssn\n"])
def test_mask_column_injections_exit_2(tmp_path, capsys, column):
    data = _data()
    masks = data["governance"]["tables"][PATIENTS]["masks"]
    masks[column] = masks.pop("phone")
    rc, out, err = _compile(tmp_path, data, capsys)
    assert rc == 2 and not out
    assert f"governance.tables.{PATIENTS}.masks.{column}" in err


def test_row_filter_column_and_function_schema_injections_exit_2(tmp_path, capsys):
    data = _data()
    data["governance"]["function_schema"] = "main.`gov`"
    data["governance"]["tables"][PATIENTS]["row_filter"]["columns"] = ["state`"]
    rc, _, err = _compile(tmp_path, data, capsys)
    assert rc == 2
    assert "governance.function_schema" in err
    assert f"governance.tables.{PATIENTS}.row_filter.columns.0" in err


@pytest.mark.parametrize("group", ["phi'); DROP FUNCTION x; --", "a`b`c", "back\\slash'", "/* c */ -- d",
                                   "quote''twice"])
def test_group_names_with_quotes_and_backticks_are_inert_literals(group):
    data = _data()
    data["groups"]["billing"] = group
    ir = build_ir(_loaded(data))
    statements = compile_ir(ir, "databricks").apply
    ssn = next(st for st in statements if st.kind == "create_function")
    tree = sqlglot.parse_one(ssn.sql, read="databricks")
    members = [a for a in tree.find_all(exp.Anonymous) if a.name.lower() == "is_account_group_member"]
    assert [m.expressions[0].this for m in members] == [group]  # exactly one literal, holding the name unchanged
    assert string(group) in ssn.sql
    assert sum(1 for s in statements if s.kind == "create_function") == 10  # nothing broke out of the literal


@pytest.mark.parametrize("group,message", [("phi-${user}", "'${'"), ("phi\nadmins", "control character"),
                                           ("", "empty")])
def test_group_names_that_cannot_be_literals_exit_2(tmp_path, capsys, group, message):
    data = _data()
    data["groups"]["billing"] = group
    rc, _, err = _compile(tmp_path, data, capsys)
    assert rc == 2
    assert "groups.billing" in err and message in err


def test_redact_constant_and_policy_name(tmp_path, capsys):
    data = _data()
    data["governance"]["tables"][PATIENTS]["masks"]["ssn"]["otherwise"] = {"redact": "x'); DROP TABLE t; --"}
    ir = build_ir(_loaded(data))
    fn = next(st.sql for st in compile_ir(ir, "databricks").apply if st.kind == "create_function")
    lits = [lit.this for lit in sqlglot.parse_one(fn, read="databricks").find_all(exp.Literal) if lit.is_string]
    assert "x'); DROP TABLE t; --" in lits
    data["governance"]["tables"][PATIENTS]["masks"]["ssn"]["otherwise"] = {"redact": "${hivevar:x}"}
    rc, _, err = _compile(tmp_path, data, capsys)
    assert rc == 2
    assert f"governance.tables.{PATIENTS}.masks.ssn.otherwise" in err
    for bad_name in ("clinical\nDROP TABLE x; --", "x', 'lakehouse_phi.audit_hash' = 'forged", "a b", ""):
        data["name"] = bad_name
        rc, _, err = _compile(tmp_path, data, capsys)
        assert rc == 2
        assert "  - name: " in err, err


def test_every_problem_is_reported_together():
    data = _with_where("foo(state) AND ssn = 1")
    data["governance"]["tables"]["main.gold.claims"]["masks"]["acc`t"] = {"otherwise": "hide"}
    data["groups"]["admins"] = "x${y}"
    with pytest.raises(PolicyError) as err:
        build_ir(_loaded(data))
    places = [p.place for p in err.value.problems]
    assert places.count(WHERE_PLACE) == 2
    assert "governance.tables.main.gold.claims.masks.acc`t" in places
    assert "groups.admins" in places


def test_colliding_function_names_are_refused():
    data = _data()
    data["governance"]["tables"] = {
        "main.silver.a_b": {"masks": {"c": {"otherwise": "hide"}}},
        "main.silver.a": {"masks": {"b_c": {"otherwise": "hide"}}},
    }
    with pytest.raises(PolicyError, match="mask_a_b_c"):
        build_ir(_loaded(data))


def test_names_are_case_insensitive():
    data = _data()
    data["governance"]["tables"]["MAIN.Silver.Patients"] = {"masks": {"x": {"otherwise": "hide"}}}
    data["governance"]["tables"][PATIENTS]["masks"]["SSN"] = {"otherwise": "hide"}
    with pytest.raises(PolicyError) as err:
        build_ir(_loaded(data))
    messages = " ".join(str(p) for p in err.value.problems)
    assert "same table as 'main.silver.patients'" in messages and "masked twice" in messages


def test_shared_leaf_names_take_the_schema():
    data = _data()
    data["governance"]["tables"]["main.gold.patients"] = {"masks": {"ssn": {"otherwise": "hide"}}}
    names = [str(f.name) for f in build_ir(_loaded(data)).functions]
    assert "main.governance.mask_silver_patients_ssn" in names
    assert "main.governance.mask_gold_patients_ssn" in names
    assert "main.governance.filter_silver_patients" in names
    assert "main.governance.mask_encounters_note" in names  # unaffected tables keep the short form


def test_ident_doubles_backticks():
    assert ident("a`b") == "`a``b`"
    assert sqlglot.parse_one(f"SELECT {ident('a`b')}", read="databricks").expressions[0].name == "a`b"
