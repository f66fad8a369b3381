"""Clinical notes with embedded identifiers, and the labels (spans) of every identifier inserted.

A note is 3-8 sentences. Each sentence is a template ``pre + value + post`` where the value is either an identifier
(ssn, phone, email, mrn, date, url, ip — the ``scrub_text`` detector names) or a look-alike that is *not* an
identifier (doses ``10 mg``, blood pressure ``120/80``, ICD codes ``E11.9``, lab values ``7.2``, times ``10:30``,
pain scores ``7/10``, 10-digit NPIs, order numbers, years). All values of one kind are drawn at once; the span of
each identifier follows from the lengths of the pieces, so labels cost no text search. Text is ASCII, so Python
string offsets and byte offsets agree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lakehouse_phi.synth import vocab
from lakehouse_phi.synth._vec import (
    concat,
    digit_matrix,
    digits,
    fixed_width,
    pick,
    random_digits,
    templated,
    zero_padded,
)

IDENTIFIER_KINDS: tuple[str, ...] = ("ssn", "phone", "email", "mrn", "date", "url", "ip")

_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")
_MONTHS_ABBR = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

Gen = Callable[[np.random.Generator, int], pa.Array]


def _ints(rng: np.random.Generator, n: int, low: int, high: int) -> pa.Array:
    return pa.array(rng.integers(low, high, size=n)).cast(pa.string())


def _choose(rng: np.random.Generator, options: list[pa.Array], p: list[float] | None = None) -> pa.Array:
    n = len(options[0])
    return pc.choose(pa.array(rng.choice(len(options), size=n, p=p).astype(np.int8)), *options)


_SSN_FORMS = ("###-##-####", "### ## ####", "#########")
_PHONE_FORMS = ("(###) ###-####", "###-###-####", "###.###.####", "+1 ### ### ####", "(###)###-####",
                "1-###-###-####", "### ### ####", "##########")
_PHONE_P = np.array([0.25, 0.25, 0.15, 0.15, 0.08, 0.06, 0.06])


def ssn_values(rng: np.random.Generator, n: int, dash_rate: float = 0.6, space_rate: float = 0.0) -> pa.Array:
    """Valid-looking SSNs (area 001-899 but not 666, group 01-99, serial 0001-9999): ``123-45-6789`` with
    probability ``dash_rate``, ``123 45 6789`` with ``space_rate``, else ``123456789``."""
    area = rng.integers(1, 900, size=n)
    area[area == 666] = 667
    number = area * 1_000_000 + rng.integers(1, 100, size=n) * 10_000 + rng.integers(1, 10000, size=n)
    form = rng.choice(3, size=n, p=[dash_rate, space_rate, 1 - dash_rate - space_rate])
    return templated(_SSN_FORMS, form, digit_matrix(number, 9))


def phone_values(rng: np.random.Generator, n: int, bare: bool = False) -> pa.Array:
    """NANP numbers as ``(555) 123-4567``, ``555-123-4567``, ``555.123.4567``, ``+1 555 123 4567``,
    ``(555)123-4567``, ``1-555-123-4567``, ``555 123 4567`` (and, when ``bare``, ``5551234567``)."""
    chars = random_digits(rng, n, 10)
    chars[:, 0] = rng.integers(ord("2"), ord("9") + 1, size=n)  # area code and exchange start with 2-9
    chars[:, 3] = rng.integers(ord("2"), ord("9") + 1, size=n)
    p = np.append(_PHONE_P * 0.85, 0.15) if bare else np.append(_PHONE_P, 0.0)
    return templated(_PHONE_FORMS, rng.choice(len(_PHONE_FORMS), size=n, p=p / p.sum()), chars)


def email_values(rng: np.random.Generator, n: int) -> pa.Array:
    first = pick(rng, n, vocab.FIRST_NAMES)
    last = pc.replace_substring(pick(rng, n, vocab.LAST_NAMES), "'", "")
    sep = pick(rng, n, (".", "_", "", "-"), (5, 2, 3, 1))
    num = _choose(rng, [pa.array([""] * n), _ints(rng, n, 1, 100), _ints(rng, n, 1940, 2010)], [0.5, 0.3, 0.2])
    local = concat(first, sep, last, num)
    local = _choose(rng, [pc.utf8_lower(local), local, pc.utf8_upper(local)], [0.8, 0.15, 0.05])
    domain = _choose(rng, [pick(rng, n, vocab.EMAIL_DOMAINS), concat("mail.", pick(rng, n, vocab.WEB_DOMAINS))],
                     [0.85, 0.15])
    return concat(local, "@", domain)


def mrn_values(rng: np.random.Generator, n: int) -> pa.Array:
    form = rng.choice(5, size=n, p=[0.55, 0.2, 0.1, 0.1, 0.05])
    return templated(("MRN_______", "MRN: _______", "MRN _______", "MRN#_______", "mrn _______"), form,
                     random_digits(rng, n, 7), hole="_")


def date_values(rng: np.random.Generator, n: int) -> pa.Array:
    """Dates as ``03/14/2021``, ``3/4/2021``, ``3/4/21``, ``03-14-2021``, ``2021-03-14``, ``March 14, 2021``,
    ``Mar 14, 2021``, ``14 March 2021``, ``03.14.2021``, ``March 14`` and ``3/14`` (the last one on purpose
    outside what the date detector finds: without a year it cannot be told from a score like ``7/10``)."""
    y = _ints(rng, n, 1950, 2025)
    m = rng.integers(1, 13, size=n)
    d = rng.integers(1, 29, size=n)
    mm, dd = zero_padded(m, 2), zero_padded(d, 2)
    m1, d1 = pa.array(m).cast(pa.string()), pa.array(d).cast(pa.string())
    name = pa.array(_MONTHS).take(pa.array(m - 1))
    abbr = pa.array(_MONTHS_ABBR).take(pa.array(m - 1))
    return _choose(rng, [concat(mm, "/", dd, "/", y), concat(m1, "/", d1, "/", y),
                         concat(m1, "/", d1, "/", pc.utf8_slice_codeunits(y, 2, 4)), concat(mm, "-", dd, "-", y),
                         concat(y, "-", mm, "-", dd), concat(name, " ", d1, ", ", y), concat(abbr, " ", d1, ", ", y),
                         concat(d1, " ", name, " ", y), concat(mm, ".", dd, ".", y), concat(name, " ", d1),
                         concat(m1, "/", d1)],
                   [0.19, 0.1, 0.1, 0.05, 0.17, 0.14, 0.1, 0.08, 0.02, 0.03, 0.02])


def url_values(rng: np.random.Generator, n: int) -> pa.Array:
    dom = pick(rng, n, vocab.WEB_DOMAINS)
    ident = digits(rng, n, 8)
    return _choose(rng, [concat("https://", dom, "/patients/", ident), concat("http://www.", dom, "/chart?id=", ident),
                         concat("www.", dom, "/r/", ident), concat("https://", dom, "/results/", ident, "/view"),
                         concat(dom, "/p/", ident)])


def ip_values(rng: np.random.Generator, n: int) -> pa.Array:
    o = [_ints(rng, n, 1, 224)] + [_ints(rng, n, 0, 256) for _ in range(3)]
    return concat(o[0], ".", o[1], ".", o[2], ".", o[3])


def _decimal1(rng: np.random.Generator, n: int, low: int, high: int) -> pa.Array:
    x = rng.integers(low, high, size=n)
    return concat(pa.array(x // 10).cast(pa.string()), ".", pa.array(x % 10).cast(pa.string()))


_DOSES = ("2.5 mg", "5 mg", "10 mg", "20 mg", "25 mg", "40 mg", "50 mg", "81 mg", "100 mg", "250 mg", "500 mg",
          "1000 mg", "0.5 mg", "125 mcg", "1 g", "10 units", "12 units")

_GENERATORS: dict[str, Gen] = {
    "ssn": lambda rng, n: ssn_values(rng, n, dash_rate=0.6, space_rate=0.05),
    "phone": lambda rng, n: _choose(rng, [phone_values(rng, n), concat(phone_values(rng, n), " ext. ",
                                                                        _ints(rng, n, 1, 9999))], [0.95, 0.05]),
    "email": email_values,
    "mrn": mrn_values,
    "date": date_values,
    "url": url_values,
    "ip": ip_values,
    # look-alikes that are not identifiers
    "dose": lambda rng, n: pick(rng, n, _DOSES),
    "bp": lambda rng, n: concat(_ints(rng, n, 90, 181), "/", _ints(rng, n, 50, 111)),
    "hr": lambda rng, n: _ints(rng, n, 48, 131),
    "icd": lambda rng, n: pick(rng, n, vocab.ICD10),
    "lab": lambda rng, n: _decimal1(rng, n, 5, 160),
    "time": lambda rng, n: concat(zero_padded(rng.integers(0, 24, size=n), 2), ":",
                                  zero_padded(rng.integers(0, 60, size=n), 2)),
    "count": lambda rng, n: _ints(rng, n, 1, 15),
    "pain": lambda rng, n: concat(_ints(rng, n, 0, 11), "/10"),
    "npi": lambda rng, n: digits(rng, n, 10, 1),
    "order": lambda rng, n: digits(rng, n, 8, 1),
    "year": lambda rng, n: _ints(rng, n, 1970, 2025),
    # hard negatives: a 9-digit accession number (scrubbed as [SSN]), a dotted firmware version (as [IP])
    "accession": lambda rng, n: digits(rng, n, 9, 1),
    "version": lambda rng, n: concat(_ints(rng, n, 1, 10), ".", _ints(rng, n, 0, 20), ".", _ints(rng, n, 0, 10), ".",
                                     _ints(rng, n, 0, 300)),
    "none": lambda rng, n: fixed_width(np.zeros((n, 0), dtype=np.uint8)),
}
_KINDS = tuple(_GENERATORS)

# (pre, kind, post, weight); identifiers take about 40% of the sentences
_TEMPLATES: tuple[tuple[str, str, str, float], ...] = (
    ("Patient SSN ", "ssn", " verified at registration. ", 2), ("SS# ", "ssn", " on file. ", 2),
    ("Social security number ", "ssn", " confirmed with patient. ", 2), ("(SSN:", "ssn", ") ", 1),
    ("Call back at ", "phone", " if symptoms worsen. ", 2), ("Daughter can be reached at ", "phone", ". ", 2),
    ("Pharmacy phone ", "phone", ", ask for refill line. ", 1), ("Ph:", "phone", " ", 1),
    ("Sent discharge summary to ", "email", ". ", 2), ("Patient email: ", "email", " (preferred). ", 2),
    ("Prior records under ", "mrn", ". ", 2), ("Merged chart ", "mrn", " with current record. ", 2),
    ("Last colonoscopy on ", "date", ". ", 2), ("Follow-up scheduled for ", "date", ". ", 2),
    ("Symptoms began ", "date", " per patient. ", 2),
    ("Imaging available at ", "url", ". ", 2), ("Education material: ", "url", " reviewed. ", 2),
    ("Telehealth session from ", "ip", " connected. ", 2), ("Home monitor uploaded readings from IP ", "ip", ". ", 2),
    ("Started metformin ", "dose", " twice daily. ", 4), ("Continue lisinopril ", "dose", " daily. ", 4),
    ("Given ondansetron ", "dose", " IV x1. ", 3),
    ("BP ", "bp", " sitting. ", 4), ("Vitals: BP ", "bp", ", afebrile. ", 3),
    ("HR ", "hr", " regular. ", 3), ("Pulse ", "hr", " bpm. ", 2),
    ("Assessment: ", "icd", ". ", 4), ("Dx ", "icd", " stable on current regimen. ", 3),
    ("HbA1c ", "lab", " today. ", 3), ("Potassium ", "lab", " mmol/L. ", 2), ("Creatinine ", "lab", " mg/dL. ", 2),
    ("Seen at ", "time", " in clinic. ", 3), ("Next dose due at ", "time", ". ", 2),
    ("Reports ", "count", " episodes of emesis. ", 2), ("Walked ", "count", " laps with PT. ", 2),
    ("Pain ", "pain", " at rest. ", 3),
    ("Attending NPI ", "npi", ". ", 1), ("Order #", "order", " placed for CBC. ", 1),
    ("Smoker since ", "year", ", 20 pack-years. ", 2),
    ("Specimen accession ", "accession", " sent to lab. ", 0.3), ("Insulin pump firmware ", "version", ". ", 0.3),
    ("Take 1-2 tablets every 4-6 hours as needed. ", "none", "", 2), ("Ref range 3.5-5.0. ", "none", "", 1),
    ("No acute distress. ", "none", "", 3), ("Lungs clear to auscultation bilaterally. ", "none", "", 3),
    ("Will continue to monitor. ", "none", "", 3), ("Discussed plan with family at bedside. ", "none", "", 2),
)
_EMPTY = len(_TEMPLATES)  # the "no sentence" template, for notes shorter than the maximum

_PRE = pa.array([t[0] for t in _TEMPLATES] + [""])
_POST = pa.array([t[2] for t in _TEMPLATES] + [""])
_PRE_LEN = np.array([len(t[0]) for t in _TEMPLATES] + [0], dtype=np.int64)
_POST_LEN = np.array([len(t[2]) for t in _TEMPLATES] + [0], dtype=np.int64)
_KIND_OF = np.array([_KINDS.index(t[1]) for t in _TEMPLATES] + [_KINDS.index("none")], dtype=np.int64)
_WEIGHTS = np.array([t[3] for t in _TEMPLATES], dtype=float) / sum(t[3] for t in _TEMPLATES)
_IDENTIFIER_INDEX = np.array([IDENTIFIER_KINDS.index(k) if k in IDENTIFIER_KINDS else -1 for k in _KINDS])

MIN_SENTENCES, MAX_SENTENCES = 3, 8


@dataclass(frozen=True)
class NoteLabels:
    """Spans of the identifiers in a batch of notes, one entry per identifier, ordered by note then offset.

    ``note`` indexes the batch; ``start``/``end`` are string offsets (``text[start:end]`` is the identifier);
    ``kind`` indexes :data:`IDENTIFIER_KINDS`.
    """

    note: np.ndarray
    start: np.ndarray
    end: np.ndarray
    kind: np.ndarray

    def __len__(self) -> int:
        return len(self.note)

    def per_note(self, n: int) -> list[list[tuple[int, int, str]]]:
        """``n`` lists of ``(start, end, detector)``."""
        out: list[list[tuple[int, int, str]]] = [[] for _ in range(n)]
        for i, s, e, k in zip(self.note.tolist(), self.start.tolist(), self.end.tolist(), self.kind.tolist()):
            out[i].append((s, e, IDENTIFIER_KINDS[k]))
        return out


def _values_by_kind(rng: np.random.Generator, kinds: np.ndarray) -> pa.Array:
    """One value per entry of ``kinds`` (indices into ``_KINDS``), each kind drawn in one vectorized call."""
    order = np.argsort(kinds, kind="stable")
    counts = np.bincount(kinds, minlength=len(_KINDS))
    parts = [_GENERATORS[k](rng, int(c)) for k, c in zip(_KINDS, counts) if c]
    position = np.empty(len(kinds), dtype=np.int64)
    position[order] = np.arange(len(kinds))
    return pa.concat_arrays([p.cast(pa.string()) for p in parts]).take(pa.array(position))


def generate_notes(rng: np.random.Generator, n: int) -> tuple[pa.Array, NoteLabels]:
    """``n`` notes (a string array, no NULLs) and the labels of the identifiers in them."""
    sentences = rng.integers(MIN_SENTENCES, MAX_SENTENCES + 1, size=n)
    tid = rng.choice(len(_TEMPLATES), size=(MAX_SENTENCES, n), p=_WEIGHTS)
    tid[np.arange(MAX_SENTENCES)[:, None] >= sentences[None, :]] = _EMPTY
    values = _values_by_kind(rng, _KIND_OF[tid].ravel())

    value_len = pc.binary_length(values).to_numpy().astype(np.int64).reshape(MAX_SENTENCES, n)
    pre_len, post_len = _PRE_LEN[tid], _POST_LEN[tid]
    sentence_len = pre_len + value_len + post_len
    value_start = np.cumsum(sentence_len, axis=0) - sentence_len + pre_len

    ident = _IDENTIFIER_INDEX[_KIND_OF[tid]]  # (MAX_SENTENCES, n), -1 when not an identifier
    note_idx, pos = np.nonzero((ident >= 0).T)  # ordered by note, then sentence
    labels = NoteLabels(note=note_idx, start=value_start[pos, note_idx],
                        end=value_start[pos, note_idx] + value_len[pos, note_idx], kind=ident[pos, note_idx])

    pieces: list[pa.Array] = []
    for j in range(MAX_SENTENCES):
        t = pa.array(tid[j])
        pieces += [_PRE.take(t), values.slice(j * n, n), _POST.take(t)]
    text = pc.utf8_rtrim_whitespace(concat(*pieces))
    return text, labels


def labeled_notes(n: int, seed: int = 0) -> tuple[list[str], list[list[tuple[int, int, str]]]]:
    """``n`` notes and, for each, its identifier spans ``(start, end, detector)`` — deterministic by ``seed``."""
    text, labels = generate_notes(np.random.default_rng([seed, 0x6E6F7465]), n)
    return text.to_pylist(), labels.per_note(n)
