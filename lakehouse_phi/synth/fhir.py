"""Synthetic FHIR R4 ``Patient`` and ``Encounter`` resources, landed as Bulk Data ndjson (one resource a line).

Deterministic by seed. Resources vary the way real exports do: optional elements present in some resources and
absent in others (``telecom``, ``address``, ``maritalStatus``, ``contact``, ``extension``, ``deceased[x]``,
``multipleBirth[x]``), several names and addresses, NULL-free JSON (FHIR omits empty elements). The test suite
validates every generated resource against the R4 models of ``fhir.resources`` (the ``fhir`` extra); this module
does not need it.

Public API::

    patients(n, seed=0) -> list[dict]
    encounters(patients, per_patient=2, seed=0) -> list[dict]
    write_fhir(root, patients=50, encounters_per_patient=2, seed=0) -> {"Patient": Path, "Encounter": Path}
"""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path
from typing import Any

from lakehouse_phi.synth.vocab import FIRST_NAMES, LAST_NAMES, STREET_SUFFIXES, STREETS

#: Where the worked example's FHIR tables land (``conf/policy.yaml``: ``landing/fhir/<Resource>``).
FHIR_LANDING = {"Patient": "landing/fhir/Patient", "Encounter": "landing/fhir/Encounter"}
_CITIES = (("Boston", "MA", "021"), ("Springfield", "IL", "627"), ("Albany", "NY", "122"), ("Austin", "TX", "787"),
           ("Portland", "OR", "972"), ("Denver", "CO", "802"), ("Madison", "WI", "537"), ("Tucson", "AZ", "857"))
_MRN_SYSTEM = "http://hospital.example.org/mrn"
_SSN_SYSTEM = "http://hl7.org/fhir/sid/us-ssn"
_MARITAL = (("M", "Married"), ("S", "Never Married"), ("D", "Divorced"), ("W", "Widowed"))
_CLASSES = (("AMB", "ambulatory"), ("EMER", "emergency"), ("IMP", "inpatient encounter"))
_REASONS = (("44054006", "Diabetes mellitus type 2"), ("38341003", "Hypertensive disorder"),
            ("195662009", "Acute viral pharyngitis"), ("10509002", "Acute bronchitis"))


def _date(rng: random.Random, start: dt.date, days: int) -> dt.date:
    return start + dt.timedelta(days=rng.randrange(days))


def _coding(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


def _patient(i: int, rng: random.Random) -> dict[str, Any]:
    family, given = rng.choice(LAST_NAMES), rng.choice(FIRST_NAMES)
    gender = rng.choice(("female", "male", "other", "unknown")) if rng.random() < 0.05 else \
        rng.choice(("female", "male"))
    birth = _date(rng, dt.date(1925, 1, 1), 365 * 95)
    mrn = f"MRN{rng.randrange(10**7):07d}"
    res: dict[str, Any] = {
        "resourceType": "Patient",
        "id": f"pat-{i:06d}",
        "meta": {"versionId": str(rng.randint(1, 4)), "lastUpdated": f"2024-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}"
                                                                      "T08:30:00.000+00:00"},
        "identifier": [{"use": "usual", "system": _MRN_SYSTEM, "value": mrn,
                        "type": _coding("http://terminology.hl7.org/CodeSystem/v2-0203", "MR",
                                        "Medical record number")}],
        "active": True,
        "name": [{"use": "official", "family": family, "given": [given] + ([rng.choice(FIRST_NAMES)]
                                                                           if rng.random() < 0.4 else []),
                  **({"prefix": [rng.choice(("Mr.", "Ms.", "Mrs.", "Dr."))]} if rng.random() < 0.6 else {})}],
        "gender": gender,
        "birthDate": birth.isoformat(),
    }
    if rng.random() < 0.5:
        ssn = f"{rng.randrange(100, 900)}-{rng.randrange(10, 99)}-{rng.randrange(1000, 9999)}"
        res["identifier"].append({"system": _SSN_SYSTEM, "value": ssn})
    if rng.random() < 0.2:
        res["name"].append({"use": "maiden", "family": rng.choice(LAST_NAMES), "given": [given]})
    if rng.random() < 0.85:
        res["telecom"] = [{"system": "phone", "value": f"555-{rng.randrange(100, 999)}-{rng.randrange(1000, 9999)}",
                           "use": rng.choice(("home", "mobile"))}]
        if rng.random() < 0.5:
            res["telecom"].append({"system": "email", "value": f"{given.lower()}.{family.lower()}{i}@example.com",
                                   "use": "home", "rank": 2})
    if rng.random() < 0.9:
        res["address"] = []
        for _ in range(1 + (rng.random() < 0.15)):
            city, state, zip3 = rng.choice(_CITIES)
            addr: dict[str, Any] = {"use": "home", "line": [f"{rng.randint(1, 9999)} {rng.choice(STREETS)} "
                                                            f"{rng.choice(STREET_SUFFIXES)}"],
                                    "city": city, "state": state, "postalCode": f"{zip3}{rng.randrange(100):02d}",
                                    "country": "US"}
            if rng.random() < 0.3:
                addr["line"].append(f"Apt {rng.randint(1, 40)}")
            if rng.random() < 0.3:  # Synthea-style geolocation: PHI below the address
                addr["extension"] = [{"url": "http://hl7.org/fhir/StructureDefinition/geolocation", "extension": [
                    {"url": "latitude", "valueDecimal": round(rng.uniform(25, 48), 6)},
                    {"url": "longitude", "valueDecimal": round(rng.uniform(-122, -70), 6)}]}]
            res["address"].append(addr)
    if rng.random() < 0.6:
        code, display = rng.choice(_MARITAL)
        res["maritalStatus"] = _coding("http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", code, display)
    if rng.random() < 0.5:
        res["extension"] = [{"url": "http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName",
                             "valueString": rng.choice(LAST_NAMES)}]
    if rng.random() < 0.25:
        res["contact"] = [{"relationship": [_coding("http://terminology.hl7.org/CodeSystem/v2-0131", "N",
                                                    "Next-of-Kin")],
                           "name": {"family": family, "given": [rng.choice(FIRST_NAMES)]},
                           "telecom": [{"system": "phone", "value": f"555-{rng.randrange(100, 999)}-"
                                                                    f"{rng.randrange(1000, 9999)}"}]}]
    if rng.random() < 0.05:
        res["deceasedDateTime"] = f"{_date(rng, dt.date(2015, 1, 1), 3000).isoformat()}T10:00:00+00:00"
    elif rng.random() < 0.3:
        res["deceasedBoolean"] = False
    if rng.random() < 0.1:
        res["multipleBirthInteger"] = rng.randint(1, 3)
    return res


def patients(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` Patient resources (ids ``pat-000000`` ...)."""
    rng = random.Random(f"fhir-patient/{seed}")
    return [_patient(i, rng) for i in range(n)]


def encounters(pats: list[dict[str, Any]], per_patient: int = 2, seed: int = 0) -> list[dict[str, Any]]:
    """``per_patient`` Encounter resources per patient, referencing it (``subject.reference: Patient/<id>``)."""
    rng = random.Random(f"fhir-encounter/{seed}")
    out: list[dict[str, Any]] = []
    for p in pats:
        for _ in range(per_patient):
            code, display = rng.choice(_CLASSES)
            start = dt.datetime.combine(_date(rng, dt.date(2022, 1, 1), 700), dt.time(rng.randint(6, 20)))
            end = start + dt.timedelta(hours=rng.randint(1, 72))
            reason, reason_text = rng.choice(_REASONS)
            enc: dict[str, Any] = {
                "resourceType": "Encounter",
                "id": f"enc-{len(out):07d}",
                "status": "finished",
                "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": code,
                          "display": display},
                "subject": {"reference": f"Patient/{p['id']}", "display": " ".join(
                    [*p["name"][0].get("given", []), p["name"][0]["family"]])},
                "period": {"start": start.isoformat() + "+00:00", "end": end.isoformat() + "+00:00"},
                "reasonCode": [_coding("http://snomed.info/sct", reason, reason_text)],
            }
            if rng.random() < 0.7:
                enc["serviceProvider"] = {"reference": "Organization/org-1", "display": "General Hospital"}
            out.append(enc)
    return out


def ndjson(resources: list[dict[str, Any]]) -> bytes:
    """One resource a line, as a FHIR Bulk Data export writes them."""
    return "".join(json.dumps(r, separators=(",", ":"), ensure_ascii=False) + "\n" for r in resources).encode()


def write_fhir(root: Path | str, patients_n: int = 50, encounters_per_patient: int = 2,
               seed: int = 0) -> dict[str, Path]:
    """Write ``Patient.ndjson`` and ``Encounter.ndjson`` under ``root/landing/fhir/<Resource>/``."""
    pats = patients(patients_n, seed)
    out: dict[str, Path] = {}
    for name, resources in (("Patient", pats), ("Encounter", encounters(pats, encounters_per_patient, seed))):
        folder = Path(root) / FHIR_LANDING[name]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{name}.ndjson").write_bytes(ndjson(resources))
        out[name] = folder
    return out
