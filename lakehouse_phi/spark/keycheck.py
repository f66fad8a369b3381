"""The key check values a bronze Delta table was written with (table property ``lakehouse_phi.key_checks``).

Read before any data is: :func:`lakehouse_phi.keys.providers.verify_check_values` then refuses a run whose key
material differs under the same version (it would write every record again under new pseudonyms).
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from lakehouse_phi.errors import JobRefused
from lakehouse_phi.spark.targets import Target, exists, spark_error_class

log = logging.getLogger(__name__)

KEY_CHECKS_PROPERTY = "lakehouse_phi.key_checks"


def recorded_key_checks(spark: Any, bronze: Target, table_format: str) -> dict | None:
    """The check values recorded on ``bronze``; ``None`` when there is no table yet, or no property (Parquet
    targets have no table properties: their check values are in the audit events only).

    Raises:
        JobRefused: the table exists but its properties cannot be read, or the property is not JSON (fail closed).
    """
    if table_format != "delta" or not exists(spark, bronze, table_format):
        return None
    value: str | None = None
    local = bronze.local
    try:
        if local is not None and os.path.isdir(os.path.join(local, "_delta_log")):
            from deltalake import DeltaTable

            value = DeltaTable(local).metadata().configuration.get(KEY_CHECKS_PROPERTY)
        else:
            rows = spark.sql(f"SHOW TBLPROPERTIES {bronze.sql_ref('delta')}").collect()
            value = next((r[1] for r in rows if r[0] == KEY_CHECKS_PROPERTY), None)
    except Exception as exc:  # noqa: BLE001 - engines raise many classes (Py4J, gRPC, Spark); reduced to its error class
        raise JobRefused(f"cannot read the table properties of bronze {bronze} ({spark_error_class(exc)}) to compare "
                         "the key check values; grant read access to the table's metadata") from None
    if value is None:
        return None
    try:
        return json.loads(value)
    except ValueError:
        raise JobRefused(f"bronze {bronze}: table property {KEY_CHECKS_PROPERTY} is not JSON; restore it from the "
                         "audit trail's last ingest event") from None
