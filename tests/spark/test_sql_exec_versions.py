"""A table with mixed key versions stays readable in SQL: the generated ``decrypt`` mask picks the secret by the
row's ``_key_versions`` (bound with ``USING COLUMNS``), run on local Spark as a temporary function with ``try_secret``
a Python UDF holding one test key per version."""

from __future__ import annotations

import base64

import pyarrow as pa
import pytest

from lakehouse_phi.policy.load import LoadedPolicy, policy_from_data
from lakehouse_phi.sql.dialects import Databricks
from lakehouse_phi.sql.dialects.dynamic_views import DynamicViews
from lakehouse_phi.sql.ir import build_ir
from lakehouse_phi.transforms.base import ColumnContext
from lakehouse_phi.transforms.encrypt import Encrypt

pytestmark = pytest.mark.spark

KEYS = {v: bytes(range(v, v + 32)) for v in (1, 2, 3)}
SECRETS = {("phi-keys", f"dek-v{v}"): base64.b64encode(k).decode() for v, k in KEYS.items()}


def _policy(previous: dict) -> LoadedPolicy:
    data = {
        "version": 1, "name": "versions",
        "keys": {"dek": {"provider": "databricks", "ref": "phi-keys/dek-v3", "version": 3, "previous": previous},
                 "fp": {"provider": "env", "ref": "FP_KEY"}},
        "groups": {"billing": "phi-billing"},
        "tables": {"patients": {
            "source": {"format": "csv", "path": "landing/p"}, "bronze": "main.bronze.patients",
            "fingerprint_key": "fp",
            "columns": {"id": {"type": "int"},
                        "ssn": {"type": "string", "phi": "ssn", "ingest": {"strategy": "encrypt", "key": "dek"}}}}},
        "governance": {"function_schema": "main.gov", "tables": {"main.silver.patients": {"masks": {"ssn": {
            "type": "string", "rules": [{"to": ["billing"], "show": {"decrypt": "patients.ssn"}}],
            "otherwise": "hide"}}}}},
    }
    return LoadedPolicy(policy=policy_from_data(data), sha256="0" * 64, path="versions.yaml")


def _enc(version: int, value: str) -> str:
    strategy = Encrypt(Encrypt.params_model(key="dek"), ColumnContext("patients", "ssn", "ssn"), KEYS[version])
    return strategy.apply(pa.array([value])).to_pylist()[0]


def test_mixed_versions_decrypt_in_sql(spark):
    ir = build_ir(_policy({1: "phi-keys/dek-v1", 2: "phi-keys/dek-v2"}))
    fn = next(iter(ir.functions))
    assert [c for c, _ in fn.params] == ["ssn", "_key_versions"]
    bind = next(st.sql for st in Databricks(ir).govern(ir.tables[0]) if st.kind == "set_mask")
    assert bind.endswith("SET MASK `main`.`gov`.`mask_patients_ssn` USING COLUMNS (`_key_versions`)")
    view = next(st.sql for st in DynamicViews(ir).govern(ir.tables[0]) if st.kind == "create_view")
    assert "`mask_patients_ssn`(`ssn`, `_key_versions`) AS `ssn`" in view
    spark.udf.register("try_secret", lambda scope, key: SECRETS.get((scope, key)), "string")
    spark.udf.register("is_account_group_member", lambda g: g == "phi-billing", "boolean")
    spark.sql(Databricks().create_function(fn, temporary=True).sql)
    rows = [(1, _enc(1, "111-11-1111"), {"ssn": 1}), (2, _enc(2, "222-22-2222"), {"ssn": 2}),
            (3, _enc(3, "333-33-3333"), {"ssn": 3}), (4, _enc(3, "444-44-4444"), None),  # no versions: active
            (5, None, {"ssn": 1})]
    spark.createDataFrame(rows, "id INT, ssn STRING, _key_versions MAP<STRING, INT>") \
        .createOrReplaceTempView("sqlv_patients")
    call = Databricks.call(fn.name, [c for c, _ in fn.params], temporary=True)
    got = dict(spark.sql(f"SELECT id, {call} AS ssn FROM sqlv_patients").collect())
    assert got == {1: "111-11-1111", 2: "222-22-2222", 3: "333-33-3333", 4: "444-44-4444", 5: None}
    spark.udf.register("is_account_group_member", lambda g: False, "boolean")
    assert {r[0] for r in spark.sql(f"SELECT {call} FROM sqlv_patients").collect()} == {None}


def test_without_previous_versions_the_mask_is_unchanged():
    ir = build_ir(_policy({}))
    fn = next(iter(ir.functions))
    assert [c for c, _ in fn.params] == ["ssn"] and "_key_versions" not in Databricks().create_function(fn).sql
    assert not any("USING COLUMNS" in st.sql for st in Databricks(ir).govern(ir.tables[0]))


def test_versioned_statements_pass_the_static_check():
    from lakehouse_phi.sql.verify import verify

    ir = build_ir(_policy({1: "phi-keys/dek-v1"}))
    gen = Databricks()
    statements = gen.apply(ir) + gen.rollback(ir)
    assert any("USING COLUMNS" in st.sql for st in statements)
    assert [verify(st) for st in statements] == [None] * len(statements)


def test_abac_target_refuses_a_versioned_decrypt_mask_by_name():
    from lakehouse_phi.errors import PolicyError
    from lakehouse_phi.sql.compile import compile_ir

    with pytest.raises(PolicyError, match=r"silver.patients.ssn: its decrypt mask picks the key by _key_versions"):
        compile_ir(build_ir(_policy({1: "phi-keys/dek-v1"})), "databricks-abac")
    assert compile_ir(build_ir(_policy({})), "databricks-abac").apply
