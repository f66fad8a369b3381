"""scrub_text: tags per detector, look-alikes left alone, NULLs, recall/precision on labeled generated notes."""

from __future__ import annotations

import re

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lakehouse_phi.synth import labeled_notes
from lakehouse_phi.synth.scrub_eval import evaluate, predicted_spans, python_scrub
from lakehouse_phi.transforms.base import ColumnContext
from lakehouse_phi.transforms.detectors import ORDER, PATTERNS, TAGS, VALUE_PATTERNS
from lakehouse_phi.transforms.registry import get
from lakehouse_phi.transforms.scrub_text import DETECTORS, ScrubText, ScrubTextParams, scrub_patterns

CTX = ColumnContext("encounters", "note", "note")


def scrub(values: list[str | None], detectors: list[str] | None = None) -> list[str | None]:
    params = ScrubTextParams() if detectors is None else ScrubTextParams(detectors=detectors)
    return ScrubText(params, CTX).apply(pa.array(values, pa.string())).to_pylist()


@pytest.fixture(scope="module")
def corpus() -> tuple[list[str], list[list[tuple[int, int, str]]]]:
    return labeled_notes(2000, seed=2024)


def test_registered_and_contract():
    assert get("scrub_text") is ScrubText
    assert set(DETECTORS) == set(ORDER) == set(PATTERNS) | {"name"} == set(TAGS)
    assert ScrubTextParams().detectors == list(DETECTORS)
    with pytest.raises(ValueError):
        ScrubTextParams(detectors=["names"])


@pytest.mark.parametrize(("text", "expected"), [
    ("SSN 123-45-6789 on file", "SSN [SSN] on file"),
    ("ssn:123456789.", "ssn:[SSN]."),
    ("SS# 123 45 6789", "SS# [SSN]"),
    ("call (212) 555-0142 now", "call [PHONE] now"),
    ("call (212)555-0142", "call [PHONE]"),
    ("cell 212-555-0142, home 212.555.0143", "cell [PHONE], home [PHONE]"),
    ("intl +1 212 555 0142.", "intl [PHONE]."),
    ("tollfree 1-800-555-0199 ext. 12 today", "tollfree [PHONE] today"),
    ("mail Jane.Doe+x@mail.example.org.", "mail [EMAIL]."),
    ("see MRN1234567, MRN: 7654321 and mrn 1111111", "see [MRN], [MRN] and [MRN]"),
    ("on 03/14/2021 and 3/4/21 and 2021-03-14", "on [DATE] and [DATE] and [DATE]"),
    ("on March 14, 2021 or 14 Mar 2021 or Sept. 3rd, 1999", "on [DATE] or [DATE] or [DATE]"),
    ("portal https://mychart.example.org/p?id=42&x=1.", "portal [URL]."),
    ("at www.example.com/a/b and example.org/patients/12", "at [URL] and [URL]"),
    ("from 192.168.10.254 via 10.0.0.1", "from [IP] via [IP]"),
])
def test_each_identifier_gets_its_tag(text, expected):
    assert scrub([text]) == [expected]


@pytest.mark.parametrize("text", [
    "Continue lisinopril 10 mg daily, metformin 500 mg BID, 125 mcg levothyroxine.",
    "BP 120/80, HR 72, T 98.6, SpO2 97%. Pain 7/10.",
    "Assessment: E11.9, I10, J45.909, Z00.00.",
    "HbA1c 7.2, potassium 4.1 mmol/L, creatinine 0.9, ref range 3.5-5.0.",
    "Seen at 10:30, next dose 22:15. Reports 3 episodes x2 days.",
    "Take 1-2 tablets every 4-6 hours. Smoker since 2015, 20 pack-years.",
    "Attending NPI 1234567890. Order #12345678. Encounter E123456789. Room 4-112.",
])
def test_look_alikes_are_left_alone(text):
    assert scrub([text]) == [text]


def test_nulls_empty_and_chunked():
    assert scrub([None, "", "x", None]) == [None, "", "x", None]
    strategy = ScrubText(ScrubTextParams(), CTX)
    assert strategy.apply(pa.nulls(3)).to_pylist() == [None] * 3
    chunked = pa.chunked_array([["SSN 123-45-6789"], [None, "ok"]])
    assert strategy.apply(chunked).to_pylist() == ["SSN [SSN]", None, "ok"]
    assert strategy.apply(pa.array(["SSN 123-45-6789"], pa.large_string())).to_pylist() == ["SSN [SSN]"]
    with pytest.raises(TypeError, match="encounters.note"):
        strategy.apply(pa.array([1, 2]))


def test_only_selected_detectors_apply():
    text = "SSN 123-45-6789 call 212-555-0142 on 2021-03-14"
    assert scrub([text], ["phone"]) == ["SSN 123-45-6789 call [PHONE] on 2021-03-14"]
    assert scrub([text], ["ssn", "date"]) == ["SSN [SSN] call 212-555-0142 on [DATE]"]
    assert scrub([text], []) == [text]


def test_deterministic(corpus):
    texts, _ = corpus
    assert scrub(texts[:200]) == scrub(texts[:200])


# ------------------------------------------------------------------------------------------------ accuracy
def test_recall_and_precision_on_generated_notes(corpus):
    texts, labels = corpus
    scores = evaluate(texts, labels)
    for name in ("ssn", "phone", "email", "mrn"):
        assert scores[name].labeled > 200
        assert scores[name].recall >= 0.99, (name, scores[name])
    for name in ("date", "url", "ip"):
        assert scores[name].recall >= 0.97, (name, scores[name])
    for name, s in scores.items():
        assert s.precision >= 0.9, (name, s)


def test_output_keeps_no_labeled_identifier(corpus):
    texts, labels = corpus
    out = scrub(texts)
    for original, scrubbed, spans in zip(texts, out, labels):
        missed = [(tag, original[s:e]) for s, e, tag in spans if original[s:e] in scrubbed]
        # the one form left on purpose: a numeric month/day without a year (``3/14``, like a score ``7/10``)
        assert all(tag == "date" and re.fullmatch(r"\d{1,2}/\d{1,2}", value) for tag, value in missed), missed
        assert sum(scrubbed.count(t) for t in TAGS.values()) >= len(spans) - len(missed)


def test_evaluation_spans_are_what_the_strategy_replaces(corpus):
    """The Python-side spans used for precision/recall, turned into tags, give exactly apply()'s output."""
    texts, _ = corpus
    out = scrub(texts)
    for text, scrubbed in zip(texts, out):
        rebuilt, last = [], 0
        for s, e, tag in predicted_spans(text):
            rebuilt += [text[last:s], TAGS[tag]]
            last = e
        assert "".join(rebuilt) + text[last:] == scrubbed


def test_python_alternative_gives_the_same_text(corpus):
    texts, _ = corpus
    assert python_scrub(texts[:500]) == scrub_patterns(pa.array(texts[:500], pa.string())).to_pylist()


# ------------------------------------------------------------------------------------------------ properties
_ssn = st.builds(lambda a, g, s, sep: f"{a:03d}{sep}{g:02d}{sep}{s:04d}", st.integers(1, 899),
                 st.integers(1, 99), st.integers(1, 9999), st.sampled_from(["-", "", " "]))
_noise = st.text(alphabet="0123456789 -./:()+#,abcXYZ@\n", max_size=25)
_separator = st.sampled_from([" ", ", ", ": ", "\n", " (", ") ", "#", "; "])


# Each example is a batch of texts scrubbed in one call, as bronze batches are (a call per text would spend the
# time compiling patterns): about 300 texts per property in ~30 calls.
@settings(max_examples=30, deadline=None)
@given(st.lists(st.lists(st.tuples(_noise, _separator, _ssn, _separator), min_size=1, max_size=6),
                min_size=1, max_size=20))
def test_no_ssn_survives(texts_pieces):
    texts = ["".join(f"{noise}{left}{ssn}{right}" for noise, left, ssn, right in pieces) for pieces in texts_pieces]
    for out in scrub(texts):
        assert re.search(PATTERNS["ssn"], out) is None
        assert re.search(r"(?<![0-9A-Za-z])[0-9]{3}-[0-9]{2}-[0-9]{4}(?![0-9A-Za-z])", out) is None
        assert re.search(r"(?<![0-9A-Za-z])[0-9]{9}(?![0-9A-Za-z])", out) is None


@settings(max_examples=25, deadline=None)
@given(st.lists(st.text(alphabet="0123456789 -./:()+@#abcMRNxt,\n", max_size=80), min_size=1, max_size=16))
def test_scrubbing_is_idempotent(texts):
    once = scrub(texts)
    assert scrub(once) == once


def test_value_patterns_for_the_phi_scan():
    assert re.search(VALUE_PATTERNS["ssn"], "123-45-6789") and re.search(VALUE_PATTERNS["ssn"], " 123456789 ")
    assert not re.search(VALUE_PATTERNS["ssn"], "SSN 123-45-6789")
    assert re.search(VALUE_PATTERNS["email"], "a.b@example.org")
    assert re.search(VALUE_PATTERNS["phone"], "(212) 555-0142")
    assert not re.search(VALUE_PATTERNS["phone"], "E11.9")
