"""The second wave's policy keys (policy.md: incremental bronze, safe release, key lifecycle): shapes and
cross-references, each problem with its place."""

from __future__ import annotations

import pytest

from lakehouse_phi.errors import PolicyError
from lakehouse_phi.policy.load import policy_from_data
from lakehouse_phi.policy.model import RESERVED_COLUMNS


def base(columns: dict | None = None, **table_extra) -> dict:
    columns = columns or {"mrn": {"type": "string", "phi": "medical_record_number",
                                  "ingest": {"strategy": "hmac", "key": "k"}},
                          "zip": {"type": "string", "phi": "zip", "ingest": "zip3", "quasi_identifier": True},
                          "dx": {"type": "string", "sensitive": True},
                          "updated_at": {"type": "timestamp"}}
    return {
        "version": 1, "name": "t",
        "keys": {"k": {"provider": "env", "ref": "K"}, "fp": {"provider": "env", "ref": "FP"},
                 "signer": {"provider": "file", "ref": "signer.pem"}},
        "tables": {"t": {"source": {"format": "csv", "path": "p"}, "bronze": "b", "record_key": ["mrn"],
                         "columns": columns, **table_extra}},
    }


def problems_of(data: dict) -> dict[str, str]:
    with pytest.raises(PolicyError) as info:
        policy_from_data(data, "t")
    return {p.place: p.message for p in info.value.problems}


def test_defaults_and_a_full_table_load():
    t = policy_from_data(base()).tables["t"]
    assert (t.bronze_mode, t.sequence_by, t.max_quarantine_rate, t.source_file) == ("history", None, None, "hash")
    assert t.fingerprint_key_name == "k"  # the record key's hmac key
    full = base(bronze_mode="latest", sequence_by="updated_at", fingerprint_key="fp", max_quarantine_rate=0.02,
                source_file="path", risk={"k": 11, "l": 2}, export={"columns": ["mrn", "zip"], "signing_key": "signer"},
                retention_days=2555)
    t = policy_from_data(full).tables["t"]
    assert (t.bronze_mode, t.fingerprint_key_name, t.risk.k, t.risk.l, t.retention_days) == ("latest", "fp", 11, 2,
                                                                                             2555)


def test_fingerprint_key_falls_back_to_any_hmac_then_must_be_named():
    cols = {"id": {"type": "string"}, "email": {"type": "string", "phi": "email",
                                                "ingest": {"strategy": "hmac", "key": "k"}}}
    assert policy_from_data(base(cols, record_key=["id"])).tables["t"].fingerprint_key_name == "k"
    assert "tables.t.fingerprint_key" in problems_of(base({"id": {"type": "string"}}, record_key=["id"]))
    assert "not declared" in problems_of(base(fingerprint_key="nope"))["tables.t.fingerprint_key"]


@pytest.mark.parametrize(("extra", "place"), [
    ({"bronze_mode": "newest"}, "tables.t.bronze_mode"),
    ({"sequence_by": "updated_at"}, "tables.t.sequence_by"),                      # needs latest
    ({"bronze_mode": "latest", "sequence_by": "nope"}, "tables.t.sequence_by"),
    ({"max_quarantine_rate": 1.5}, "tables.t.max_quarantine_rate"),
    ({"source_file": "name"}, "tables.t.source_file"),
    ({"risk": {"k": 0}}, "tables.t.risk.k"),
    ({"export": {"columns": ["nope"], "signing_key": "signer"}}, "tables.t.export.columns.0"),
    ({"export": {"columns": ["mrn"], "signing_key": "nope"}}, "tables.t.export.signing_key"),
    ({"retention_days": 0}, "tables.t.retention_days"),
])
def test_bad_table_keys_name_their_place(extra, place):
    assert place in problems_of(base(**extra))


def test_latest_needs_a_record_key_and_risk_needs_its_columns():
    data = base(bronze_mode="latest", risk={"k": 5, "l": 2})
    data["tables"]["t"]["record_key"] = []
    for c in ("zip", "dx"):
        data["tables"]["t"]["columns"][c].pop("quasi_identifier", None)
        data["tables"]["t"]["columns"][c].pop("sensitive", None)
    found = problems_of(data)
    assert {"tables.t.bronze_mode", "tables.t.risk", "tables.t.risk.l"} <= set(found)


@pytest.mark.parametrize("name", RESERVED_COLUMNS)
def test_reserved_column_names_are_refused(name):
    data = base()
    data["tables"]["t"]["columns"][name] = {"type": "string"}
    assert "reserved" in problems_of(data)[f"tables.t.columns.{name}"]


@pytest.mark.parametrize("name", ["_phi_scan_hits", "_corrupt_record", "_lhp_order_file", "_lhp_order_pos",
                                  "_lhp_anything", "__lhp_rn"])
def test_every_bookkeeping_name_and_prefix_is_refused_as_a_column_and_a_derive(name):
    data = base()
    data["tables"]["t"]["columns"][name] = {"type": "string"}
    assert "reserved" in problems_of(data)[f"tables.t.columns.{name}"]
    data = base()
    data["tables"]["t"]["columns"]["zip"]["derive"] = {name: {"strategy": "suppress"}}
    assert "reserved" in problems_of(data)[f"tables.t.columns.zip.derive.{name}"]


def test_the_bookkeeping_names_have_one_owner():
    """Every module that names a bookkeeping column takes it from lakehouse_phi.policy.columns."""
    import pathlib

    from lakehouse_phi.policy import columns

    root = pathlib.Path(columns.__file__).parents[1]
    for path in root.rglob("*.py"):
        if path.name == "columns.py" and path.parent.name == "policy":
            continue
        text = path.read_text(encoding="utf-8")
        for name in columns.RESERVED:
            assert f'"{name}"' not in text and f"'{name}'" not in text, f"{path} spells {name} itself"


def test_keep_on_phi_needs_a_pattern():
    data = base()
    data["tables"]["t"]["columns"]["phone"] = {"type": "string", "phi": "phone",
                                               "ingest": {"strategy": "keep", "justification": "callbacks"}}
    assert "pattern" in problems_of(data)["tables.t.columns.phone.pattern"]
    data["tables"]["t"]["columns"]["phone"]["pattern"] = r"^\d{10}$"
    policy_from_data(data)


@pytest.mark.parametrize("name", ["a'b", "x', 'lakehouse_phi.audit_hash' = 'f", "two words", "-lead", "x" * 129])
def test_policy_name_is_a_safe_charset(name):
    data = base()
    data["name"] = name
    assert "name" in problems_of(data)


def test_key_previous_versions_and_audit_key():
    data = base()
    data["keys"]["k"] = {"provider": "env", "ref": "K4", "version": 4, "previous": {3: "K3", 1: "K1"}}
    data["audit"] = {"key": "fp"}
    p = policy_from_data(data)
    assert p.keys["k"].previous == {3: "K3", 1: "K1"} and p.audit.key == "fp"
    data["keys"]["k"]["previous"] = {4: "K4old"}
    data["audit"] = {"key": "nope"}
    found = problems_of(data)
    assert "keys.k" in found and "audit.key" in found
    data = base()
    data["keys"]["w"] = {"provider": "aws-kms", "ref": "conf/keys/dek.wrapped"}
    policy_from_data(data)
