"""The synthetic FHIR export is valid FHIR: every resource validates against the R4 models of fhir.resources."""

from __future__ import annotations

import json

import pytest

from lakehouse_phi.synth import fhir

pytest.importorskip("fhir.resources")  # the fhir (and test) extra
from fhir.resources.R4B.encounter import Encounter  # R4B: R4 4.0.1 plus technical corrections
from fhir.resources.R4B.patient import Patient


def test_every_resource_validates_against_the_fhir_models(tmp_path):
    paths = fhir.write_fhir(tmp_path, 150, 2, seed=3)
    pats = [json.loads(line) for line in (paths["Patient"] / "Patient.ndjson").read_text().splitlines()]
    encs = [json.loads(line) for line in (paths["Encounter"] / "Encounter.ndjson").read_text().splitlines()]
    assert len(pats) == 150 and len(encs) == 300
    for p in pats:
        Patient.model_validate(p)
    for e in encs:
        Encounter.model_validate(e)
    # optional elements vary between resources, as in a real export
    for element in ("telecom", "address", "maritalStatus", "extension", "contact", "deceasedBoolean"):
        present = sum(element in p for p in pats)
        assert 0 < present < len(pats), element
    assert fhir.patients(5, seed=3) == pats[:5]  # deterministic by seed


def test_the_models_refuse_what_is_not_fhir():
    bad = dict(fhir.patients(1)[0], gender=42)
    with pytest.raises(Exception, match="gender"):
        Patient.model_validate(bad)
