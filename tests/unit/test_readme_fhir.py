"""The README's FHIR Patient policy is the worked example's, and it takes standard R4 Patient resources as they
come: elements present in some resources and absent in others, several names and addresses, extensions."""

from __future__ import annotations

import base64
import hashlib
import json

import pyarrow as pa
import pyarrow.json as pajson
import yaml

from lakehouse_phi.engine.plan import ERRORS_COL, IngestPlan, TablePlan, key_needs
from lakehouse_phi.keys.providers import Fetchers, load_keys
from lakehouse_phi.policy.load import LoadedPolicy, policy_from_data
from lakehouse_phi.synth import fhir
from tests.helpers import EXAMPLE
from tests.readme import blocks

SECTION = "Nested data: FHIR resources and struct/array columns"


def _readme_policy() -> dict:
    found = [yaml.safe_load(b) for b in blocks("yaml", SECTION)]
    return next(d for d in found if "tables" in d)


def test_the_readme_patient_table_is_the_worked_examples():
    conf = yaml.safe_load(EXAMPLE.read_text())
    assert _readme_policy()["tables"]["patient_fhir"] == conf["tables"]["patient_fhir"]


def test_the_readme_policy_masks_standard_patient_resources(tmp_path):
    data = _readme_policy()
    loaded = LoadedPolicy(policy_from_data(data, "README"), "0" * 64, "README")
    spec = loaded.policy.tables["patient_fhir"]
    env = {"LAKEHOUSE_PHI_PSEUDONYM_KEY": base64.b64encode(hashlib.sha256(b"readme").digest()).decode()}
    plan = IngestPlan(TablePlan(loaded, "patient_fhir", load_keys(loaded.policy.keys, key_needs(spec),
                                                                  Fetchers(environ=env))))
    pats = fhir.patients(120, seed=11)
    pats[0]["text"] = {"status": "generated", "div": "<div>Quixotrellan Zebulon</div>"}
    pats[0]["name"] = [{"use": "official", "family": "Quixotrellan", "given": ["Zebulon"], "prefix": ["Mr."],
                        "period": {"start": "2001-02-03"}}]
    path = tmp_path / "Patient.ndjson"
    path.write_bytes(fhir.ndjson(pats))
    # read the way a JSON reader infers it: optional elements become NULL where a resource lacks them
    table = pajson.read_json(path, parse_options=pajson.ParseOptions(newlines_in_values=False),
                             read_options=pajson.ReadOptions(block_size=1 << 24))
    columns = {}
    for c in spec.columns:
        col = table.column(c).combine_chunks() if c in table.column_names else pa.nulls(table.num_rows, pa.string())
        if pa.types.is_timestamp(col.type) or pa.types.is_date(col.type):  # Spark infers these as strings
            col = pa.array([None if v is None else str(v)[:10] for v in col.to_pylist()], pa.string())
        columns[c] = col
    out = plan.process(pa.RecordBatch.from_pydict(columns)).to_pylist()
    assert all(r[ERRORS_COL] == [] for r in out)
    text = json.dumps(out, default=str)
    for raw in ("Quixotrellan", "Zebulon", "2001-02-03", pats[1]["identifier"][0]["value"]):
        assert raw not in text
    assert [len(r["name"] or []) for r in out] == [len(p.get("name", [])) for p in pats]
    with_address = [r for r in out if r["address"]]
    assert with_address and all(len(a["postalCode"]) == 3 for r in with_address for a in r["address"])
    assert all(r["extension"] is None and r["contact"] is None and r["text"] is None for r in out)
    assert out[0]["name"][0]["prefix"] == ["Mr."] and out[0]["name"][0]["period"] is None
