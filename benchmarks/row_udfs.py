"""The baselines: the ``patients`` policy of ``conf/policy.yaml`` written the way a team would without
vectorization, as plain row-at-a-time ``@udf`` functions (pickled rows, one Python call per value).

What :func:`patients_row_udf_columns` computes, per row, in plain Python:

* one ``@udf`` per bronze column, doing the same per-value work as the ingest strategy:
  ``mrn``: ``hmac.new(key, v.encode(), sha256).hexdigest()``; ``ssn``: AES-GCM encrypt with a random 12-byte IV,
  AAD ``patients.ssn``, base64 (the ``AESGCM`` object built once per task, not per value); ``ssn_token``: HMAC of
  the digits; ``first_name``: NULL (suppress); ``last_name``: HMAC of the stripped, lowercased value;
  ``dob``: parsed to a date (``^\\d{4}-\\d{2}-\\d{2}$`` then ``date.fromisoformat``); ``birth_year``: Jan 1 of it;
  ``age``: ``int()`` then capped at 90; ``sex``, ``state``, ``phone``: kept (checked against their pattern where
  one is declared); ``zip``: ``re`` match, first three digits, ``000`` for the restricted prefixes;
  ``email``: first character of the local part then ``*``, domain kept; ``address``: ``[ADDRESS]``;
  ``member_id``: FF1 (our :mod:`lakehouse_phi.transforms.ff1`, one value at a time) over the digits, put back
  in place; ``registered_at``: parsed ISO timestamp truncated to the first of its month, UTC;
* one more ``@udf`` over the checked columns returning the ``_phi_errors`` list: the type checks (dob, age,
  registered_at), required (mrn, dob, state), patterns (mrn, ssn, sex, state, with ``re``) and the FF1 domain
  check (member_id with fewer than 6 digits), each as ``{column, rule, message}``.

A value that fails its check gives NULL in its own column (the vectorized plan also NULLs it); this version does
not NULL the derived columns of a failed source value, a negligible difference in work.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from datetime import date, datetime, timezone

from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql import types as T

RESTRICTED = frozenset(("036", "059", "063", "102", "203", "556", "692", "790", "821", "823", "830", "831", "878",
                        "879", "884", "890", "893"))
ERRORS_TYPE = T.ArrayType(T.StructType([T.StructField("column", T.StringType()),
                                        T.StructField("rule", T.StringType()),
                                        T.StructField("message", T.StringType())]))
PATTERNS = {"mrn": r"^MRN\d{7}$", "ssn": r"^\d{3}-?\d{2}-?\d{4}$", "sex": r"^[MFUX]$", "state": r"^[A-Z]{2}$"}


def row_udf(return_type: T.DataType):
    """A classic row-at-a-time Python UDF (pickled rows). Spark 4.2 defaults ``@udf`` to its Arrow-optimized form
    (``spark.sql.execution.pythonUDF.arrow.enabled``), still one Python call per value, but that form crashes the
    Python worker when fed straight from a Parquet scan on Spark 4.2.0, so the baseline pins the classic form."""
    return F.udf(returnType=return_type, useArrow=False)


def _blank(v: str | None) -> str | None:
    return None if v is None or not v.strip() else v


def _date(v: str | None) -> date | None:
    v = _blank(v)
    if v is None or not re.match(r"^\d{4}-\d{2}-\d{2}$", v.strip()):
        return None
    try:
        return date.fromisoformat(v.strip())
    except ValueError:
        return None


def _int(v: str | None) -> int | None:
    v = _blank(v)
    try:
        n = int(v) if v is not None else None
    except ValueError:
        return None
    return n if n is None or -(2**31) <= n < 2**31 else None


def _timestamp(v: str | None) -> datetime | None:
    v = _blank(v)
    if v is None:
        return None
    try:
        ts = datetime.fromisoformat(v.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return ts.replace(tzinfo=timezone.utc) if ts.tzinfo is None else ts.astimezone(timezone.utc)


def patients_row_udf_columns(pseudonym: bytes, dek: bytes, fpe_key: bytes, passthrough: list[str]) -> list[Column]:
    """The select list of the row-at-a-time ``patients`` policy over string columns (see the module docstring)."""
    cache: dict[str, object] = {}

    def mac(v: str) -> str:
        return hmac.new(pseudonym, v.encode(), hashlib.sha256).hexdigest()

    @row_udf(T.StringType())
    def mrn(v):
        v = _blank(v)
        return mac(v) if v is not None and re.match(PATTERNS["mrn"], v) else None

    @row_udf(T.StringType())
    def ssn(v):
        v = _blank(v)
        if v is None or not re.match(PATTERNS["ssn"], v):
            return None
        if "aead" not in cache:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM
            cache["aead"] = AESGCM(dek)
        iv = os.urandom(12)
        return base64.b64encode(iv + cache["aead"].encrypt(iv, v.encode(), b"patients.ssn")).decode()

    @row_udf(T.StringType())
    def ssn_token(v):
        v = _blank(v)
        return mac(re.sub(r"[^0-9]+", "", v)) if v is not None and re.match(PATTERNS["ssn"], v) else None

    @row_udf(T.StringType())
    def suppress(v):
        return None

    @row_udf(T.StringType())
    def last_name(v):
        v = _blank(v)
        return None if v is None else mac(v.strip().lower())

    @row_udf(T.DateType())
    def dob(v):
        return _date(v)

    @row_udf(T.DateType())
    def birth_year(v):
        d = _date(v)
        return None if d is None else date(d.year, 1, 1)

    @row_udf(T.IntegerType())
    def age(v):
        n = _int(v)
        return None if n is None else min(n, 90) if n > 89 else n

    def keep_checked(column: str):
        @row_udf(T.StringType())
        def keep(v):
            v = _blank(v)
            return v if v is not None and re.match(PATTERNS[column], v) else None
        return keep

    @row_udf(T.StringType())
    def keep(v):
        return _blank(v)

    @row_udf(T.StringType())
    def zip3(v):
        v = _blank(v)
        m = re.match(r"^\s*([0-9]{3})[0-9]{2}(?:-?[0-9]{4})?\s*$", v) if v is not None else None
        return None if m is None else "000" if m.group(1) in RESTRICTED else m.group(1)

    @row_udf(T.StringType())
    def email(v):
        v = _blank(v)
        if v is None:
            return None
        if "@" not in v:
            return "*" * len(v)
        local, domain = v.rsplit("@", 1)
        masked = local[:1] + "*" * (len(local) - 1) if len(local) > 1 else "*" * len(local)
        return masked + "@" + domain

    @row_udf(T.StringType())
    def redact(v):
        return None if _blank(v) is None else "[ADDRESS]"

    @row_udf(T.StringType())
    def member_id(v):
        v = _blank(v)
        digits = re.sub(r"[^0-9]+", "", v) if v is not None else ""
        if len(digits) < 6:
            return None
        if "ff1" not in cache:
            from lakehouse_phi.transforms.ff1 import FF1
            cache["ff1"] = FF1(fpe_key, radix=10)
        enc = iter(cache["ff1"].encrypt(digits, bytes.fromhex("6d656d626572")))
        return "".join(next(enc) if ch.isdigit() and ch.isascii() else ch for ch in v)

    @row_udf(T.TimestampType())
    def registered_at(v):
        ts = _timestamp(v)
        return None if ts is None else ts.replace(day=1, hour=0, minute=0, second=0, microsecond=0)

    @row_udf(ERRORS_TYPE)
    def errors(mrn_v, ssn_v, dob_v, age_v, sex_v, state_v, member_v, registered_v):
        out = []
        values = {"mrn": _blank(mrn_v), "ssn": _blank(ssn_v), "sex": _blank(sex_v), "state": _blank(state_v)}
        if _blank(dob_v) is not None and _date(dob_v) is None:
            out.append(("dob", "type", "not a valid date"))
        if _blank(age_v) is not None and _int(age_v) is None:
            out.append(("age", "type", "not a valid int"))
        if _blank(registered_v) is not None and _timestamp(registered_v) is None:
            out.append(("registered_at", "type", "not a valid timestamp"))
        for column, value in (("mrn", values["mrn"]), ("dob", _blank(dob_v)), ("state", values["state"])):
            if value is None:
                out.append((column, "required", "required value is missing"))
        for column, pattern in PATTERNS.items():
            if values[column] is not None and not re.search(pattern, values[column]):
                out.append((column, "pattern", "does not match the declared pattern"))
        member = _blank(member_v)
        if member is not None and len(re.sub(r"[^0-9]+", "", member)) < 6:
            out.append(("member_id", "fpe", "value cannot be masked by fpe into member_id"))
        return out

    c = F.col
    return [
        mrn(c("mrn")).alias("mrn"), ssn(c("ssn")).alias("ssn"), ssn_token(c("ssn")).alias("ssn_token"),
        suppress(c("first_name")).alias("first_name"), last_name(c("last_name")).alias("last_name"),
        dob(c("dob")).alias("dob"), birth_year(c("dob")).alias("birth_year"), age(c("age")).alias("age"),
        keep_checked("sex")(c("sex")).alias("sex"), zip3(c("zip")).alias("zip"),
        keep_checked("state")(c("state")).alias("state"), keep(c("phone")).alias("phone"),
        email(c("email")).alias("email"), redact(c("address")).alias("address"),
        member_id(c("member_id")).alias("member_id"), registered_at(c("registered_at")).alias("registered_at"),
        errors(c("mrn"), c("ssn"), c("dob"), c("age"), c("sex"), c("state"), c("member_id"),
               c("registered_at")).alias("_phi_errors"),
        *[c(p) for p in passthrough],
    ]


def row_udf_hmac(key: bytes):
    """(b): HMAC-SHA256 as most tutorials write it, one Python call per row."""

    @row_udf(T.StringType())
    def hmac_udf(v):
        return None if v is None else hmac.new(key, v.encode(), hashlib.sha256).hexdigest()

    return hmac_udf
