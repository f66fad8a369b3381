"""The must-show: what ``encrypt`` writes, Spark SQL's ``aes_decrypt(..., 'GCM', 'DEFAULT', aad)`` decrypts."""

from __future__ import annotations

import base64

import pyarrow as pa
import pytest

from lakehouse_phi.transforms.base import ColumnContext
from lakehouse_phi.transforms.encrypt import Encrypt

CTX = ColumnContext(table="patients", column="ssn", source_column="ssn")
PLAIN = ["123-45-6789", "987-65-4321", "", "Zoë ☃ naïve", None]

SQL = ("SELECT id, CAST(aes_decrypt(unbase64(v), unbase64(k), 'GCM', 'DEFAULT', {aad}) AS STRING) AS p "
       "FROM cipher ORDER BY id")


def _cipher_view(spark, key: bytes) -> None:
    out = Encrypt(Encrypt.params_model(key="pii"), CTX, key).apply(pa.array(PLAIN, pa.string())).to_pylist()
    k = base64.b64encode(key).decode()
    rows = [(i, v, k) for i, v in enumerate(out)]
    spark.createDataFrame(rows, "id INT, v STRING, k STRING").createOrReplaceTempView("cipher")


@pytest.mark.parametrize("size", [16, 24, 32])
def test_spark_aes_decrypt_reads_our_ciphertext(spark, size):
    _cipher_view(spark, bytes(range(100, 100 + size)))
    got = [r.p for r in spark.sql(SQL.format(aad="'patients.ssn'")).collect()]
    assert got == PLAIN


def test_spark_rejects_the_wrong_aad(spark):
    _cipher_view(spark, bytes(range(32)))
    # Spark 4 raises SparkRuntimeException [INVALID_PARAMETER_VALUE.AES_CRYPTO_ERROR] ... "Tag mismatch".
    with pytest.raises(Exception, match="AES_CRYPTO_ERROR") as err:
        spark.sql(SQL.format(aad="'patients.mrn'")).collect()
    assert "123-45-6789" not in str(err.value)
    # try_aes_decrypt is Spark's null-on-failure twin: every non-NULL row fails to authenticate.
    got = spark.sql("SELECT try_aes_decrypt(unbase64(v), unbase64(k), 'GCM', 'DEFAULT', 'patients.mrn') AS p "
                    "FROM cipher").collect()
    assert [r.p for r in got] == [None] * len(PLAIN)
