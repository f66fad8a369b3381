"""The key check values a bronze Delta table was written with (table property ``lakehouse_phi.key_checks``).

Read before any data is: :func:`lakehouse_phi.keys.providers.verify_check_values` then refuses a run whose key
material differs under the same version (it would write every record again under new pseudonyms). Ingest and the
lifecycle commands read it the same way, on local paths, remote paths and catalog tables alike.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from lakehouse_phi.errors import JobRefused
from lakehouse_phi.storage.delta import open_delta
from lakehouse_phi.storage.rules import spark_error_class
from lakehouse_phi.storage.targets import Target

log = logging.getLogger(__name__)

KEY_CHECKS_PROPERTY = "lakehouse_phi.key_checks"


def recorded_key_checks(spark: Any, bronze: Target | str, table_format: str = "delta") -> dict | None:
    """The check values recorded on ``bronze``; ``None`` when there is no table yet, or no property (Parquet
    targets have no table properties: their check values are in the audit events only). ``spark`` may be None for a
    path (read through delta-rs).

    Raises:
        JobRefused: the table exists but its properties cannot be read, or the property is not JSON (fail closed).
    """
    if table_format != "delta":
        return None
    bronze = Target.parse(bronze)
    table = open_delta(bronze, spark)
    try:
        if not table.exists():
            return None
        value = table.properties().get(KEY_CHECKS_PROPERTY)
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
