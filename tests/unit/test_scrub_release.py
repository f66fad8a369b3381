"""scrub_text's second wave: the row's own identifiers (row_values), the name and address detectors, the broader
phone/MRN/date forms, and the targets on the independent corpus of benchmarks/scrub_corpus (not the synthetic
generator's templates)."""

from __future__ import annotations

import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lakehouse_phi.engine.plan import TablePlan
from lakehouse_phi.keys import KeyRing, SecretKey
from lakehouse_phi.policy.load import LoadedPolicy, policy_from_data
from lakehouse_phi.synth.scrub_eval import LookAlikes, evaluate, predicted_spans, python_scrub
from lakehouse_phi.transforms.base import ColumnContext
from lakehouse_phi.transforms.detectors import TAGS
from lakehouse_phi.transforms.scrub_text import ScrubText, ScrubTextParams, scrub_patterns

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from scrub_corpus.corpus import generate, handwritten

PHI = (("first_name", "name"), ("last_name", "name"), ("mrn", "medical_record_number"), ("phone", "phone"),
       ("email", "email"), ("note", "free_text"))
CTX = ColumnContext("encounters", "note", "note", table_phi=PHI)


def scrub(texts: list[str | None], detectors: list[str] | None = None, **others: list) -> list[str | None]:
    params = {"row_values": list(others)}
    if detectors is not None:
        params["detectors"] = detectors
    s = ScrubText(ScrubTextParams.model_validate(params), CTX)
    return s.apply(pa.array(texts, pa.string()), {k: pa.array(v, pa.string()) for k, v in others.items()}).to_pylist()


def test_row_values_remove_the_rows_own_identifiers():
    out = scrub(["Jane ROE seen; jane's MRN 1234567 (call 617 555 0123 or jroe@x.org). Not roebuck.",
                 "Jane Roe is another patient's name here", None, "Mary-Jo O'Neil and Jo"],
                detectors=[],
                first_name=["Jane", "Al", "Zed", "Mary-Jo"], last_name=["Roe", "Xu", None, "O'Neil"],
                mrn=["MRN1234567", None, "MRN7", None], phone=["617-555-0123", None, None, None],
                email=["jroe@x.org", None, None, None])
    assert out[0] == ("[NAME] [NAME] seen; [NAME]'s MRN [MEDICAL_RECORD_NUMBER] (call [PHONE] or [EMAIL]). "
                      "Not roebuck.")
    assert out[1] == "Jane Roe is another patient's name here"  # other rows' values stay
    assert out[2] is None
    assert out[3] == "[NAME]-Jo O'[NAME] and Jo"  # only parts of 3+ letters: Mary, Neil


def test_row_values_need_their_columns_and_are_read_by_the_plan():
    data = {"version": 1, "name": "p", "keys": {"k": {"provider": "env", "ref": "K"}}, "tables": {"enc": {
        "source": {"format": "csv", "path": "x"}, "bronze": "b.enc",
        "columns": {"mrn": {"phi": "medical_record_number", "ingest": {"strategy": "hmac", "key": "k"}},
                    "last_name": {"phi": "name", "ingest": "suppress"},
                    "note": {"phi": "free_text", "ingest": {"strategy": "scrub_text",
                                                             "row_values": ["last_name", "mrn"]}}}}}}
    loaded = LoadedPolicy(policy_from_data(data, "t"), "0" * 64, "t")
    plan = TablePlan(loaded, "enc", KeyRing({"k": SecretKey("k", 1, bytes(range(32)))}))
    out = plan.process(pa.table({"mrn": ["A7"], "last_name": ["Thibodeaux"],
                                 "note": ["thibodeaux (A7) doing well"]})).to_pydict()
    assert out["note"] == ["[NAME] ([MEDICAL_RECORD_NUMBER]) doing well"] and out["last_name"] == [None]
    data["tables"]["enc"]["columns"]["note"]["ingest"]["row_values"] = ["nope"]
    with pytest.raises(Exception, match="nope"):
        policy_from_data(data, "t")


@pytest.mark.parametrize(("text", "expected"), [
    ("Dr. Hargreaves saw Mrs. O'Neil today.", "Dr. [NAME] saw Mrs. [NAME] today."),
    ("Patient: Jane Roe, 54F", "Patient: [NAME], 54F"),
    ("Referred by Nguyet Thibodeaux for a sleep study.", "Referred by [NAME] for a sleep study."),
    ("her daughter Maria will visit", "her daughter [NAME] will visit"),
    ("Signed: Priya Raghunathan, MD", "Signed: [NAME], MD"),
    ("Lives at 1184 Larkspur Lane, Apt 3B, Worcester, MA 01602 alone.", "Lives at [ADDRESS] alone."),
    ("PO Box 4471, Lenox, MA 01240", "[ADDRESS]"),
    ("call +16175550123 or 6175550123 Ext. 44", "call [PHONE] or [PHONE]"),
    ("MR# A4419023, Chart #: 7730192, medical record number 001938455", "[MRN], [MRN], [MRN]"),
    ("on 14-Mar-2021, 14MAR2021, 2021/03/14, March 2021 and Monday, 5/10",
     "on [DATE], [DATE], [DATE], [DATE] and [DATE]"),
    ("F/u 3/14.", "F/u [DATE]."),
])
def test_new_detectors(text, expected):
    assert scrub([text]) == [expected]


@pytest.mark.parametrize("text", [
    "Metformin 500 mg BID; E11.65, I10, J44.1; CPT 99214; NPI 1467558239; Attending NPI 2502142414.",
    "Pain 7/10, strength 4/5, GCS 14/15, VA 20/40, BP 142/88, K 5.4, INR 3.8, Hgb 12.9, plt 245.",
    "L4-L5 disc; Lot AB1234; RA-20210314-0042; 2 polyps; 100 mL Omnipaque; 0830 dose.",
    "Positive Murphy sign; Bell palsy; Graves disease; Foley placed; Holter ordered.",
])
def test_look_alikes_stay(text):
    assert scrub([text]) == [text]


def test_arrow_and_python_agree_on_the_corpus():
    texts, _ = generate(300, seed=3)
    out = scrub(texts)
    assert scrub_patterns(pa.array(texts, pa.string())).to_pylist() == python_scrub(texts)
    for text, scrubbed in zip(texts, out):  # the evaluation's spans are exactly what the strategy replaces
        rebuilt, last = [], 0
        for s, e, tag in predicted_spans(text):
            rebuilt += [text[last:s], TAGS[tag]]
            last = e
        assert "".join(rebuilt) + text[last:] == scrubbed


@pytest.mark.parametrize("part", ["handwritten", "generated"])
def test_targets_on_the_independent_corpus(part):
    texts, labels = handwritten() if part == "handwritten" else generate(1000, seed=29)
    look = LookAlikes()
    scores = evaluate(texts, labels, look_alikes=look)
    targets = {"ssn": 0.99, "phone": 0.99, "email": 0.99, "mrn": 0.99, "date": 0.97, "name": 0.95, "address": 0.95,
               "id": 0.9, "age": 0.97, "geo": 0.9}
    for name, target in targets.items():
        if part == "handwritten" and name in ("id", "age", "geo"):
            continue  # the hand-written snippets predate these detectors; the generated part labels them
        assert scores[name].labeled > 0 and scores[name].recall >= target, (name, scores[name])
    assert look.total > 50 and look.rate >= 0.99, look


_piece = st.sampled_from(["Jane", "JANE", "roe", "Roe's", "MRN", "1234567", "MRN1234567", "617", "555", "0123",
                          "617-555-0123", "(617) 555 0123", "6175550123", "jroe@x.org", "O'Neil", "Mary-Jo", "\x00",
                          "seen", "by", "Dr.", "Smith", "12", "2024-01-05", "İstanbul", "ÉMILE", "émile"])
_row = st.tuples(st.lists(_piece, max_size=12).map(" ".join), st.sampled_from(["Jane", "Émile", None, "Al"]),
                 st.sampled_from(["Roe", "O'Neil", "Smith", None]), st.sampled_from(["MRN1234567", "MRN7", None]),
                 st.sampled_from(["617-555-0123", "555 0123", None]))


@settings(max_examples=60, deadline=None)
@given(st.lists(_row, min_size=1, max_size=12))
def test_rows_left_out_by_the_prefilter_are_rows_the_full_pass_leaves_unchanged(rows):
    """remove_row_values cuts into words only the rows whose text contains a word of its own values: it must give
    exactly what the full pass gives on every row that pass changes, and leave every other row as it was."""
    texts, first, last, mrn, phone = (list(c) for c in zip(*rows))
    s = ScrubText(ScrubTextParams.model_validate({"row_values": ["first_name", "last_name", "mrn", "phone"]}), CTX)
    columns = {"first_name": pa.array(first, pa.string()), "last_name": pa.array(last, pa.string()),
               "mrn": pa.array(mrn, pa.string()), "phone": pa.array(phone, pa.string())}
    values = pa.array(texts, pa.string())
    fast = s.remove_row_values(values, columns).to_pylist()
    full = s._remove_all(pc.replace_substring(values, "\x00", ""), columns).to_pylist()
    for f, a in zip(fast, full):
        assert f == a  # the same text, whether or not the row was cut into words
        assert "\x00" not in f
