"""Every generated function body, executed on local Spark over real rows, role by role.

The functions of the worked example (``conf/policy.yaml``) are created as temporary SQL functions from the IR
(:meth:`Generator.create_function` with ``temporary=True``: the same body, the bare name), with
``is_account_group_member`` a Python UDF bound to one role's groups and ``try_secret`` (Databricks Runtime 15+,
absent from open-source Spark) a Python UDF returning a test
key. Re-registering ``is_account_group_member`` changes what already-created temporary functions see: Spark
resolves the UDF when a query is analysed, not when the SQL function is created (checked below).
"""

from __future__ import annotations

import base64
from datetime import date, datetime, timezone
from decimal import Decimal

import pyarrow as pa
import pytest

from lakehouse_phi.policy import load_policy
from lakehouse_phi.sql.dialects import Databricks
from lakehouse_phi.sql.ir import build_ir
from lakehouse_phi.transforms.base import ColumnContext
from lakehouse_phi.transforms.encrypt import Encrypt

pytestmark = pytest.mark.spark

KEY = bytes(range(7, 39))  # AES-256 test key; the policy's phi-dek is read with try_secret('phi-keys', 'ssn-dek')
KEY_B64 = base64.b64encode(KEY).decode()
GROUPS = {"admins": {"phi-admins"}, "billing": {"phi-billing"}, "clinicians": {"phi-clinicians"},
          "researchers": {"research-analysts"}, "nobody": set(),
          "billing+researchers": {"phi-billing", "research-analysts"}}
SSN = {1: "123-45-6789", 2: "987654321", 3: None, 4: "000-00-0000"}


def as_role(spark, groups: set[str]) -> None:
    """Bind ``is_account_group_member`` to exactly ``groups`` (re-registering replaces the previous binding)."""
    members = frozenset(groups)
    spark.udf.register("is_account_group_member", lambda g: g in members, "boolean")


@pytest.fixture(scope="module")
def governed(spark):
    ir = build_ir(load_policy("conf/policy.yaml"))
    gen = Databricks()
    readable = {("phi-keys", "ssn-dek")}  # try_secret: NULL for a key the reader cannot read, never an error
    spark.udf.register("try_secret", lambda scope, key: KEY_B64 if (scope, key) in readable else None, "string")
    as_role(spark, set())
    for fn in ir.functions:
        spark.sql(gen.create_function(fn, temporary=True).sql)
    ciphertext = Encrypt(Encrypt.params_model(key="phi-dek"), ColumnContext("patients", "ssn", "ssn"), KEY).apply(
        pa.array(list(SSN.values()), pa.string())).to_pylist()
    assert all(c != p for c, p in zip(ciphertext, SSN.values()) if p)
    spark.createDataFrame(
        [(1, ciphertext[0], "555-867-5309", date(1950, 7, 4), 73, "NY"),
         (2, ciphertext[1], "12", date(2001, 12, 31), 95, "CA"),
         (3, None, None, None, None, None),
         (4, ciphertext[3], "5551234", date(1930, 2, 28), 89, "NJ")],
        "id INT, ssn STRING, phone STRING, dob DATE, age INT, state STRING").createOrReplaceTempView("sqlx_patients")
    spark.createDataFrame(
        [(1, "NY", 3, "pt reports chest pain"), (2, "NJ", 45, "long stay"), (3, "CA", 2, "ca note"),
         (4, "NY", None, None)],
        "id INT, facility_state STRING, length_of_stay INT, note STRING").createOrReplaceTempView("sqlx_encounters")
    spark.createDataFrame(
        [(1, "Medicare", "ACCT-000123", Decimal("1234.50")), (2, "Aetna", "7", Decimal("10.00")),
         (3, "MEDICARE", None, None)],
        "id INT, payer STRING, account_number STRING, amount DECIMAL(12,2)").createOrReplaceTempView("sqlx_claims")
    yield ir
    for fn in ir.functions:
        spark.sql(f"DROP TEMPORARY FUNCTION IF EXISTS {fn.name.leaf}")
    spark.sql("DROP TEMPORARY FUNCTION IF EXISTS is_account_group_member")
    spark.sql("DROP TEMPORARY FUNCTION IF EXISTS try_secret")


PATIENTS = ("SELECT id, mask_patients_ssn(ssn) AS ssn, mask_patients_phone(phone) AS phone, "
            "mask_patients_dob(dob) AS dob, mask_patients_age(age) AS age FROM sqlx_patients {where} ORDER BY id")
MASKED = "***-**-****"
#: Safe Harbor 90+: the dob mask (generalize_date on a date of birth) gives 1 January of (this year - 90) to anyone
#: 90 or older, like the 1930 birth date below.
NINETY_PLUS = date(datetime.now(timezone.utc).year - 90, 1, 1)
P_MASKED = {1: (MASKED, None, date(1950, 1, 1), 73), 2: (MASKED, None, date(2001, 1, 1), 90),
            3: (None, None, None, None), 4: (MASKED, None, NINETY_PLUS, 89)}
P_EXPECTED = {
    "admins": P_MASKED,
    "clinicians": {1: (MASKED, "555-867-5309", date(1950, 7, 4), 73), 2: (MASKED, "12", date(2001, 12, 31), 95),
                   3: (None, None, None, None), 4: (MASKED, "5551234", date(1930, 2, 28), 89)},
    "billing": {1: ("123-45-6789", "********5309", date(1950, 1, 1), 73),
                2: ("987654321", "**", date(2001, 1, 1), 90), 3: (None, None, None, None),
                4: ("000-00-0000", "***1234", NINETY_PLUS, 89)},
    "researchers": P_MASKED,
    "nobody": P_MASKED,
    "billing+researchers": {1: ("123-45-6789", "********5309", date(1950, 1, 1), 73),
                            2: ("987654321", "**", date(2001, 1, 1), 90), 3: (None, None, None, None),
                            4: ("000-00-0000", "***1234", NINETY_PLUS, 89)},
}
P_ROWS = {"admins": [1, 2, 3, 4], "clinicians": [1, 2, 3, 4], "billing": [1, 2, 4], "researchers": [1, 4],
          "nobody": [], "billing+researchers": [1, 4]}


def _rows(spark, sql: str) -> dict[int, tuple]:
    return {r[0]: tuple(r[1:]) for r in spark.sql(sql).collect()}


@pytest.mark.parametrize("role", list(GROUPS))
def test_patients_masks_and_row_filter_per_role(spark, governed, role):
    as_role(spark, GROUPS[role])
    assert _rows(spark, PATIENTS.format(where="")) == P_EXPECTED[role]
    seen = _rows(spark, PATIENTS.format(where="WHERE filter_patients(state)"))
    assert sorted(seen) == P_ROWS[role]
    assert seen == {i: P_EXPECTED[role][i] for i in P_ROWS[role]}


E_SQL = ("SELECT id, mask_encounters_note(note) FROM sqlx_encounters WHERE filter_encounters(facility_state, "
         "length_of_stay) ORDER BY id")
E_ALL = {1: ("pt reports chest pain",), 2: ("long stay",), 3: ("ca note",), 4: (None,)}
W = "[NOTE WITHHELD]"
E_EXPECTED = {"admins": {1: (W,), 2: (W,), 3: (W,), 4: (None,)}, "clinicians": E_ALL,
              "researchers": {1: (W,), 4: (None,)}, "billing": {}, "nobody": {},
              "billing+researchers": {1: (W,), 4: (None,)}}


@pytest.mark.parametrize("role", list(GROUPS))
def test_encounters_per_role(spark, governed, role):
    as_role(spark, GROUPS[role])
    assert _rows(spark, E_SQL) == E_EXPECTED[role]


C_SQL = ("SELECT id, mask_claims_account_number(account_number), mask_claims_amount(amount) FROM sqlx_claims "
         "WHERE filter_claims(payer) ORDER BY id")
C_RAW = {1: ("ACCT-000123", Decimal("1234.50")), 2: ("7", Decimal("10.00")), 3: (None, None)}
C_EXPECTED = {"admins": {1: ("#########23", Decimal("1234.50")), 2: ("#", Decimal("10.00")), 3: (None, None)},
              "billing": C_RAW, "clinicians": {}, "nobody": {},
              "researchers": {1: ("#########23", None), 3: (None, None)},
              # billing is listed in the first rule (admins, billing: true), so it wins over researchers
              "billing+researchers": C_RAW}


@pytest.mark.parametrize("role", list(GROUPS))
def test_claims_per_role(spark, governed, role):
    as_role(spark, GROUPS[role])
    assert _rows(spark, C_SQL) == C_EXPECTED[role]


def test_every_function_returns_its_column_type(spark, governed):
    as_role(spark, set())
    df = spark.sql("SELECT mask_patients_ssn(ssn) AS ssn, mask_patients_phone(phone) AS phone, "
                   "mask_patients_dob(dob) AS dob, mask_patients_age(age) AS age, filter_patients(state) AS f "
                   "FROM sqlx_patients")
    assert [f.dataType.simpleString() for f in df.schema.fields] == ["string", "string", "date", "int", "boolean"]
    df = spark.sql("SELECT mask_claims_amount(amount) AS a, mask_claims_account_number(account_number) AS n, "
                   "filter_encounters('NY', 1) AS f FROM sqlx_claims")
    assert [f.dataType.simpleString() for f in df.schema.fields] == ["decimal(12,2)", "string", "boolean"]


def test_rebinding_the_group_udf_changes_existing_functions(spark, governed):
    """Temporary SQL functions resolve ``is_account_group_member`` per query, not at creation."""
    one = "SELECT mask_patients_phone(phone) FROM sqlx_patients WHERE id = 1"
    as_role(spark, {"phi-clinicians"})
    assert spark.sql(one).collect()[0][0] == "555-867-5309"
    as_role(spark, set())
    assert spark.sql(one).collect()[0][0] is None
    as_role(spark, {"phi-billing"})
    assert spark.sql(one).collect()[0][0] == "********5309"


MALFORMED = {10: "not base64 at all!", 11: "AAAA", 12: "123-45-6789", 13: "", 14: "QUJD"}


def test_decrypt_mask_never_throws_and_still_opens_ingest_ciphertext(spark, governed):
    """``try_to_binary`` / ``try_aes_decrypt``: billing reads real ciphertext in clear, and a malformed, truncated,
    plaintext or tampered value gives NULL instead of failing the query (and every other query on the table);
    everyone else gets the otherwise value whatever the input."""
    good = spark.sql("SELECT id, ssn FROM sqlx_patients WHERE id = 1").collect()[0][1]
    tampered = good[:-6] + ("A" if good[-6] != "A" else "B") + good[-5:]
    rows = [(1, good), (15, tampered), *MALFORMED.items()]
    spark.createDataFrame(rows, "id INT, ssn STRING").createOrReplaceTempView("sqlx_bad_ssn")
    query = "SELECT id, mask_patients_ssn(ssn) FROM sqlx_bad_ssn ORDER BY id"
    as_role(spark, {"phi-billing"})
    assert dict(spark.sql(query).collect()) == {1: "123-45-6789", 15: None, **dict.fromkeys(MALFORMED)}
    as_role(spark, set())
    assert dict(spark.sql(query).collect()) == {1: MASKED, 15: MASKED, **dict.fromkeys(MALFORMED, MASKED)}


def test_unreadable_key_gives_null_never_an_error(spark, governed):
    """A billing reader whose key lookup fails (``try_secret`` gives NULL) reads NULL ssn values; the query runs."""
    as_role(spark, GROUPS["billing"])
    spark.udf.register("try_secret", lambda scope, key: None, "string")
    try:
        seen = _rows(spark, "SELECT id, mask_patients_ssn(ssn) FROM sqlx_patients ORDER BY id")
    finally:
        spark.udf.register("try_secret", lambda scope, key: KEY_B64 if (scope, key) == ("phi-keys", "ssn-dek")
                           else None, "string")
    assert seen == {1: (None,), 2: (None,), 3: (None,), 4: (None,)}
