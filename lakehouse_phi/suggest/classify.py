"""From a column's profile (shares, never values) to a draft classification: a PHI category or none, a type, a
conservative ingest strategy, a pattern where one fits every value, and the evidence in words.

The values of the sample are scrubbed by :func:`lakehouse_phi.transforms.scrub_text.scrub`, the very detectors
``scrub_text`` masks free text with; a value that is nothing but one detector's tag *is* that identifier, a value
that holds a tag among other words *contains* one. Header names are read for hints (``soc_sec``, ``dob``,
``zip``...). Only shares and shapes leave this module: a shape writes each run of digits as ``\\d{n}`` and each run of
letters as ``[A-Z]{n}``/``[a-z]{n}``, so no letter or digit of a value reaches the draft.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

#: A whole-value share at or above this makes the category (a few malformed values do not hide an SSN column).
WHOLE_SHARE = 0.8
#: Values holding an identifier somewhere: at or above this share a column that is not otherwise PHI is scrubbed.
CONTAINS_SHARE = 0.02

#: scrub_text tag -> PHI category (``policy.model.PHI_CATEGORIES``)
TAG_CATEGORY = {
    "SSN": "ssn", "PHONE": "phone", "EMAIL": "email", "URL": "url", "IP": "ip", "MRN": "medical_record_number",
    "ID": "other", "DATE": "date", "AGE": "age", "ADDRESS": "address", "GEO": "address", "NAME": "name",
    "ZIP": "zip",
}

#: header word(s) -> category. Matched on the header's lower-case words (``patientDOB`` -> ``patient``, ``dob``).
HEADER_HINTS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("ssn",), "ssn"), (("soc", "sec"), "ssn"), (("social", "security"), "ssn"), (("socsec",), "ssn"),
    (("dob",), "date_of_birth"), (("birth",), "date_of_birth"), (("birthdate",), "date_of_birth"),
    (("birthday",), "date_of_birth"),
    (("mrn",), "medical_record_number"), (("medical", "record"), "medical_record_number"),
    (("patient", "id"), "medical_record_number"), (("empi",), "medical_record_number"),
    (("email",), "email"), (("e", "mail"), "email"), (("fax",), "fax"),
    (("phone",), "phone"), (("tel",), "phone"), (("telephone",), "phone"), (("mobile",), "phone"),
    (("cell",), "phone"),
    (("ip",), "ip"), (("url",), "url"), (("website",), "url"),
    (("zip",), "zip"), (("zipcode",), "zip"), (("postal",), "zip"), (("postcode",), "zip"),
    (("address",), "address"), (("addr",), "address"), (("street",), "address"), (("city",), "address"),
    (("county",), "address"),
    (("first", "name"), "name"), (("last", "name"), "name"), (("firstname",), "name"), (("lastname",), "name"),
    (("surname",), "name"), (("given",), "name"), (("family", "name"), "name"), (("full", "name"), "name"),
    (("patient", "name"), "name"), (("name",), "name"),
    (("age",), "age"),
    (("member", "id"), "health_plan_number"), (("policy", "number"), "health_plan_number"),
    (("insurance",), "health_plan_number"), (("plan", "id"), "health_plan_number"),
    (("medicare",), "health_plan_number"), (("medicaid",), "health_plan_number"),
    (("subscriber", "id"), "health_plan_number"), (("mbi",), "health_plan_number"),
    (("account",), "account_number"), (("acct",), "account_number"),
    (("license",), "license_number"), (("licence",), "license_number"), (("vin",), "vehicle_id"),
    (("device", "id"), "device_id"), (("serial",), "device_id"),
    (("note",), "free_text"), (("notes",), "free_text"), (("comment",), "free_text"),
    (("comments",), "free_text"), (("narrative",), "free_text"), (("text",), "free_text"),
    (("memo",), "free_text"),
    (("date",), "date"), (("dt",), "date"), (("at",), "date"), (("time",), "date"), (("timestamp",), "date"),
)
#: header words that are not PHI even though a hint word is in them (``state`` is not an address below a state)
NOT_PHI_WORDS = frozenset({"type", "status", "count", "flag", "state", "country", "amount", "payer",
                           "npi", "cpt", "icd", "diagnosis", "procedure", "sex", "gender"})

#: conservative default ingest per category: irreversible for anything a downstream table can do without, a keyed
#: token (hmac) for identifiers that join records, Safe Harbor's generalizations for dates, ZIPs and ages
DEFAULT_INGEST: dict[str, dict[str, Any]] = {
    "medical_record_number": {"strategy": "hmac", "key": "pseudonym"},
    "health_plan_number": {"strategy": "hmac", "key": "pseudonym"},
    "account_number": {"strategy": "hmac", "key": "pseudonym"},
    "license_number": {"strategy": "hmac", "key": "pseudonym"},
    "vehicle_id": {"strategy": "hmac", "key": "pseudonym"},
    "device_id": {"strategy": "hmac", "key": "pseudonym"},
    "date_of_birth": {"strategy": "generalize_date", "to": "year"},
    "date": {"strategy": "generalize_date", "to": "year"},
    "zip": {"strategy": "zip3"},
    "age": {"strategy": "age_cap", "cap": 90},
    "free_text": {"strategy": "scrub_text"},
}
#: every other category (ssn, name, phone, email, address, url, ip, fax, ...): nothing kept
SUPPRESS = {"strategy": "suppress"}

#: well-known shapes, written once, used when every value fits
KNOWN_PATTERNS = {
    "ssn": r"^\d{3}-?\d{2}-?\d{4}$",
    "zip": r"^\d{5}(-\d{4})?$",
}
_TAG_RE = re.compile(r"\[([A-Z_]+)\]")
_WORDS_RE = re.compile(r"[A-Za-z0-9]")
_HEADER_SPLIT = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Za-z])(?=[0-9])")
_INT_RE = re.compile(r"^-?(?:0|[1-9]\d*)$")
_DOUBLE_RE = re.compile(r"^-?\d+\.\d+$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIMESTAMP_RE = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$")


@dataclass
class ColumnProfile:
    """What was measured of one column: counts over the whole column, and over the sample the detector shares.
    ``sample`` holds the sampled non-null values as text: it lives only while the draft is made, and nothing of it
    but shares and shapes is kept."""

    name: str
    spark_type: str
    rows: int
    non_null: int
    sample: list[str] = field(default_factory=list, repr=False)
    #: pattern -> share of the whole column's non-null values that fit it (computed by Spark where cheap)
    fits: dict[str, float] = field(default_factory=dict)


@dataclass
class Suggestion:
    """The draft of one column, and the evidence (shares and header words only)."""

    name: str
    type: str
    phi: str | None
    ingest: dict[str, Any] | None
    pattern: str | None
    evidence: list[str]
    header_hint: str | None = None


def header_words(name: str) -> list[str]:
    return [w.lower() for w in _HEADER_SPLIT.split(name) if w]


def header_hint(name: str) -> str | None:
    """The category a header name suggests (``soc_sec`` -> ssn, ``patientDOB`` -> date_of_birth), or None."""
    words = header_words(name)
    if not words or set(words) & NOT_PHI_WORDS:
        return None
    joined = "".join(words)
    for hint, category in HEADER_HINTS:
        n = len(hint)
        if any(tuple(words[i:i + n]) == hint for i in range(len(words) - n + 1)) or (n > 1 and joined == "".join(hint)):
            return category
    return None


def detector_shares(sample: Sequence[str]) -> tuple[dict[str, float], dict[str, float], float]:
    """Per scrub_text tag: the share of values that are wholly that identifier, the share that contain it; and
    the share of values that contain any identifier."""
    import pyarrow as pa

    from lakehouse_phi.transforms.scrub_text import scrub

    if not sample:
        return {}, {}, 0.0
    scrubbed = scrub(pa.array(list(sample), pa.string())).to_pylist()
    whole: Counter[str] = Counter()
    contains: Counter[str] = Counter()
    any_hit = 0
    for text in scrubbed:
        tags = set(_TAG_RE.findall(text or ""))
        if not tags:
            continue
        any_hit += 1
        contains.update(tags)
        if len(tags) == 1 and not _WORDS_RE.search(_TAG_RE.sub("", text)):
            whole.update(tags)
    n = len(sample)
    return ({t: c / n for t, c in whole.items()}, {t: c / n for t, c in contains.items()}, any_hit / n)


def shape(value: str) -> str:
    """The value's shape as a regular expression: digits and letters as classes with their run lengths, other
    characters literal (escaped). ``MRN0012345`` -> ``[A-Z]{3}\\d{7}``."""
    out = []
    for m in re.finditer(r"\d+|[A-Z]+|[a-z]+|[^A-Za-z0-9]", value):
        run = m.group(0)
        if run[0].isdigit():
            out.append(rf"\d{{{len(run)}}}" if len(run) > 1 else r"\d")
        elif run[0].isalpha() and run[0].isascii():
            cls = "[A-Z]" if run[0].isupper() else "[a-z]"
            out.append(f"{cls}{{{len(run)}}}" if len(run) > 1 else cls)
        else:
            out.append(re.escape(run))
    return "".join(out)


def shape_pattern(sample: Sequence[str]) -> str | None:
    """One anchored shape every sampled value has (short values without spaces only), or None."""
    if not sample or any(len(v) > 40 or " " in v or not v.isascii() for v in sample):
        return None
    shapes = {shape(v) for v in sample}
    return f"^{shapes.pop()}$" if len(shapes) == 1 else None


def candidate_patterns(profile: ColumnProfile) -> list[str]:
    """The patterns worth checking on the whole column (Spark ``rlike``): a well-known one and the sample's
    shape."""
    out = list(KNOWN_PATTERNS.values())
    own = shape_pattern(profile.sample)
    if own and own not in out:
        out.append(own)
    return out


def suggest_type(profile: ColumnProfile, category: str | None) -> str:
    """The policy type: the source's own for typed sources (Parquet, JSON), else inferred from the sample of a CSV
    (identifiers stay strings: a ZIP's leading zero is data)."""
    declared = _policy_type(profile.spark_type)
    if declared != "string" or not profile.sample:
        return declared
    values = profile.sample
    if category in ("date", "date_of_birth"):
        if all(_DATE_RE.match(v) for v in values):
            return "date"
        if all(_TIMESTAMP_RE.match(v) for v in values):
            return "timestamp"
        return "string"
    if category not in (None, "age"):
        return "string"
    if all(_INT_RE.match(v) for v in values):
        return "int" if max(abs(int(v)) for v in values) < 2**31 else "long"
    if category is None and all(_DATE_RE.match(v) for v in values):
        return "date"
    if category is None and all(_DOUBLE_RE.match(v) or _INT_RE.match(v) for v in values):
        return "double"
    return "string"


def _nested(spark_type: str) -> bool:
    return spark_type.lower().startswith(("struct", "array", "map"))


def _policy_type(spark_type: str) -> str:
    t = spark_type.lower()
    if _nested(t):  # a subtree kept (or not) as one JSON string; its leaves can be declared under fields:
        return "json"
    simple = {"integer": "int", "int": "int", "bigint": "long", "long": "long", "double": "double",
              "float": "double", "boolean": "boolean", "date": "date", "timestamp": "timestamp",
              "timestamp_ntz": "timestamp", "smallint": "int", "tinyint": "int", "short": "int", "byte": "int"}
    if t in simple:
        return simple[t]
    m = re.match(r"decimal\((\d+),\s*(\d+)\)", t)
    return f"decimal({m.group(1)},{m.group(2)})" if m else "string"


def _pct(share: float) -> str:
    pct = share * 100
    return f"{pct:.0f}%" if pct >= 1 or pct == 0 else "<1%"


def classify(profile: ColumnProfile) -> Suggestion:
    """The draft of one column from its profile."""
    hint = header_hint(profile.name)
    whole, contains, any_hit = detector_shares(profile.sample)
    evidence: list[str] = []
    category: str | None = None
    best = max(whole.items(), key=lambda kv: kv[1], default=(None, 0.0))
    if best[0] is not None and best[1] >= WHOLE_SHARE:
        category = TAG_CATEGORY.get(best[0], "other")
        evidence.append(f"{_pct(best[1])} match {best[0].lower()}")
        if category == "date" and hint == "date_of_birth":
            category = "date_of_birth"
        elif category == "other" and hint in DEFAULT_INGEST:  # a labelled id: the header says which kind
            category = hint
    elif _typed_date(profile) and hint in ("date", "date_of_birth"):
        category = hint
        evidence.append(f"{profile.spark_type} column")
    elif _free_text(profile.sample):
        category = "free_text"
        evidence.append(f"free text; {_pct(any_hit)} of values hold an identifier")
    elif hint is not None:
        category = hint
    elif any_hit >= CONTAINS_SHARE:  # a column that is not PHI by name or shape, but holds identifiers
        category = "free_text"
        kinds = ", ".join(f"{_pct(s)} {t.lower()}" for t, s in sorted(contains.items(), key=lambda kv: -kv[1])[:3])
        evidence.append(f"{_pct(any_hit)} of values hold an identifier ({kinds})")
    if _nested(profile.spark_type) and category is None:  # a subtree nobody has looked into: nothing kept
        category = "other"
        evidence.append("nested: declare its leaves under fields: to keep any of them")
    if hint is not None:
        evidence.append(f"header '{profile.name}'" + ("" if hint == category else f" suggests {hint}"))
    if category is None:
        evidence.append("no detector matched" if not contains else
                        "few identifiers: " + ", ".join(f"{_pct(s)} {t.lower()}" for t, s in contains.items()))
    col_type = suggest_type(profile, category)
    pattern = _pattern(profile, category)
    if pattern is not None:
        evidence.append(f"every value fits {pattern}")
    if profile.non_null < profile.rows:
        evidence.append(f"{_pct(1 - profile.non_null / profile.rows if profile.rows else 0)} empty")
    ingest = None if category is None else _ingest(category, col_type)
    if category in ("date", "date_of_birth") and col_type == "string":
        evidence.append("not yyyy-mm-dd, so a string: suppressed (dates in ISO form could be generalized)")
    return Suggestion(profile.name, col_type, category, ingest, pattern, evidence, hint)


def _typed_date(profile: ColumnProfile) -> bool:
    return _policy_type(profile.spark_type) in ("date", "timestamp")


def _free_text(sample: Sequence[str]) -> bool:
    """Prose: most values are several words long."""
    if not sample:
        return False
    wordy = sum(1 for v in sample if len(v.split()) >= 5)
    return wordy / len(sample) >= 0.5


def _pattern(profile: ColumnProfile, category: str | None) -> str | None:
    """A pattern every non-null value of the whole column fits (checked by Spark), preferring the well-known one of
    the category; none for free text and dates (their type checks them)."""
    if category in ("free_text", "date", "date_of_birth") or not profile.fits:
        return None
    known = KNOWN_PATTERNS.get(category or "")
    if known and profile.fits.get(known) == 1.0:
        return known
    own = shape_pattern(profile.sample)
    return own if own is not None and profile.fits.get(own) == 1.0 else None


def _ingest(category: str, col_type: str) -> dict[str, Any]:
    """The conservative default for the category, or suppress where the column's type does not take it."""
    from lakehouse_phi.transforms import registry

    rule = DEFAULT_INGEST.get(category, SUPPRESS)
    accepts = registry.get(rule["strategy"]).accepts
    return dict(rule) if accepts is None or col_type in accepts else dict(SUPPRESS)
