"""scrub_text ``known:`` (issue 24.2): rosters from other tables of the same policy, validated by the loader,
required by the plan (fail closed), shipped with it to executors, matched case- and accent-insensitively on word
boundaries; on notes whose names the detectors cannot see, the rosters raise recall."""

from __future__ import annotations

import pickle
import random

import pyarrow as pa
import pytest

from lakehouse_phi.engine.plan import TablePlan, roster_refs
from lakehouse_phi.errors import PolicyError
from lakehouse_phi.keys import KeyRing, SecretKey
from lakehouse_phi.policy.load import LoadedPolicy, policy_from_data


def policy(known: list[str]) -> dict:
    return {"version": 1, "name": "p", "keys": {"k": {"provider": "env", "ref": "K"}}, "tables": {
        "patients": {"source": {"format": "csv", "path": "p"}, "bronze": "b.patients", "fingerprint_key": "k",
                     "columns": {"first_name": {"phi": "name", "ingest": "suppress"},
                                 "last_name": {"phi": "name", "ingest": "suppress"},
                                 "mrn": {"phi": "medical_record_number", "ingest": "suppress"}}},
        "providers": {"source": {"format": "csv", "path": "q"}, "bronze": "b.providers", "fingerprint_key": "k",
                      "columns": {"name": {"phi": "name", "ingest": "suppress"}}},
        "notes": {"source": {"format": "csv", "path": "n"}, "bronze": "b.notes", "fingerprint_key": "k",
                  "columns": {"note": {"phi": "free_text", "ingest": {"strategy": "scrub_text", "known": known}}}}}}


KEYS = KeyRing({"k": SecretKey("k", 1, bytes(range(7, 39)))})
KNOWN = ["patients.first_name", "patients.last_name", "patients.mrn", "providers.name"]


def loaded(known: list[str] = KNOWN) -> LoadedPolicy:
    return LoadedPolicy(policy_from_data(policy(known), "t"), "0" * 64, "t")


def test_loader_names_the_place_of_a_bad_roster():
    with pytest.raises(PolicyError) as err:
        policy_from_data(policy(["patients.first_name", "patients.nope", "nowhere.x", "justacolumn"]), "t")
    text = str(err.value)
    for i in (1, 2, 3):
        assert f"tables.notes.columns.note.ingest.known[{i}]" in text
    assert "known[0]" not in text
    assert roster_refs(loaded(), "notes") == sorted(KNOWN)


def test_plan_fails_closed_without_its_rosters():
    with pytest.raises(ValueError, match=r"tables\.notes\.columns\.note\.ingest\.known.*not loaded"):
        TablePlan(loaded(), "notes", KEYS)
    with pytest.raises(ValueError, match="not loaded"):
        TablePlan(loaded(), "notes", KEYS, {"patients.first_name": []})


ROSTERS = {"patients.first_name": ["Agnieszka", "Will", "Émile"],
           "patients.last_name": ["Wiśniewska", "Rose", "Zqvorthal"],
           "patients.mrn": ["A7731-22", "004417"], "providers.name": ["Thandiwe Okonjo-Mbeki"]}


def test_roster_matches_case_accent_and_separators_on_word_boundaries():
    plan = TablePlan(loaded(), "notes", KEYS, ROSTERS)
    notes = ["wisniewska called; WIŚNIEWSKA, agnieszka again",
             "see a7731 22 and #004417 reviewed; 9004417 is another number",
             "per okonjo-mbeki: will rose tomorrow? zqvorthals and zqvorthal",
             "Emile here; Annual rose garden; Roseville"]
    out = plan.process(pa.table({"note": notes})).column("note").to_pylist()
    assert out[0] == "[NAME] called; [NAME], [NAME] again"
    assert out[1] == "see [MEDICAL_RECORD_NUMBER] and #[MEDICAL_RECORD_NUMBER] reviewed; 9004417 is another number"
    # a one-word name that is an English word (Will, Rose) is not looked for alone: "will" is everywhere
    assert out[2] == "per [NAME]: will rose tomorrow? zqvorthals and [NAME]"
    assert out[3] == "[NAME] here; Annual rose garden; Roseville"


def test_rosters_travel_with_the_plan_to_executors():
    plan = TablePlan(loaded(), "notes", KEYS, ROSTERS)
    shipped = pickle.loads(pickle.dumps(plan))
    batch = pa.table({"note": ["WISNIEWSKA seen", "okonjo-mbeki signed"]})
    assert shipped.process(batch).column("note").to_pylist() == plan.process(batch).column("note").to_pylist() == [
        "[NAME] seen", "[NAME] signed"]
    assert "wisniewska" not in repr(plan._rosters)  # repr of a roster never shows values


def test_rosters_raise_recall_on_names_the_detectors_cannot_see():
    """Notes that mention patients in lower case, mid-sentence, without a cue: the detectors alone miss most;
    with the patients' roster every mention goes."""
    rng = random.Random(7)
    firsts = ["Agnieszka", "Thandiwe", "Bartholomew", "Ifeoma", "Xochitl", "Radomir", "Siobhan", "Eun-ji"]
    lasts = ["Wiśniewska", "Okonjo", "Quarshie", "Villalobos", "Achterberg", "Nakagawa", "Oyelaran", "Dimitrov"]
    people = [(rng.choice(firsts), rng.choice(lasts)) for _ in range(40)]
    forms = ["discussed plan; {f} {l} agrees", "{l} family at bedside", "ok per {f} (daughter of pt)",
             "{L} aware of results", "note to {l}: labs normal"]
    notes, mentions = [], []
    for f, last in people:
        form = rng.choice(forms)
        notes.append(form.format(f=f.lower(), l=last.lower(), L=last.upper()))
        mentions.append([w for w in (f.lower(), last.lower(), last.upper()) if w in notes[-1]])
    rosters = {"patients.first_name": [f for f, _ in people], "patients.last_name": [x for _, x in people],
               "patients.mrn": [], "providers.name": []}

    def recall(out: list[str]) -> float:
        found = sum(all(w not in o for w in ws) for o, ws in zip(out, mentions))
        return found / len(notes)

    without = TablePlan(loaded(["patients.mrn"]), "notes", KEYS, {"patients.mrn": []})
    with_rosters = TablePlan(loaded(), "notes", KEYS, rosters)
    batch = pa.table({"note": notes})
    base = recall(without.process(batch).column("note").to_pylist())
    gain = recall(with_rosters.process(batch).column("note").to_pylist())
    assert gain == 1.0 and base < 0.5, (base, gain)
