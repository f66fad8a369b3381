"""The synthetic data generator: shape, determinism, distributions, defects, joins, landing files."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from lakehouse_phi import synth
from lakehouse_phi.synth.vocab import RESTRICTED_ZIP3

POLICY = yaml.safe_load((Path(__file__).resolve().parents[2] / "conf" / "policy.yaml").read_text())["tables"]


def _valid_date(v: str) -> bool:
    try:
        dt.date.fromisoformat(v)
        return True
    except ValueError:
        return False


def _problems(table: str, row: dict) -> set[str]:
    """Columns of ``row`` that break conf/policy.yaml's declaration (required, pattern, type), and the member
    id rule of the fpe strategy (>= 6 digits)."""
    bad = set()
    for name, spec in POLICY[table]["columns"].items():
        v = row[name]
        if v is None:
            if spec.get("required"):
                bad.add(name)
            continue
        if spec.get("pattern") and not re.search(spec["pattern"], str(v)):
            bad.add(name)
        typ = spec.get("type", "string")
        if typ == "date" and not _valid_date(v):
            bad.add(name)
        if typ == "int" and not re.fullmatch(r"-?\d+", str(v)):
            bad.add(name)
        if typ.startswith("decimal") and not re.fullmatch(r"\d{1,10}\.\d{2}", v):
            bad.add(name)
        if spec.get("phi") == "health_plan_number" and sum(c.isdigit() for c in v) < 6:
            bad.add(name)
    return bad


@pytest.fixture(scope="module")
def world() -> dict[str, pa.Table]:
    return synth.generate_all(patients=3000, seed=7)


# ------------------------------------------------------------------------------------------------ shape
def test_columns_and_landing_layout_are_those_of_the_policy():
    from lakehouse_phi.synth.fhir import FHIR_LANDING

    for table, spec in POLICY.items():
        if spec["source"]["path"] in FHIR_LANDING.values():  # FHIR resources: lakehouse_phi.synth.fhir
            continue
        assert synth.COLUMNS[table] == tuple(spec["columns"]), table
        directory, fmt, _ = synth.LANDING[table]
        assert (directory, fmt) == (spec["source"]["path"], spec["source"]["format"])


@pytest.mark.parametrize("table", synth.TABLES)
@pytest.mark.parametrize("rows", [0, 1, 37])
def test_row_counts_and_types(table, rows):
    t = synth.generate(table, rows, seed=3)
    assert t.num_rows == rows
    assert t.column_names == list(synth.COLUMNS[table])
    for field in t.schema:
        assert field.type == (pa.int32() if field.name == "length_of_stay" else pa.string())


def test_more_rows_than_one_chunk_keeps_ids_unique():
    n = synth.CHUNK_ROWS + 1000
    t = synth.generate("claims", n, seed=1, patients=500)
    assert t.num_rows == n
    assert pc.count_distinct(t.column("claim_id")).as_py() == n


# ------------------------------------------------------------------------------------------------ determinism
@pytest.mark.parametrize("table", synth.TABLES)
def test_same_seed_same_table_other_seed_other_table(table):
    a = synth.generate_table(table, 500, seed=11, malformed_rate=0.05, patients=200)
    b = synth.generate_table(table, 500, seed=11, malformed_rate=0.05, patients=200)
    c = synth.generate(table, 500, seed=12, malformed_rate=0.05, patients=200)
    assert a.table.equals(b.table) and a.defects.equals(b.defects)
    assert not a.table.equals(c)


def test_labeled_notes_are_deterministic():
    assert synth.labeled_notes(50, seed=4) == synth.labeled_notes(50, seed=4)
    assert synth.labeled_notes(50, seed=4) != synth.labeled_notes(50, seed=5)


# ------------------------------------------------------------------------------------------------ distributions
def test_patients_distributions(world):
    p = world["patients"].to_pydict()
    n = len(p["mrn"])
    ages = np.array([int(a) for a in p["age"]])
    assert ages.min() >= 0 and ages.max() <= 105
    assert 0.03 <= np.mean(ages > 89) <= 0.10  # several percent older than 89
    assert np.mean(ages < 18) > 0.1
    zip3 = [z[:3] for z in p["zip"]]
    restricted = {z for z, _ in RESTRICTED_ZIP3}
    assert 0.02 <= np.mean([z in restricted for z in zip3]) <= 0.07
    assert len(restricted & set(zip3)) >= 12  # most of the 17 prefixes show up
    assert all(re.fullmatch(r"\d{5}", z) for z in p["zip"])
    states = p["state"]
    assert states.count("NY") / n > 0.2 and states.count("NJ") / n > 0.12
    assert len(set(states)) >= 20
    ssn = [s for s in p["ssn"] if s]
    assert 0.6 < np.mean(["-" in s for s in ssn]) < 0.9  # with and without dashes
    phones = [x for x in p["phone"] if x]
    forms = {re.sub(r"\d", "9", x) for x in phones}
    assert {"(999) 999-9999", "999-999-9999", "999.999.9999", "+9 999 999 9999", "9999999999"} <= forms  # "+1" too
    assert all("@" in e for e in p["email"] if e)
    assert pc.count_distinct(world["patients"].column("mrn")).as_py() == n


def test_dob_is_consistent_with_age(world):
    ref = dt.date.fromisoformat(synth.REFERENCE_DATE)
    p = world["patients"].to_pydict()
    for dob_s, age in zip(p["dob"], p["age"]):
        dob = dt.date.fromisoformat(dob_s)
        exact = ref.year - dob.year - ((ref.month, ref.day) < (dob.month, dob.day))
        assert exact == int(age)


def test_every_valid_row_meets_the_policy(world):
    for table, t in world.items():
        for row in t.to_pylist():
            assert not _problems(table, row), (table, _problems(table, row))


def test_encounter_dates_and_stay(world):
    e = world["encounters"].to_pydict()
    for a, d, los in zip(e["admit_date"], e["discharge_date"], e["length_of_stay"]):
        if d is None:
            assert los is None
        else:
            assert (dt.date.fromisoformat(d) - dt.date.fromisoformat(a)).days == los >= 0
    assert any(x is None for x in e["discharge_date"])


# ------------------------------------------------------------------------------------------------ joins
def test_encounters_and_claims_reference_existing_patients(world):
    patients = world["patients"].to_pydict()
    mrns = set(patients["mrn"])
    member_of = dict(zip(patients["mrn"], patients["member_id"]))
    enc = world["encounters"].column("mrn").to_pylist()
    assert set(enc) <= mrns
    assert set(enc) == mrns  # 9000 encounters for 3000 patients: everyone has at least one
    counts = np.unique(enc, return_counts=True)[1]
    assert counts.max() >= 5  # some patients have many
    claims = world["claims"].to_pydict()
    assert set(claims["mrn"]) <= mrns
    assert all(member_of[m] == mid for m, mid in zip(claims["mrn"], claims["member_id"]))


def test_standalone_tables_with_same_seed_join():
    p = set(synth.generate("patients", 100, seed=9).column("mrn").to_pylist())
    assert set(synth.generate("claims", 400, seed=9, patients=100).column("mrn").to_pylist()) <= p


# ------------------------------------------------------------------------------------------------ defects
@pytest.mark.parametrize("table", synth.TABLES)
def test_malformed_rows_are_exactly_the_reported_ones(table):
    g = synth.generate_table(table, 4000, seed=5, malformed_rate=0.05, patients=1000)
    assert g.defects.num_rows == 200
    assert set(g.defects.column("kind").to_pylist()) == set(synth.DEFECT_KINDS[table])  # every kind occurs
    broken = {r["row"]: r["column"] for r in g.defects.to_pylist()}
    for i, row in enumerate(g.table.to_pylist()):
        problems = _problems(table, row)
        if i in broken:
            assert broken[i] in problems, (i, broken[i], row[broken[i]])
        else:
            assert not problems, (i, problems)


def test_malformed_rate_bounds():
    assert synth.generate_table("patients", 1000, malformed_rate=0.0).defects.num_rows == 0
    assert synth.generate_table("claims", 1000, malformed_rate=1.0).defects.num_rows == 1000
    with pytest.raises(ValueError, match="malformed_rate"):
        synth.generate("claims", 10, malformed_rate=1.5)
    with pytest.raises(ValueError, match="unknown table"):
        synth.generate("visits", 10)


# ------------------------------------------------------------------------------------------------ sentinels
def test_inject_replaces_and_embeds():
    g = synth.generate_table("encounters", 200, seed=2, malformed_rate=0.1, patients=50)
    bad_row = int(g.defects.column("row")[0].as_py())
    t = synth.inject(g.table, "mrn", "MRN0000042", [0, bad_row])
    assert t.column("mrn")[0].as_py() == t.column("mrn")[bad_row].as_py() == "MRN0000042"
    assert t.column("mrn")[1].as_py() == g.table.column("mrn")[1].as_py()
    t = synth.inject(t, "note", "SSN 078-05-1120", [3, 4], embed=True)
    for i in (3, 4):
        note = t.column("note")[i].as_py()
        assert note.endswith("SSN 078-05-1120")
        before = g.table.column("note")[i].as_py()
        assert before is None or note.startswith(before)
    with pytest.raises(ValueError, match="no column"):
        synth.inject(t, "nope", "x", [0])
    with pytest.raises(ValueError, match="rows must be"):
        synth.inject(t, "mrn", "x", [200])


# ------------------------------------------------------------------------------------------------ notes
def test_note_labels_point_at_identifiers():
    texts, labels = synth.labeled_notes(300, seed=1)
    kinds = set()
    for text, spans in zip(texts, labels):
        assert text == text.strip() and text.isascii()
        last_end = 0
        for s, e, tag in spans:
            assert last_end <= s < e <= len(text)
            value = text[s:e]
            assert value == value.strip() and value
            assert tag in synth.IDENTIFIER_KINDS
            last_end = e
            kinds.add(tag)
    assert kinds == set(synth.IDENTIFIER_KINDS)
    joined = " ".join(texts)
    for filler in ("mg", "/10", "BP ", "E11.9", "HbA1c"):
        assert filler in joined
    assert re.search(r"\b\d{2}:\d{2}\b", joined)


# ------------------------------------------------------------------------------------------------ landing
def test_write_landing_files_read_back_with_the_policy_columns(tmp_path):
    paths = synth.write_landing(tmp_path, rows={"patients": 120, "encounters": 300, "claims": 200}, seed=3,
                                malformed_rate=0.05)
    assert paths == {t: tmp_path / synth.LANDING[t][0] for t in synth.TABLES}
    expected = synth.generate_all(patients=120, encounters=300, claims=200, seed=3, malformed_rate=0.05)

    csv_files = sorted(paths["patients"].glob("*.csv"))
    strings = pacsv.ConvertOptions(column_types={c: pa.string() for c in synth.COLUMNS["patients"]},
                                   strings_can_be_null=True)
    patients = pa.concat_tables(pacsv.read_csv(f, convert_options=strings) for f in csv_files)
    assert patients.column_names == list(synth.COLUMNS["patients"])
    assert patients.equals(expected["patients"])

    json_files = sorted(paths["encounters"].glob("*.json"))
    encounters = pa.concat_tables(pajson.read_json(f) for f in json_files)
    assert encounters.column_names == list(synth.COLUMNS["encounters"])
    assert encounters.num_rows == 300
    assert encounters.column("note").to_pylist() == expected["encounters"].column("note").to_pylist()
    assert encounters.column("length_of_stay").to_pylist() == expected["encounters"].column(
        "length_of_stay").to_pylist()

    claims = pq.read_table(paths["claims"])
    assert claims.column_names == list(synth.COLUMNS["claims"])
    assert claims.equals(expected["claims"])


def test_write_tables_replaces_earlier_parts(tmp_path):
    t = synth.generate("claims", 10, patients=5)
    synth.write_tables(tmp_path, {"claims": [t, t]})
    synth.write_tables(tmp_path, {"claims": t})
    assert [p.name for p in (tmp_path / "landing/claims").iterdir()] == ["part-00000.parquet"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(max_size=30)), max_size=8), st.lists(st.integers(-5, 5), max_size=8))
def test_json_lines_round_trip(strings, ints):
    n = min(len(strings), len(ints))
    t = pa.table({"s": pa.array(strings[:n], pa.string()), "i": pa.array(ints[:n], pa.int32())})
    data = synth.json_lines(t)
    assert data.endswith(b"\n") or n == 0
    assert [json.loads(line) for line in data.split(b"\n")[:-1]] == t.to_pylist()
