"""The draft's classifier without Spark: header hints, shapes that hold no letter or digit of a value, and the
conservative strategy per category (falling back to suppress where the type does not take it)."""

from __future__ import annotations

import pytest

from lakehouse_phi.suggest.classify import ColumnProfile, classify, header_hint, shape, shape_pattern


@pytest.mark.parametrize(("header", "category"), [
    ("soc_sec", "ssn"), ("SSN", "ssn"), ("patientDOB", "date_of_birth"), ("birth_date", "date_of_birth"),
    ("zip_code", "zip"), ("PostalCode", "zip"), ("ip_addr", "ip"), ("email_address", "email"),
    ("first_name", "name"), ("payer_name", None), ("state", None), ("cpt_code", None), ("address_type", None),
    ("registered_at", "date"), ("member_id", "health_plan_number"), ("clinical_notes", "free_text"),
])
def test_header_hints(header, category):
    assert header_hint(header) == category


def test_a_shape_holds_no_letter_or_digit_of_the_value():
    assert shape("MRN0012345") == r"[A-Z]{3}\d{7}"
    assert shape("ab-12.x") == r"[a-z]{2}\-\d{2}\.[a-z]"
    assert shape_pattern(["E123456789", "E000000001"]) == r"^[A-Z]\d{9}$"
    assert shape_pattern(["A1", "AB1"]) is None and shape_pattern(["two words"]) is None


def _profile(name: str, values: list[str], spark_type: str = "string", fits: dict | None = None) -> ColumnProfile:
    return ColumnProfile(name, spark_type, len(values), len(values), list(values), fits or {})


def test_categories_and_conservative_strategies():
    ssn = classify(_profile("x1", ["123-45-6789", "234-56-7890", "345-67-8901"],
                            fits={r"^\d{3}-?\d{2}-?\d{4}$": 1.0}))
    assert (ssn.phi, ssn.ingest, ssn.pattern) == ("ssn", {"strategy": "suppress"}, r"^\d{3}-?\d{2}-?\d{4}$")
    assert ssn.evidence[0] == "100% match ssn"
    # a date of birth in a form the date type does not read stays a string: suppressed, not generalized
    dob = classify(_profile("dob", ["03/15/1980", "04/01/1975"]))
    assert (dob.phi, dob.type, dob.ingest) == ("date_of_birth", "string", {"strategy": "suppress"})
    iso = classify(_profile("dob", ["1980-03-15", "1975-04-01"]))
    assert (iso.type, iso.ingest) == ("date", {"strategy": "generalize_date", "to": "year"})
    # a column that is not PHI by name or shape but holds identifiers is scrubbed
    payer = classify(_profile("payer", ["Medicare"] * 9 + ["call 555-201-7788"]))
    assert payer.phi == "free_text" and payer.ingest == {"strategy": "scrub_text"}
    plain = classify(_profile("amount", ["12.50", "3.10"]))
    assert (plain.phi, plain.type, plain.ingest) == (None, "double", None)


def test_a_draft_without_phi_still_validates_and_seals_its_trail():
    from lakehouse_phi.policy.load import parse_yaml, policy_from_data
    from lakehouse_phi.suggest.render import render_draft

    plain = [classify(_profile("amount", ["12.50", "3.10"])), classify(_profile("odd key: x", ["a b"]))]
    text = render_draft("my table", "data/x.csv", "csv", 2, 2, plain)
    policy = policy_from_data(parse_yaml(text, "draft"))
    assert policy.audit_key == "audit-trail" and list(policy.tables["my table"].columns) == ["amount", "odd key: x"]
    assert "DRAFT" in text and "0 of 2 columns look like PHI" in text


def test_a_nested_column_is_kept_whole_as_json_and_suppressed():
    tags = classify(_profile("tags", ['["a", "b"]', '["c"]'], spark_type="array<string>"))
    assert (tags.type, tags.phi, tags.ingest) == ("json", "other", {"strategy": "suppress"})
    assert "declare its leaves under fields:" in tags.evidence[0]


def test_odd_headers_and_paths_stay_valid_yaml():
    from lakehouse_phi.policy.load import parse_yaml, policy_from_data
    from lakehouse_phi.suggest.render import render_draft

    names = ["line\nbreak", "it's #1", "yes", "tab\there", "a: b"]
    text = render_draft("t", "data/it's\nodd.csv", "csv", 1, 1, [classify(_profile(n, ["x y"])) for n in names])
    policy = policy_from_data(parse_yaml(text, "draft"))
    assert list(policy.tables["t"].columns) == names and policy.tables["t"].source.path == "data/it's\nodd.csv"


def test_insurance_ids_and_non_iso_dates_say_why():
    assert header_hint("Insurance ID") == "health_plan_number" and header_hint("medicare_no") == "health_plan_number"
    dob = classify(_profile("DateOfBirth", ["03/15/1980", "12/01/1975"]))
    assert dob.ingest == {"strategy": "suppress"} and any("not yyyy-mm-dd" in e for e in dob.evidence)
