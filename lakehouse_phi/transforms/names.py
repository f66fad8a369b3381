"""Person names in free text, found over whole Arrow columns: word lists, accent folding and the token tagger.

The text is cut into words and separators with Arrow (``[sep, word, sep, word, ..., sep]`` per row, see
:func:`tokens`); every word gets a few flags from set look-ups (``is_in`` on its folded form: lower case, accents
removed, ``Wiśniewska`` -> ``wisniewska``), and the rules below combine neighbouring flags with numpy, so no
Python runs per row.

Word lists (``scrub_data/``, built once by ``scripts/build_scrub_lists.py``; sources and licences in
``scrub_data/SOURCES.md``):

* first names and surnames of every Faker person locale (86 locales: Latin-script lists as they are, Cyrillic and
  Greek transliterated), ~21k of each;
* the English words of SCOWL (size 50, Debian's ``wamerican``): ~64k lower-case words;
* :data:`KEEP`: eponyms, drug and device names and clinical words that are also names (``Parkinson``, ``Apgar``,
  ``Foley``, ``Allegra``): never a name by themselves.

A word is a name when it is written like one (capitalised, or in capitals, or any case when both it and a
neighbour are listed names) and one of:

* *strong*: a listed first name or surname that is not an English word nor on :data:`KEEP` (``Ngozi``,
  ``Kowalski``, ``MENDOZA``, and in lower case ``socorro mendoza`` when two such words stand together);
* in a *name position*: after a title (``Dr.``, ``Mrs``), a label (``Patient:``, ``RE:``, ``Caller:``), a relation
  (``daughter``), a phrase such as ``seen by``, ``this is``, ``thanks,``; before a credential (``, MD``, ``RN``) or
  ``is a 67 y/o``: then a capitalised word that is *not an English word* is a name (the dictionary test:
  ``Achterberg``, ``Oduya``), and so is a listed name;
* next to a name (a space, a hyphen, or ``Last, First`` after a comma): a capitalised word that is a listed name
  or not an English word, an initial (``A. M. Traoré``, ``Florence O.``) and a particle before a capitalised word
  (``bin Saleh``, ``de la Cruz``).

An eponym followed by ``'s`` or by a clinical noun (``Parkinson's disease``, ``Babinski sign``, ``Austin Flint
murmur``) is never a name.
"""

from __future__ import annotations

import gzip
import re
import unicodedata
from collections.abc import Iterable
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

#: Name particles: part of a name between two name words or before a surname.
PARTICLES = frozenset("""
de da das do dos du del della der den di la le van von ter ten bin ibn bint al el abu ben y e st mac
""".split())

#: Letters without a Unicode decomposition, folded by hand.
_SPECIAL = {"ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "đ": "d", "Đ": "D", "ß": "ss", "æ": "ae", "Æ": "AE", "œ": "oe",
            "Œ": "OE", "ı": "i", "þ": "th", "Þ": "Th", "ð": "d", "Ð": "D", "’": "'"}


def fold(text: str) -> str:
    """Lower case without accents: ``Wiśniewska`` -> ``wisniewska``, ``Łukasz`` -> ``lukasz``."""
    text = "".join(_SPECIAL.get(c, c) for c in text)
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)).lower()


def fold_arrow(values: pa.Array) -> pa.Array:
    """:func:`fold` over an Arrow string array."""
    out = pc.utf8_normalize(values, "NFKD")
    out = pc.replace_substring_regex(out, r"\p{Mn}+", "")
    for src, dst in _SPECIAL.items():
        out = pc.replace_substring(out, src, dst)
    return pc.utf8_lower(out)


def _load(name: str) -> frozenset[str]:
    data = resources.files("lakehouse_phi.transforms").joinpath("scrub_data", name).read_bytes()
    return frozenset(gzip.decompress(data).decode("utf-8").split())


#: Eponyms, drug and device names, and clinical words that are listed as names somewhere (lower case, folded).
KEEP = frozenset("""
addison adie alzheimer apgar arnold asperger austin flint babinski baker barr barre barrett bartholin battle beck
bell bence bennett billroth bishop bouchard bowen braxton hicks broca brown sequard brudzinski budd chiari burkitt
caldwell luc charcot chvostek clark colles conn coombs corrigan crohn cushing dandy walker de quervain dix hallpike
dubin duchenne dupuytren durkee ebstein ehlers danlos eisenmenger epley epstein erb ewing fallot felty finkelstein
foley fontan framingham frank friedreich galeazzi gilbert glasgow gleason goodpasture gram graves grey turner guillain
hallpike hashimoto heberden heimlich henoch hirschsprung hodgkin hoffmann holter homan homans horner howell jolly
huntington hurthle jakob creutzfeldt janeway jones kaposi kawasaki kernig kerley killip klinefelter korsakoff
kussmaul lachman legg calve perthes lewy lisfranc lou gehrig lyme mallampati mallory weiss marfan mcburney mcmurray
meckel meniere monteggia morton murphy nissen osgood schlatter osler paget parkinson perthes peyronie phalen pick pott
prinzmetal purkinje quincke ranson raynaud reiter reye rinne romberg roth roux rovsing schatzki schilling schonlein
sezary sheehan sjogren smith snellen spurling stevens johnson still stokes adams swan ganz takayasu tinel tourette
trendelenburg trousseau turner valsalva virchow von willebrand waldenstrom wallenberg warthin weber wegener wells
wenckebach wernicke whipple wilms wilson wolff white parkinson zenker zollinger ellison doppler giemsa wright
ziehl neelsen papanicolaou pap gomori jaeger bethesda mobitz child pugh tanner denver norwood fontan blalock taussig
rashkind kocher pfannenstiel hasson veress jackson pratt penrose malecot hickman broviac groshong port mediport
allegra ambien lyrica cialis levitra viagra valium xanax lasix coreg norvasc zocor lipitor crestor plavix eliquis
xarelto coumadin keppra lamictal depakote tegretol dilantin ativan haldol zyprexa seroquel abilify risperdal prozac
zoloft paxil celexa lexapro effexor cymbalta wellbutrin ultram norco percocet dilaudid tylenol advil motrin aleve
benadryl claritin zyrtec flonase singulair advair symbicort spiriva ventolin proair lantus humalog novolog januvia
jardiance farxiga ozempic trulicity victoza synthroid prednisone medrol decadron zofran reglan protonix nexium
prilosec pepcid zantac colace senna miralax dulcolax flagyl cipro levaquin keflex augmentin zithromax bactrim
vancomycin zosyn rocephin heparin lovenox insulin metformin lisinopril amlodipine atorvastatin aspirin tramadol
hydralazine clonidine labetalol carvedilol metoprolol digoxin amiodarone warfarin apixaban rivaroxaban gabapentin
epic cerner meditech allscripts pyxis omnicell alaris baxter medtronic abbott stryker philips siemens hologic
dexcom libre omnipod tandem accu chek
""".split())

#: Clinical abbreviations and units that look like short names (``Na``, ``Cl``, ``PO``, ``RA``): never a name.
ABBREVIATIONS = frozenset("""
na cl ca mg po pr iv im sc sq sl od os ou ra rr hr bp wbc rbc hgb hb hct plt bun cr gfr egfr alt ast alp ggt tsh t3
t4 bnp ana inr ptt aptt esr crp ldl hdl tg a1c hba1c spo2 sao2 uop gcs fhir hl7 ecg ekg eeg emg ct mri pet cxr kub
icu ed er or pacu nicu picu ccu ua ucx bcx abg vbg cbc bmp cmp lft lfts pft pfts tte tee cabg pci stemi nstemi chf
copd cad ckd esrd dm htn hld gerd uti dvt pe afib cva tia mi osa bph ms als hiv hcv hbv tb rsv covid sars prn bid
tid qid qd qhs qam qpm ac hs npo dnr dni poa ama nka nkda sob cp abd ext neuro psych gi gu ent ob gyn peds hpi ros
pmh psh fh sh meds pe rrr ctab nad aox ox kg lb lbs cm mm ml dl ng mcg meq mmol mmhg bpm npi dea mrn ssn dob
icd cpt loinc ndc snomed epic
""".split())

#: Clinical nouns after an eponym: ``Babinski sign``, ``Foley catheter``, ``Parkinson disease``.
EPONYM_NOUNS = frozenset("""
disease diseases syndrome sign signs test tests score scale fracture murmur reflex maneuver manoeuvre criteria
classification node nodes cell cells catheter tube procedure operation phenomenon palsy lymphoma sarcoma tumor tumour
ulcer ulcers disorder triad law lines line grade stage staging index position method stain solution fundoplication
monitor study studies repair anastomosis incision shunt drain deformity contracture neuroma cyst cysts diverticulum
esophagus oesophagus dementia chorea encephalopathy thyroiditis ophthalmopathy anomaly tetralogy block
""".split())

#: Titles before a name (folded, without the dot).
TITLES = frozenset("dr mr mrs ms mx miss prof rev sr sra srta dra mme mlle herr frau sister nurse".split())

#: Words after which a name follows (folded): labels (with or without a colon), relations, verbs.
NAME_CUES = frozenset("""
patient pt name re caller subscriber guarantor insured attending pcp provider physician surgeon resident fellow
intern author signed dictated cosigned scribe interpreter contact guardian caregiver spouse wife husband partner
mother father mom dad daughter son sister brother grandson granddaughter grandmother grandfather aunt uncle niece
nephew friend neighbor neighbour fiance fiancee roommate poa proxy nok witness sincerely regards thanks thank cc
referred referring by per with from to dear hi hello attn attention ordered reviewed seen examined covered
requested transcribed entered approved administered performed given evaluated member am
""".split())

#: Cues that are only a cue before a capitalised word that is not an English word nor a cue (``with``, ``to``,
#: ``from``, ``by``, ``per``): the dictionary test decides.
WEAK_CUES = frozenset("by per with from to dear hi hello thanks thank regards sincerely cc am".split())

#: Credentials after a name.
CREDENTIALS = frozenset("""
md do rn np pa pac aprn cnm crna phd pharmd dds dmd lcsw msw fnp dnp lpn cna mbbs frcp frcs rd rrt pt ot slp
""".split())


@cache
def first_names() -> frozenset[str]:
    return _load("first_names.txt.gz")


@cache
def last_names() -> frozenset[str]:
    return _load("last_names.txt.gz")


@cache
def english_words() -> frozenset[str]:
    return _load("english_words.txt.gz")


@cache
def _sets() -> dict[str, pa.Array]:
    names = first_names() | last_names()
    words = english_words()
    return {
        "name": pa.array(sorted(names), pa.string()),
        "first": pa.array(sorted(first_names()), pa.string()),
        "last": pa.array(sorted(last_names()), pa.string()),
        "word": pa.array(sorted(words | EPONYM_NOUNS), pa.string()),
        "keep": pa.array(sorted(KEEP), pa.string()),
        "abbrev": pa.array(sorted(ABBREVIATIONS), pa.string()),
        "eponym_noun": pa.array(sorted(EPONYM_NOUNS), pa.string()),
        "title": pa.array(sorted(TITLES), pa.string()),
        "cue": pa.array(sorted(NAME_CUES), pa.string()),
        "weak_cue": pa.array(sorted(WEAK_CUES), pa.string()),
        "cred": pa.array(sorted(CREDENTIALS), pa.string()),
        "particle": pa.array(sorted(PARTICLES), pa.string()),
    }


# --------------------------------------------------------------------------------------------- tokens
SEP = "\x00"
_WORD = r"[\pL\pN][\pL\pN\pM]*(?:['’][\pL]+)?"


class Tokens:
    """The words of a column: ``flat`` alternates separator, word, ..., separator per row; ``parents`` is each
    piece's row; ``is_word`` marks the words."""

    def __init__(self, values: pa.Array) -> None:
        marked = pc.replace_substring_regex(pc.replace_substring(values, SEP, ""), _WORD, f"{SEP}\\0{SEP}")
        self.pieces = pc.split_pattern(marked, SEP)
        self.flat = pc.list_flatten(self.pieces)
        self.parents: NDArray[Any] = pc.list_parent_indices(self.pieces).to_numpy(zero_copy_only=False)
        self.offsets: NDArray[Any] = self.pieces.offsets.to_numpy()
        first = self.offsets[:-1][self.parents] if len(self.parents) else np.zeros(0, dtype=np.int64)
        pos = np.arange(len(self.flat)) + (self.offsets[0] if len(self.offsets) else 0) - first
        self.is_word: NDArray[Any] = (pos % 2) == 1
        self.mask = pc.is_null(values)
        self._folded: pa.Array | None = None

    @property
    def folded(self) -> pa.Array:
        if self._folded is None:
            self._folded = fold_arrow(self.flat)
        return self._folded

    def shifted(self, flags: NDArray[Any], by: int) -> NDArray[Any]:
        """``flags`` of the piece ``by`` positions later (earlier if negative) in the same row; False outside."""
        n = len(flags)
        out = np.zeros(n, dtype=flags.dtype)
        if by > 0:
            out[:n - by] = flags[by:]
            same = np.zeros(n, dtype=bool)
            same[:n - by] = self.parents[by:] == self.parents[:n - by]
        else:
            out[-by:] = flags[:n + by]
            same = np.zeros(n, dtype=bool)
            same[-by:] = self.parents[:n + by] == self.parents[-by:]
        return np.where(same, out, np.zeros(1, dtype=flags.dtype))

    def rebuild(self, covered: NDArray[Any], start_tag: NDArray[Any], tags: list[str],
                trim_dot: NDArray[Any] | None = None) -> pa.Array:
        """The text with each covered run replaced: its first piece (``start_tag >= 0``) by ``tags[start_tag]``,
        the others by nothing; ``trim_dot`` marks separators whose leading ``.`` goes too (an initial's dot)."""
        out = self.flat
        if trim_dot is not None and trim_dot.any():
            out = pc.if_else(pa.array(trim_dot), pc.utf8_slice_codeunits(out, 1), out)
        starts = start_tag >= 0
        out = pc.if_else(pa.array(covered & ~starts), pa.scalar("", pa.string()), out)
        tag_arr = pa.array(tags, pa.string())
        out = pc.if_else(pa.array(starts), tag_arr.take(pa.array(np.where(starts, start_tag, 0))), out)
        rebuilt = pa.ListArray.from_arrays(pa.array(self.offsets - self.offsets[0], pa.int32()), out, mask=self.mask)
        return pc.binary_join(rebuilt, "")


def _in(values: pa.Array, key: str) -> NDArray[Any]:
    return np.asarray(pc.fill_null(pc.is_in(values, value_set=_sets()[key]), False), dtype=bool)


def _match(values: pa.Array, pattern: str) -> NDArray[Any]:
    return np.asarray(pc.fill_null(pc.match_substring_regex(values, pattern), False), dtype=bool)


def name_runs(tok: Tokens) -> NDArray[Any]:
    """Per piece: True for the words (and separators between them) that are part of a person's name."""
    flat, word = tok.flat, tok.is_word
    n = len(flat)
    if not n:
        return np.zeros(0, dtype=bool)
    f = tok.folded
    base = pc.replace_substring_regex(f, r"'s$", "")  # possessive
    possessive = word & _match(f, r"'s$")
    title_case = word & _match(flat, r"^\p{Lu}[\p{Ll}\p{Mn}'’]*(?:\p{Lu}[\p{Ll}\p{Mn}]+)?(?:['’]s)?$")
    upper = word & _match(flat, r"^\p{Lu}[\p{Lu}\p{Mn}'’]+$")
    letters = word & _match(flat, r"^[\pL\pM'’]+$")
    single = word & _match(flat, r"^\p{Lu}$")
    listed = letters & _in(base, "name")
    eng = letters & _in(base, "word")
    keep = letters & _in(base, "keep")
    abbrev = word & _in(f, "abbrev")
    particle = word & _in(f, "particle")
    sep = flat
    sep_space = ~word & _match(sep, r"^[ \t]{1,2}$|^-$")
    sep_comma = ~word & _match(sep, r"^\.?,[ \t]{1,2}$")
    sep_dot = ~word & _match(sep, r"^\.[ \t]{1,2}$|^\.$")  # after an initial or a title
    sep_colon = ~word & _match(sep, r"^\s*[:#]\s*$|^\s*[:,]?\s*\n\s*$")
    # capitals in a line of capitals are a shout, not a name; a word in capitals is name-like only when listed
    cap = title_case | (upper & listed)
    nxt_eponym = tok.shifted(word & _in(f, "eponym_noun"), 2) & tok.shifted(sep_space, 1)
    eponym = (keep & (possessive | nxt_eponym)) | (title_case & possessive & ~listed)
    strong = cap & listed & ~eng & ~keep & ~possessive & ~abbrev
    # a listed first name and a listed surname, both capitalised (not in capitals), even if English words
    strong |= (title_case & listed & _in(base, "first") & ~keep & ~abbrev & tok.shifted(sep_space, 1)
               & tok.shifted(title_case & _in(base, "last") & ~abbrev, 2) & ~possessive)
    # lower-case or any-case pairs of listed names that are not words: socorro mendoza
    any_strong = letters & listed & ~eng & ~keep & ~abbrev & ~_in(f, "cue") & ~_in(f, "cred") & ~_in(f, "title")
    pair = any_strong & ((tok.shifted(any_strong, 2) & tok.shifted(sep_space | sep_comma, 1))
                         | (tok.shifted(any_strong, -2) & tok.shifted(sep_space | sep_comma, -1)))
    longer = word & (pc.utf8_length(flat).to_numpy(zero_copy_only=False) >= 3)
    # the dictionary test: capitalised, not an English word, not clinical (capitals: 4+ letters, not an acronym)
    unknown_cap = cap & ~eng & ~keep & ~possessive & ~abbrev & (longer | listed)
    unknown_cap_upper = upper & ~eng & ~keep & ~listed & letters & ~abbrev & (
        pc.utf8_length(flat).to_numpy(zero_copy_only=False) >= 4)
    nameish = (cap & (listed | ~eng)) & ~eponym & ~abbrev & (longer | listed)
    nameish |= single  # an initial
    # a title before: Dr. / DR. / Mrs
    title_before = tok.shifted(word & _in(f, "title"), -2) & tok.shifted(sep_space | sep_dot, -1)
    cue = word & _in(f, "cue")
    weak = word & _in(f, "weak_cue")
    strong_cue_before = tok.shifted(cue & ~weak, -2) & tok.shifted(sep_space | sep_colon | sep_comma, -1)
    weak_cue_before = tok.shifted(weak, -2) & tok.shifted(sep_space | sep_comma | sep_colon, -1)
    # "this is", "I am", "met with pt"
    cred_after = tok.shifted(word & _in(f, "cred"), 2) & tok.shifted(sep_space | sep_comma, 1)
    seeds = strong | pair
    seeds |= (title_before | strong_cue_before) & (nameish | unknown_cap | unknown_cap_upper) & ~eng & ~keep
    seeds |= (title_before | strong_cue_before) & cap & listed
    seeds |= weak_cue_before & unknown_cap & ~eng & ~upper
    seeds |= cred_after & (nameish | unknown_cap)
    seeds |= title_before & cap & ~abbrev  # Dr. Bell: after a title any capitalised word
    seeds &= ~eponym
    # grow: neighbours that look like a name part
    grow_ok = (nameish | unknown_cap | (letters & listed & ~eng & tok.shifted(seeds, -2))) & ~eponym & ~abbrev
    grow_ok &= ~(word & (_in(f, "cred") | _in(f, "cue") | _in(f, "title")) & ~listed)
    joins = sep_space | sep_dot | sep_comma
    # a tag written by an earlier detector ([GEO], [MRN]) is not a word of a name
    in_tag = tok.shifted(~word & _match(flat, r"\[$"), -1) & tok.shifted(~word & _match(flat, r"^\]"), 1)
    seeds &= ~in_tag
    grow_ok &= ~in_tag
    runs = seeds.copy()
    for _ in range(4):
        left = tok.shifted(runs, -2) & tok.shifted(joins, -1)
        right = tok.shifted(runs, 2) & tok.shifted(joins, 1)
        # across a comma only Last, First (the word after the comma is a listed name or unknown capitalised)
        left_comma = tok.shifted(sep_comma, -1)
        right_comma = tok.shifted(sep_comma, 1)
        comma_ok = (listed | unknown_cap) & ~single
        grow = grow_ok & ((left & (~left_comma | comma_ok)) | (right & (~right_comma | comma_ok)))
        # a particle between a name and a capitalised word
        part = particle & left & tok.shifted(cap, 2)
        new = runs | grow | part
        if (new == runs).all():
            break
        runs = new
    # a lone initial is not a name; a run must hold a word of 2+ letters
    runs &= ~(single & ~tok.shifted(runs & ~single, -2) & ~tok.shifted(runs & ~single, 2)
              & ~tok.shifted(runs & ~single, -4) & ~tok.shifted(runs & ~single, 4))
    # separators inside a run (between two name words)
    inside = ~word & tok.shifted(runs, -1) & tok.shifted(runs, 1) & (sep_space | sep_dot | sep_comma)
    return runs | inside


# --------------------------------------------------------------------------------------------- rosters
_VALUE_WORD = re.compile(r"[^\W_]+(?:'[^\W\d_]+)?")
#: Separators allowed between the words of one roster value in the text (``617-555-0123``, ``(617) 555 0123``).
_SHORT_SEP = r"^[ \t.\-/(),#]{1,4}$"
#: A roster value of more words than this is not looked for (a pasted paragraph).
MAX_ROSTER_WORDS = 6


class Roster:
    """Known identifiers (rosters from other tables of the policy), matched on word boundaries, case- and
    accent-insensitively, in any text: a value is found as its sequence of words whatever separates them
    (``617-555-0123`` as ``(617) 555 0123``), a name also by each of its parts that is not an English word
    (``Wiśniewska`` in ``WISNIEWSKA``), and a two-word name also as ``Last, First``.

    Built once on the driver and shipped with the plan (broadcast): only sets of folded keys, never logged."""

    def __init__(self, entries: dict[str, str] | None = None) -> None:
        #: folded key (the value's words, concatenated) -> tag
        self.entries: dict[str, str] = dict(entries or {})
        self._arrays: dict[int, tuple[pa.Array, list[str]]] | None = None

    def __bool__(self) -> bool:
        return bool(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def __repr__(self) -> str:  # never the values
        return f"Roster({len(self.entries)} keys)"

    def __getstate__(self) -> dict[str, Any]:
        return {"entries": self.entries}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.entries = state["entries"]
        self._arrays = None

    def add(self, values: Iterable[str | None], tag: str, *, is_name: bool) -> None:
        words_set = english_words()
        for value in values:
            if not value:
                continue
            words = _VALUE_WORD.findall(fold(value))
            if not words or len(words) > MAX_ROSTER_WORDS:
                continue
            joined = "".join(words)
            if is_name:
                if len(joined) >= 3:
                    self.entries.setdefault(joined, tag)
                if len(words) == 2:
                    self.entries.setdefault(words[1] + words[0], tag)
                for w in words:
                    if len(w) >= 3 and w not in words_set and w not in KEEP and not w.isdigit():
                        self.entries.setdefault(w, tag)
            elif len(joined) >= 4 and (any(c.isdigit() for c in joined) or len(words) >= 2):
                self.entries.setdefault(joined, tag)
        self._arrays = None

    def _by_length(self) -> dict[int, tuple[pa.Array, list[str]]]:
        """Per number of words: (keys, their tags) — a key's word count is unknown once joined, so every key is
        tried at every window length up to :data:`MAX_ROSTER_WORDS` (cheap: the look-up is one ``index_in``)."""
        if self._arrays is None:
            keys = sorted(self.entries)
            self._arrays = {0: (pa.array(keys, pa.string()), [self.entries[k] for k in keys])}
        return self._arrays

    def mark(self, tok: Tokens, covered: NDArray[Any], start_tag: NDArray[Any], tags: list[str]) -> None:
        """Mark (``covered``, ``start_tag`` into ``tags``) every run of words equal to a roster key."""
        if not self.entries or not len(tok.flat):
            return
        keys, key_tags = self._by_length()[0]
        tag_ids = []
        for t in key_tags:
            if t not in tags:
                tags.append(t)
            tag_ids.append(tags.index(t))
        tag_of = np.asarray(tag_ids, dtype=np.int64)
        f = pc.replace_substring(tok.folded, "’", "'")
        word = tok.is_word
        short = ~word & _match(tok.flat, _SHORT_SEP)
        n = len(f)
        idx = np.arange(n)
        for w in range(MAX_ROSTER_WORDS, 0, -1):
            ok = word.copy()
            key = f
            for j in range(1, w):
                ok &= tok.shifted(short, 2 * j - 1) & tok.shifted(word, 2 * j)
                if not ok.any():
                    break
                key = pc.binary_join_element_wise(key, f.take(pa.array(np.minimum(idx + 2 * j, n - 1))), "")
            if not ok.any():
                continue
            found = pc.fill_null(pc.index_in(key, value_set=keys), -1).to_numpy(zero_copy_only=False)
            hit = ok & (found >= 0)
            for i in np.flatnonzero(hit):
                span = 2 * w - 1
                if covered[i:i + span].any():
                    continue
                start_tag[i] = tag_of[int(found[i])]
                covered[i:i + span] = True
