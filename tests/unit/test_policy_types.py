"""The one type table (policy/types.py) that the Arrow engine and the SQL compiler both read."""

from __future__ import annotations

import subprocess
import sys

import pyarrow as pa
import pytest

from lakehouse_phi.policy import types
from lakehouse_phi.policy.types import ArrayOf, StructOf


def test_engine_and_sql_read_the_same_table():
    from lakehouse_phi.engine.types import arrow_type, spark_ddl
    from lakehouse_phi.sql.generator import Generator

    for name, info in types.TYPES.items():
        assert spark_ddl(name) == info.sql.lower()
        if name != "json":
            assert Generator.type_name(name) == info.sql
    assert arrow_type("timestamp") == pa.timestamp("us", tz="UTC")
    assert arrow_type("decimal(12,2)") == pa.decimal128(12, 2)
    assert arrow_type("json") == pa.string()


def test_the_engine_does_not_load_the_sql_compiler():
    code = ("import sys, lakehouse_phi.engine.plan, lakehouse_phi.engine.types\n"
            "bad = sorted(m for m in sys.modules\n"
            "             if m.split('.')[0] == 'sqlglot' or m.startswith('lakehouse_phi.sql'))\n"
            "print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("text", [
    "array<struct<system:string,value:string,use:string>>",
    "struct<a:int,b:array<decimal(10,2)>,`odd name`:date>",
    "array<array<bigint>>",
])
def test_ddl_round_trip(text):
    tree = types.parse_ddl(text)
    assert types.parse_ddl(types.ddl(tree)) == tree
    assert types.parse_ddl(types.ddl(tree, upper=True)) == tree


def test_parse_ddl_tree_and_errors():
    assert types.parse_ddl("ARRAY<STRUCT<family: STRING, given: ARRAY<STRING>>>") == ArrayOf(
        StructOf((("family", "string"), ("given", ArrayOf("string")))))
    assert types.parse_ddl("bigint") == "long"
    for bad in ("array<string", "struct<a string>", "struct<a:string,a:int>", "map<string,int>", "array<>",
                "string extra"):
        with pytest.raises(ValueError, match="cannot read the type"):
            types.parse_ddl(bad)


def test_check_type_nested_and_scalar_only():
    assert types.check_type("Array< String >") == "array<string>"
    assert types.check_type("array<struct>") == "array<struct>"
    assert types.check_type("JSON") == "json"
    with pytest.raises(ValueError, match="allowed"):
        types.check_type("json", nested=False)
    with pytest.raises(ValueError, match="decimal needs"):
        types.check_type("array<decimal(40,2)>")
    with pytest.raises(ValueError, match="allowed"):
        types.check_type("array<map>")
