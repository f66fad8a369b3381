"""Nested columns (struct, array) in the fused Arrow pass: masked leaf by leaf, same shape, reasons by path."""

from __future__ import annotations

import base64
import hashlib
import hmac as std_hmac
import json

import pyarrow as pa
import pytest

from lakehouse_phi.engine.plan import ERRORS_COL, FINGERPRINT_COL, SCAN_COL, IngestPlan, TablePlan, key_needs
from lakehouse_phi.errors import PolicyError
from lakehouse_phi.keys.providers import Fetchers, load_keys
from lakehouse_phi.policy.load import LoadedPolicy, parse_yaml, policy_from_data

KEY = hashlib.sha256(b"nested-tests").digest()
ENV = {"PSEUDO": base64.b64encode(KEY).decode(), "AES": base64.b64encode(KEY).decode()}

POLICY = """
version: 1
name: fhir-test
keys:
  pseudonym: {provider: env, ref: PSEUDO}
  dek: {provider: env, ref: AES}
tables:
  patient:
    source: {format: json, path: landing/Patient}
    bronze: out/patient
    record_key: [id]
    on_unclassified: drop
    columns:
      id: {type: string, required: true, phi: medical_record_number, ingest: {strategy: hmac, key: pseudonym}}
      resourceType: {type: string, pattern: '^Patient$'}
      birthDate: {type: date, phi: date_of_birth, ingest: {strategy: generalize_date, to: year}}
      meta:
        type: struct
        fields:
          ".versionId": {type: string}
          ".lastUpdated": {type: timestamp}
      name:
        type: array<struct>
        fields:
          "[].use":     {type: string}
          "[].family":  {type: string, phi: name, ingest: {strategy: hmac, key: pseudonym, normalize: lower}}
          "[].given[]": {type: string, phi: name, ingest: suppress}
          "[].prefix[]": {type: string}
      telecom:
        type: array<struct>
        fields:
          "[].system": {type: string}
          "[].value":  {type: string, phi: phone, ingest: {strategy: partial, keep_last: 4}}
          "[].use":    {type: string}
          "[].rank":   {type: int}
      address:
        type: array<struct>
        fields:
          "[].line[]":     {type: string, phi: address, ingest: redact}
          "[].city":       {type: string, phi: address, ingest: suppress}
          "[].state":      {type: string}
          "[].postalCode": {type: string, pattern: '^\\d{5}(-\\d{4})?$', phi: zip, ingest: zip3}
          "[].text":       {type: string, phi: address, ingest: {strategy: encrypt, key: dek}}
        derive:
          home_zip3: {from: "address[0].postalCode", strategy: zip3}
      extension: {type: json, phi: free_text, ingest: suppress}
      maritalStatus: {type: json}
"""


def _loaded(text: str = POLICY) -> LoadedPolicy:
    return LoadedPolicy(policy_from_data(parse_yaml(text, "t"), "t"), "0" * 64, "t")


def _plan(text: str = POLICY) -> IngestPlan:
    loaded = _loaded(text)
    spec = loaded.policy.tables["patient"]
    keys = load_keys(loaded.policy.keys, key_needs(spec), Fetchers(environ=ENV))
    return IngestPlan(TablePlan(loaded, "patient", keys))


NAME_T = pa.list_(pa.struct([("family", pa.string()), ("given", pa.list_(pa.string())),
                             ("prefix", pa.list_(pa.string())), ("use", pa.string())]))
TELECOM_T = pa.list_(pa.struct([("rank", pa.int64()), ("system", pa.string()), ("use", pa.string()),
                                ("value", pa.string())]))
ADDRESS_T = pa.list_(pa.struct([("city", pa.string()), ("line", pa.list_(pa.string())),
                                ("postalCode", pa.string()), ("state", pa.string())]))
META_T = pa.struct([("lastUpdated", pa.string()), ("versionId", pa.string())])
EXT_T = pa.list_(pa.struct([("url", pa.string()), ("valueString", pa.string())]))

P1 = {"id": "p1", "resourceType": "Patient", "birthDate": "1961-07-04",
      "meta": {"lastUpdated": "2024-01-02T03:04:05.123+00:00", "versionId": "3"},
      "name": [{"family": "Smith", "given": ["Ann", "Marie"], "prefix": ["Mrs."], "use": "official"},
               {"family": None, "given": None, "prefix": None, "use": "nickname"}],
      "telecom": [{"rank": 1, "system": "phone", "use": "home", "value": "555-123-4567"}],
      "address": [{"city": "Boston", "line": ["1 Main St", "Apt 2"], "postalCode": "02115", "state": "MA"},
                  {"city": "Salem", "line": [], "postalCode": "01970", "state": "MA"}],
      "extension": [{"url": "http://hl7.org/mothersMaidenName", "valueString": "Jones"}],
      "maritalStatus": '{"text":"M"}'}
P2 = {"id": "p2", "resourceType": "Patient", "birthDate": None, "meta": None, "name": None, "telecom": [],
      "address": None, "extension": None, "maritalStatus": None}
P3 = {"id": "p3", "resourceType": "Patient", "birthDate": "1980-02-02", "meta": None,
      "name": [None, {"family": "Lee", "given": [None, "Bo"], "prefix": [], "use": None}],
      "telecom": None,
      "address": [{"city": "X", "line": ["9 Elm"], "postalCode": "ZIP-BAD-999", "state": "NY"}],
      "extension": None, "maritalStatus": None}

SCHEMA = pa.schema([("id", pa.string()), ("resourceType", pa.string()), ("birthDate", pa.string()),
                    ("meta", META_T), ("name", NAME_T), ("telecom", TELECOM_T), ("address", ADDRESS_T),
                    ("extension", EXT_T), ("maritalStatus", pa.string())])


def _batch(*rows):
    return pa.RecordBatch.from_pylist(list(rows), schema=SCHEMA)


def _hmac(text: str) -> str:
    return std_hmac.new(KEY, text.encode(), hashlib.sha256).hexdigest()


def test_leaves_masked_in_place_same_shape():
    plan = _plan()
    out = plan.process(_batch(P1, P2)).to_pylist()
    a, b = out
    assert a[ERRORS_COL] == [] and b[ERRORS_COL] == []
    assert a["id"] == _hmac("p1")
    assert str(a["birthDate"]) == "1961-01-01"
    assert a["name"] == [{"use": "official", "family": _hmac("smith"), "given": [None, None], "prefix": ["Mrs."]},
                         {"use": "nickname", "family": None, "given": None, "prefix": None}]
    assert a["telecom"] == [{"system": "phone", "value": "********4567", "use": "home", "rank": 1}]
    assert a["address"][0]["line"] == ["[REDACTED]", "[REDACTED]"] and a["address"][1]["line"] == []
    assert [x["postalCode"] for x in a["address"]] == ["021", "019"]
    assert [x["city"] for x in a["address"]] == [None, None]
    assert a["home_zip3"] == "021"
    assert a["meta"]["versionId"] == "3" and a["meta"]["lastUpdated"].isoformat() == "2024-01-02T03:04:05.123000+00:00"
    assert a["extension"] is None and a["maritalStatus"] == '{"text":"M"}'
    # NULL and empty stay as they were: no element dropped or added
    assert b["name"] is None and b["telecom"] == [] and b["address"] is None and b["meta"] is None
    assert b["home_zip3"] is None


def test_bronze_type_is_the_declared_tree():
    plan = _plan()
    ddl = plan.result_ddl()
    assert ("`name` array<struct<`use`:string,`family`:string,`given`:array<string>,`prefix`:array<string>>>"
            in ddl)
    assert "`home_zip3` string" in ddl and "`extension` string" in ddl
    assert plan.plan.column_report()["name[].family"] == {"strategy": "hmac", "key_version": 1}
    assert plan.plan.key_versions()["address[].text"] == 1


def test_bad_leaf_quarantines_its_row_by_path_never_the_value():
    plan = _plan()
    out = plan.process(_batch(P1, P3)).to_pylist()
    assert out[0][ERRORS_COL] == []
    errors = out[1][ERRORS_COL]
    assert [(e["column"], e["rule"]) for e in errors] == [("address[].postalCode", "pattern")]
    assert "ZIP-BAD-999" not in json.dumps(out[1], default=str)
    # the row is still masked like bronze: the bad leaf NULL, the others masked, NULL elements kept in place
    assert out[1]["address"][0]["postalCode"] is None and out[1]["address"][0]["line"] == ["[REDACTED]"]
    assert out[1]["name"][0] is None and out[1]["name"][1]["given"] == [None, None]


def test_sliced_batches_keep_offsets():
    plan = _plan()
    batch = _batch(P2, P1, P3, P1)
    whole = plan.process(batch).to_pylist()
    part = plan.process(batch.slice(1, 2)).to_pylist()
    drop = ("address",)  # encrypt is random: compare the rest
    strip = [{k: v for k, v in r.items() if k not in drop} for r in part]
    assert strip == [{k: v for k, v in r.items() if k not in drop} for r in whole[1:3]]


def test_a_struct_where_a_scalar_is_declared_quarantines_the_row():
    schema = pa.schema([("id", pa.string()), ("resourceType", pa.struct([("x", pa.string())]))])
    text = POLICY.split("      birthDate:")[0]
    plan = _plan(text)
    out = plan.process(pa.RecordBatch.from_pylist(
        [{"id": "a", "resourceType": {"x": "SECRET-SSN-123-45-6789"}}, {"id": "b", "resourceType": None}],
        schema=schema)).to_pylist()
    assert [(e["column"], e["rule"]) for e in out[0][ERRORS_COL]] == [("resourceType", "type")]
    assert out[0]["resourceType"] is None and "SECRET" not in json.dumps(out, default=str)
    assert out[1][ERRORS_COL] == []


def test_a_list_where_a_struct_is_declared_and_a_list_inside_a_leaf():
    plan = _plan()
    schema = SCHEMA.set(SCHEMA.get_field_index("meta"), pa.field("meta", pa.list_(pa.string())))
    row = dict(P2, meta=["SENTINEL-1"])
    out = plan.process(pa.RecordBatch.from_pylist([row], schema=schema)).to_pylist()[0]
    assert [(e["column"], e["rule"]) for e in out[ERRORS_COL]] == [("meta", "type")]
    assert "SENTINEL" not in json.dumps(out, default=str)


def test_fingerprint_stable_across_source_shapes_and_scan_covers_leaves():
    plan = _plan()
    fp1 = plan.process(_batch(P1))[FINGERPRINT_COL].to_pylist()
    # the same record read with an extra, undeclared field in its structs (another file's inferred schema)
    wider_name = pa.list_(pa.struct([*NAME_T.value_type, ("suffix", pa.list_(pa.string()))]))
    schema = SCHEMA.set(SCHEMA.get_field_index("name"), pa.field("name", wider_name))
    row = dict(P1, name=[dict(n, suffix=None) for n in P1["name"]])
    fp2 = plan.process(pa.RecordBatch.from_pylist([row], schema=schema))[FINGERPRINT_COL].to_pylist()
    assert fp1 == fp2
    changed = dict(P1, name=[dict(P1["name"][0], given=["Ann"]), P1["name"][1]])
    assert plan.process(_batch(changed))[FINGERPRINT_COL].to_pylist() != fp1
    # a non-PHI leaf that holds an SSN-looking value is a scan hit, by path
    leak = dict(P1, name=[dict(P1["name"][0], prefix=["123-45-6789"])])
    hits = plan.process(_batch(P2, leak))[SCAN_COL].to_pylist()
    assert hits == [[], ["name[].prefix[]:ssn"]]
    assert "name[].prefix[]" in plan.scan_columns


@pytest.mark.parametrize("column, problem", [
    ({"type": "array<struct>"}, "declares its leaves under fields"),
    ({"type": "struct", "fields": {"[].x": {"type": "string"}}}, "not an array"),
    ({"type": "array<struct>", "fields": {".x": {"type": "string"}}}, "has no field"),
    ({"type": "array<struct>", "fields": {"[].a": {"type": "json"}, "[].a.b": {"type": "string"}}}, "a.b"),
    ({"type": "array<struct>", "fields": {"[].x": {"type": "array<string>"}}}, "a leaf is a scalar"),
    ({"type": "array<struct>", "fields": {"[0].x": {"type": "string"}}}, "covers every element"),
    ({"type": "array<struct>", "fields": {"[].x": {"type": "string", "phi": "name"}}}, "no ingest strategy"),
    ({"type": "array<struct>", "fields": {"[].x": {"type": "string", "phi": "name", "ingest": "keep"}}},
     "needs justification"),
    ({"type": "array<struct>", "phi": "name", "fields": {"[].x": {"type": "string"}}}, "write them on its leaves"),
    ({"type": "array<struct>", "fields": {"[].x": {"type": "string"}},
      "derive": {"d": {"from": "c[].x", "strategy": "keep"}}}, "pick one element"),
    ({"type": "array<struct>", "fields": {"[].x": {"type": "string"}},
      "derive": {"d": {"from": "c[0].y", "strategy": "keep"}}}, "reaches no declared leaf"),
    ({"type": "array<struct>", "fields": {"[].x": {"type": "int", "ingest": "zip3"}}}, "does not take"),
])
def test_policy_errors_name_the_leaf(column, problem):
    text = ("version: 1\nname: t\nkeys: {k: {provider: env, ref: K}}\ntables:\n  t:\n"
            "    source: {format: json, path: x}\n    bronze: y\n    fingerprint_key: k\n"
            f"    columns:\n      c: {json.dumps(column)}\n")
    with pytest.raises(PolicyError) as err:
        policy_from_data(parse_yaml(text, "t"), "t")
    assert problem in str(err.value), str(err.value)
    assert "tables.t.columns.c" in str(err.value)


def test_nested_type_on_a_csv_source_is_a_policy_error():
    text = ("version: 1\nname: t\nkeys: {k: {provider: env, ref: K}}\ntables:\n  t:\n"
            "    source: {format: csv, path: x}\n    bronze: y\n    fingerprint_key: k\n"
            "    columns:\n      c: {type: 'array<struct>', fields: {'[].x': {type: string}}}\n")
    with pytest.raises(PolicyError, match=r"tables\.t\.columns\.c\.type.*csv source"):
        policy_from_data(parse_yaml(text, "t"), "t")


def test_json_text_is_the_sorted_compact_json_of_the_value():
    from lakehouse_phi.engine.nested import json_text

    t = pa.list_(pa.struct([("url", pa.string()), ("valueDecimal", pa.float64()), ("n", pa.int64()),
                            ("b", pa.bool_()), ("sub", pa.list_(pa.string()))]))
    rows = [[{"url": 'a,,b "q" \\ \n\t\x01 é', "valueDecimal": 1.5, "n": None, "b": True, "sub": ["x", None]}],
            None, [], [None, {"url": None, "valueDecimal": None, "n": 3, "b": False, "sub": []}]]
    got = json_text(pa.array(rows, t)).to_pylist()

    def plain(v):
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items() if x is not None}
        return [plain(x) for x in v] if isinstance(v, list) else v

    want = [None if r is None else json.dumps(plain(r), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
            for r in rows]
    assert got == want


def test_json_object_text_in_a_scalar_column_of_a_json_source_quarantines_the_row():
    """Spark reads a key that is an object in some records and a string in others as a string: the object's JSON
    text. It is not stringified into bronze."""
    plan = _plan(POLICY.split("      birthDate:")[0])
    batch = pa.RecordBatch.from_pylist([{"id": "a", "resourceType": '{"ssn":"SENTINEL-123-45-6789"}'},
                                        {"id": "b", "resourceType": "[REDACTED]"},
                                        {"id": "c", "resourceType": "Patient"}],
                                       schema=pa.schema([("id", pa.string()), ("resourceType", pa.string())]))
    out = plan.process(batch).to_pylist()
    assert [(e["column"], e["rule"]) for e in out[0][ERRORS_COL]] == [("resourceType", "type")]
    assert "SENTINEL" not in json.dumps(out)
    assert [(e["column"], e["rule"]) for e in out[1][ERRORS_COL]] == [("resourceType", "pattern")]  # not JSON
    assert out[2][ERRORS_COL] == []


def test_the_report_lists_leaves_by_path():
    from lakehouse_phi.report.model import policy_columns

    rows = {r.column: (r.strategy, r.phi) for r in policy_columns(_loaded())}
    assert rows["name[].family"] == ("hmac", "name") and rows["address[].line[]"] == ("redact", "address")
    assert "name" not in rows and rows["home_zip3"][0] == "zip3"


def test_undeclared_struct_fields_are_labelled_by_parent_path_position_and_keyed_hash():
    from lakehouse_phi.engine.drift import check_drift
    from lakehouse_phi.engine.names import NameHasher
    from lakehouse_phi.errors import JobRefused

    loaded = _loaded(POLICY.replace("on_unclassified: drop", "on_unclassified: fail"))
    spec = loaded.policy.tables["patient"]
    name_type = {"type": "array", "elementType": {"type": "struct", "fields": [
        {"name": "family", "type": "string"}, {"name": "MothersMaidenSecret", "type": "string"},
        {"name": "given", "type": {"type": "array", "elementType": "string"}}]}}
    meta_type = {"type": "struct", "fields": [{"name": "versionId", "type": "string"},
                                              {"name": "tag", "type": {"type": "struct", "fields": []}}]}
    columns = list(spec.columns)
    hasher = NameHasher(KEY)
    with pytest.raises(JobRefused) as err:
        check_drift(spec, "patient", columns, "x", hasher, {"name": name_type, "meta": meta_type})
    message = str(err.value)
    assert "name[].#2 h:" in message and "meta.#2 h:" in message
    assert "MothersMaidenSecret" not in message and "tag" not in message.split("h:")[1]
    dropped = check_drift(_loaded().policy.tables["patient"], "patient", columns, "x", hasher,
                          {"name": name_type}).dropped
    assert len(dropped) == 1 and dropped[0].startswith("name[].#2 h:")
    # a JSON source may lack an optional column altogether; a required one is still missing
    assert check_drift(spec, "patient", [c for c in columns if c != "telecom"], "x", hasher).dropped == []
    with pytest.raises(JobRefused, match="missing"):
        check_drift(spec, "patient", [c for c in columns if c != "id"], "x", hasher)


# ------------------------------------------------------------------- risk and export name a leaf (issue 25.5)
_RAW_LEAF = ("          \"[].note\": {type: string, phi: address, pattern: '^[A-Z]+$', "
             "ingest: {strategy: keep, justification: test}}\n")


def _exporting(*columns: str) -> str:
    text = POLICY.replace("  dek: {provider: env, ref: AES}\n",
                          "  dek: {provider: env, ref: AES}\n  signer: {provider: env, ref: SIGN}\n")
    text = text.replace("    on_unclassified: drop\n", "    on_unclassified: drop\n    risk: {k: 2}\n"
                        f"    export: {{columns: {json.dumps(list(columns))}, signing_key: signer}}\n")
    text = text.replace("ingest: zip3}", "ingest: zip3, quasi_identifier: true}")  # a leaf's flag counts for risk
    return text.replace("          \"[].text\":", _RAW_LEAF + "          \"[].text\":")


def test_an_export_column_may_name_a_leaf_and_risk_measures_it():
    from lakehouse_phi.policy.nested import release_name
    from lakehouse_phi.release.risk import release_columns

    assert release_name("address[0].postalCode") == "address_0_postalCode"
    assert release_name("name[1].given[0]") == "name_1_given_0" and release_name("birthDate") == "birthDate"
    spec = _loaded(_exporting("birthDate", "address[0].postalCode", "name[0].family")).policy.tables["patient"]
    cols = release_columns(spec)
    # a zip leaf links like a quasi-identifier once exported; its zip3 value may be shown; the name pseudonym is not
    assert cols.quasi_identifiers == ("birthDate", "address_0_postalCode")
    assert "address_0_postalCode" in cols.showable and "name_0_family" not in cols.quasi_identifiers


@pytest.mark.parametrize("ref, problem", [
    ("address[].postalCode", "an export column holds one value per row: pick one element by index"),
    ("address[0].zip", "reaches no declared leaf of address"),
    ("address[0].line", "reaches no declared leaf of address"),
    ("nosuch[0].x", "not a bronze output column of tables.patient nor a leaf"),
    ("birthDate[0]", "not a bronze output column of tables.patient nor a leaf"),
    ("address[0]..x", "cannot read the path"),
    ("telecom[0].value", "is a direct identifier (phi: phone) written with strategy partial"),
    ("address[0].note", "is PHI (phi: address) kept raw in bronze"),
])
def test_an_export_leaf_is_checked_like_a_column(ref, problem):
    with pytest.raises(PolicyError) as err:
        _loaded(_exporting("birthDate", ref))
    assert problem in str(err.value), str(err.value)
    assert "tables.patient.export.columns.1" in str(err.value)


def test_an_export_leaf_name_may_not_shadow_an_output_column():
    text = _exporting("birthDate", "address[0].postalCode")
    text = text.replace("home_zip3: {from", "address_0_postalCode: {from")
    with pytest.raises(PolicyError, match=r"export\.columns\.1.*exported as 'address_0_postalCode', which is "
                                          r"already an output column"):
        _loaded(text)


def test_a_leaf_is_a_quasi_identifier_or_sensitive_not_both():
    text = _exporting("birthDate").replace("quasi_identifier: true}", "quasi_identifier: true, sensitive: true}")
    with pytest.raises(PolicyError, match=r"tables\.patient\.columns\.address\.fields\.\[\]\.postalCode: a column is "
                                          r"a quasi_identifier or sensitive, not both"):
        _loaded(text)


def test_a_flagged_leaf_counts_for_risk_only_where_it_is_measured():
    # a derive from the leaf or an export naming it measures it; a flagged leaf read by neither does not count
    assert _loaded(_exporting("birthDate", "address[0].postalCode")).policy.tables["patient"].risk.k == 2
    assert _loaded(_exporting("birthDate")).policy.tables["patient"].risk.k == 2  # through home_zip3
    unread = _exporting("birthDate").replace("        derive:\n          home_zip3: {from: \"address[0].postalCode\", "
                                             "strategy: zip3}\n", "")
    assert "home_zip3" not in unread
    with pytest.raises(PolicyError, match=r"tables\.patient\.risk: risk needs at least one column with "
                                          r"quasi_identifier: true"):
        _loaded(unread)
