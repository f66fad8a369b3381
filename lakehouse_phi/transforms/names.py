"""Person names in free text, found over whole Arrow columns: word lists, accent folding and the token tagger.

The text is cut into words and separators with Arrow (``[sep, word, sep, word, ..., sep]`` per row, see
:func:`tokens`); every word gets a few flags from set look-ups (``is_in`` on its folded form: lower case, accents
removed, ``Wiśniewska`` -> ``wisniewska``), and the rules below combine neighbouring flags with numpy, so no
Python runs per row.

Word lists (``scrub_data/``, built once by ``benchmarks/build_scrub_lists.py``; sources and licences in
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
    data = resources.files("lakehouse_phi.transforms").joinpath("scrub_data").joinpath(name).read_bytes()
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


# --------------------------------------------------------------------------------------------- tokens
SEP = "\x00"
_WORD = r"[\pL\pN][\pL\pN\pM]*(?:['’][\pL]+)?"


# Flags of one piece (a word or a separator), computed once per distinct piece and cached.
F_POSSESSIVE, F_TITLE_CASE, F_UPPER, F_LETTERS, F_SINGLE, F_LISTED, F_FIRST, F_LAST = (1 << i for i in range(8))
F_ENG, F_KEEP, F_ABBREV, F_PARTICLE, F_EPONYM_NOUN, F_TITLE, F_CUE, F_WEAK = (1 << i for i in range(8, 16))
F_CRED, F_LEN3, F_LEN4, F_SEP_SPACE, F_SEP_COMMA, F_SEP_DOT, F_SEP_COLON, F_OPEN = (1 << i for i in range(16, 24))
F_CLOSE, F_SHORT, F_DOT_FIRST, F_NUM = (1 << i for i in range(24, 28))
_SEP_RULES = ((F_SEP_SPACE, re.compile(r"[ \t]{1,2}|-")), (F_SEP_COMMA, re.compile(r"\.?,[ \t]{1,2}")),
              (F_SEP_DOT, re.compile(r"\.[ \t]{1,2}|\.")), (F_SEP_COLON, re.compile(r"\s*[:#]\s*|\s*[:,]?\s*\n\s*")),
              (F_SHORT, re.compile(r"[ \t.\-/(),#]{1,4}")))
_CACHE_MAX = 500_000


@cache
def _lexicon() -> dict[str, int]:
    """Folded word -> its list flags (names, English words, keep list, cues...)."""
    lex: dict[str, int] = {}
    for bit, words in ((F_FIRST | F_LISTED, first_names()), (F_LAST | F_LISTED, last_names()),
                       (F_ENG, english_words() | EPONYM_NOUNS), (F_KEEP, KEEP), (F_ABBREV, ABBREVIATIONS),
                       (F_PARTICLE, PARTICLES), (F_EPONYM_NOUN, EPONYM_NOUNS), (F_TITLE, TITLES),
                       (F_CUE, NAME_CUES), (F_WEAK, WEAK_CUES), (F_CRED, CREDENTIALS)):
        for w in words:
            lex[w] = lex.get(w, 0) | bit
    return lex


_piece_cache: dict[str, tuple[int, str]] = {}


def _piece(s: str) -> tuple[int, str]:
    """(flags, folded form) of one piece."""
    hit = _piece_cache.get(s)
    if hit is not None:
        return hit
    flags = 0
    folded = fold(s)
    if s[:1].isalnum():
        bare = s.replace("'", "").replace("’", "")
        letters = bare.isalpha()
        base = folded[:-2] if folded.endswith("'s") else folded
        if folded.endswith("'s"):
            flags |= F_POSSESSIVE
        if letters:
            flags |= F_LETTERS
            lex = _lexicon()
            flags |= lex.get(base, 0) & ~(F_PARTICLE | F_TITLE | F_CUE | F_WEAK | F_CRED | F_ABBREV)
            flags |= lex.get(folded, 0) & (F_PARTICLE | F_TITLE | F_CUE | F_WEAK | F_CRED | F_ABBREV)
            if s[0].isupper():
                if len(s) == 1:
                    flags |= F_SINGLE | F_TITLE_CASE
                elif bare.isupper():
                    flags |= F_UPPER
                elif sum(c.isupper() for c in s[1:]) <= 1:
                    flags |= F_TITLE_CASE
        else:
            flags |= _lexicon().get(folded, 0) & F_ABBREV
            if s[0].isdigit():
                flags |= F_NUM
        if len(s) >= 3:
            flags |= F_LEN3
        if len(s) >= 4:
            flags |= F_LEN4
    else:
        for bit, rx in _SEP_RULES:
            if rx.fullmatch(s):
                flags |= bit
        if s.endswith("["):
            flags |= F_OPEN
        if s.startswith("]"):
            flags |= F_CLOSE
        if s.startswith("."):
            flags |= F_DOT_FIRST
    if len(_piece_cache) > _CACHE_MAX:
        _piece_cache.clear()
    _piece_cache[s] = (flags, folded)
    return flags, folded


class Tokens:
    """The words of a column: ``flat`` alternates separator, word, ..., separator per row; ``parents`` is each
    piece's row; ``is_word`` marks the words; ``flags`` and ``folded`` are looked up once per distinct piece."""

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
        enc = pc.dictionary_encode(self.flat)
        self._indices = enc.indices.to_numpy(zero_copy_only=False)
        looked = [_piece(s) for s in enc.dictionary.to_pylist()]
        self._flags_u = np.fromiter((x[0] for x in looked), dtype=np.int64, count=len(looked))
        self._folded_u = pa.array([x[1] for x in looked], pa.string())
        self.flags: NDArray[Any] = self._flags_u[self._indices] if len(looked) else np.zeros(0, dtype=np.int64)
        self._folded: pa.Array | None = None

    def has(self, bit: int) -> NDArray[Any]:
        return np.asarray((self.flags & bit) != 0, dtype=bool)

    @property
    def folded(self) -> pa.Array:
        if self._folded is None:
            self._folded = self._folded_u.take(pa.array(self._indices))
        return self._folded

    def shifted(self, flags: NDArray[Any], by: int) -> NDArray[Any]:
        """``flags`` of the piece ``by`` positions later (earlier if negative) in the same row; False outside."""
        n = len(flags)
        out = np.zeros(n, dtype=flags.dtype)
        if abs(by) >= n:
            return out
        same = np.zeros(n, dtype=bool)
        if by > 0:
            out[:n - by] = flags[by:]
            same[:n - by] = self.parents[by:] == self.parents[:n - by]
        else:
            out[-by:] = flags[:n + by]
            same[-by:] = self.parents[:n + by] == self.parents[-by:]
        out[~same] = 0
        return np.asarray(out)

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


def name_runs(tok: Tokens) -> NDArray[Any]:
    """Per piece: True for the words (and separators between them) that are part of a person's name."""
    word = tok.is_word
    n = len(word)
    if not n:
        return np.zeros(0, dtype=bool)
    h = tok.has
    possessive = word & h(F_POSSESSIVE)
    title_case = word & h(F_TITLE_CASE)
    upper = word & h(F_UPPER)
    letters = word & h(F_LETTERS)
    # a capital letter after a number is a unit (36.1 C, 98 F), not an initial
    single = word & h(F_SINGLE) & ~tok.shifted(word & h(F_NUM), -2)
    listed = word & h(F_LISTED)
    eng = word & h(F_ENG)
    keep = word & h(F_KEEP)
    # an abbreviation in capitals or lower case (ANA, na); written as a name (Ana) a listed name stays a name
    abbrev = word & h(F_ABBREV) & ~(title_case & listed & h(F_LEN3))
    particle = word & h(F_PARTICLE)
    sep_space = ~word & h(F_SEP_SPACE)
    sep_comma = ~word & h(F_SEP_COMMA)
    sep_dot = ~word & h(F_SEP_DOT)
    sep_colon = ~word & h(F_SEP_COLON)
    # a word in capitals is name-like only when listed (capitals in a header are a shout, not a name)
    cap = title_case | (upper & listed)
    nxt_eponym = tok.shifted(word & h(F_EPONYM_NOUN), 2) & tok.shifted(sep_space, 1)
    eponym = (keep & (possessive | nxt_eponym)) | (title_case & possessive & ~listed)
    strong = cap & listed & ~eng & ~keep & ~possessive & ~abbrev
    # a listed first name and a listed surname, both capitalised (not in capitals), even if English words
    strong |= (title_case & h(F_FIRST) & ~keep & ~abbrev & ~possessive & tok.shifted(sep_space, 1)
               & tok.shifted(title_case & h(F_LAST) & ~abbrev, 2))
    # lower-case or any-case pairs of listed names that are not words: socorro mendoza
    any_strong = letters & listed & ~eng & ~keep & ~abbrev & ~h(F_CUE | F_CRED | F_TITLE)
    pair = any_strong & ((tok.shifted(any_strong, 2) & tok.shifted(sep_space | sep_comma, 1))
                         | (tok.shifted(any_strong, -2) & tok.shifted(sep_space | sep_comma, -1)))
    longer = word & h(F_LEN3)
    # the dictionary test: capitalised, not an English word, not clinical (capitals: 4+ letters, not an acronym)
    unknown_cap = cap & ~eng & ~keep & ~possessive & ~abbrev & (longer | listed)
    unknown_cap_upper = upper & ~eng & ~keep & ~listed & letters & ~abbrev & h(F_LEN4)
    nameish = (cap & (listed | ~eng)) & ~eponym & ~abbrev & (longer | listed)
    nameish |= single  # an initial
    title_before = tok.shifted(word & h(F_TITLE), -2) & tok.shifted(sep_space | sep_dot, -1)
    cue = word & h(F_CUE)
    weak = word & h(F_WEAK)
    strong_cue_before = tok.shifted(cue & ~weak, -2) & tok.shifted(sep_space | sep_colon | sep_comma, -1)
    weak_cue_before = tok.shifted(weak, -2) & tok.shifted(sep_space | sep_comma | sep_colon, -1)
    cred_after = tok.shifted(word & h(F_CRED), 2) & tok.shifted(sep_space | sep_comma, 1)
    seeds = strong | pair
    seeds |= (title_before | strong_cue_before) & (nameish | unknown_cap | unknown_cap_upper) & (~eng | single) & ~keep
    seeds |= (title_before | strong_cue_before) & cap & listed
    seeds |= weak_cue_before & unknown_cap & ~eng & ~upper
    # any case after a strong cue: a listed name that is not an English word (Caller: luz maria vasquez)
    lower_listed = letters & listed & ~keep & ~abbrev & ~h(F_CUE | F_CRED | F_TITLE)
    seeds |= strong_cue_before & lower_listed & ~eng
    seeds |= cred_after & (nameish | unknown_cap)
    seeds |= title_before & cap & ~abbrev  # Dr. Bell: after a title any capitalised word
    seeds &= ~eponym
    # grow: neighbours that look like a name part
    grow_ok = (nameish | unknown_cap | unknown_cap_upper | (letters & listed & ~eng & tok.shifted(seeds, -2))
               ) & ~eponym & ~abbrev
    grow_ok &= ~(word & h(F_CRED | F_CUE | F_TITLE) & ~listed)
    # a listed name in any case beside a name, not an English word; between two name words even if one (maria)
    grow_lower = lower_listed & ~eng
    unknown_lower = letters & ~title_case & ~upper & ~listed & ~eng & ~keep & ~abbrev & h(F_LEN4)
    between = lower_listed
    joins = sep_space | sep_dot | sep_comma
    # a tag written by an earlier detector ([GEO], [MRN]) is not a word of a name
    in_tag = tok.shifted(~word & h(F_OPEN), -1) & tok.shifted(~word & h(F_CLOSE), 1)
    seeds &= ~in_tag
    grow_ok &= ~in_tag
    runs = seeds.copy()
    left_comma = tok.shifted(sep_comma, -1)
    right_comma = tok.shifted(sep_comma, 1)
    # across ". " only after an initial or a title (A. M. Traoré, Dr. Roe), never across a sentence end
    initial_or_title = single | (word & h(F_TITLE))
    left_join = tok.shifted(sep_space | sep_comma, -1) | (tok.shifted(sep_dot, -1) & tok.shifted(initial_or_title, -2))
    right_join = tok.shifted(sep_space | sep_comma, 1) | (tok.shifted(sep_dot, 1) & initial_or_title)
    comma_ok = (listed | unknown_cap | unknown_cap_upper) & ~single
    next_cap = tok.shifted(cap | particle, 2)
    prev_cap = tok.shifted(cap | particle, -2)
    for _ in range(4):
        left = tok.shifted(runs, -2) & left_join
        right = tok.shifted(runs, 2) & right_join
        # across a comma only Last, First (the word after the comma is a listed name or unknown capitalised)
        grow = grow_ok & ((left & (~left_comma | comma_ok)) | (right & (~right_comma | comma_ok)))
        grow |= grow_lower & ~in_tag & ((left & ~left_comma) | (right & ~right_comma))
        grow |= between & ~in_tag & left & tok.shifted(lower_listed & ~eng, 2) & right_join
        # a lower-case surname no list holds, right after a lower-case name: son tomasz kowalczyk
        grow |= unknown_lower & ~in_tag & left & ~left_comma & tok.shifted(lower_listed & ~eng, -2)
        # a particle between a name and a capitalised word
        part = particle & ((left & next_cap) | (right & prev_cap))
        # a particle written as a name (Van, DER) beside a name is a surname: Arjun Van, Van, Margaret
        part |= particle & (title_case | upper) & (left | right)
        new = runs | grow | part
        if (new == runs).all():
            break
        runs = new
    # a lone initial is not a name; a run must hold a word of 2+ letters
    full = runs & ~single
    runs &= ~(single & ~tok.shifted(full, -2) & ~tok.shifted(full, 2) & ~tok.shifted(full, -4) & ~tok.shifted(full, 4))
    # separators inside a run (between two name words)
    inside = ~word & tok.shifted(runs, -1) & tok.shifted(runs, 1) & joins
    return np.asarray(runs | inside, dtype=bool)


# --------------------------------------------------------------------------------------------- rosters
_VALUE_WORD = re.compile(r"[^\W_]+(?:'[^\W\d_]+)?")
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
        #: the most words of any value (windows longer than this cannot match)
        self.max_words = MAX_ROSTER_WORDS if entries else 0

    def __bool__(self) -> bool:
        return bool(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def __repr__(self) -> str:  # never the values
        return f"Roster({len(self.entries)} keys)"

    def __getstate__(self) -> dict[str, Any]:
        return {"entries": self.entries, "max_words": self.max_words}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.entries = state["entries"]
        self.max_words = state["max_words"]

    def add(self, values: Iterable[str | None], tag: str, *, is_name: bool) -> None:
        words_set = english_words()
        for value in values:
            if not value:
                continue
            words = _VALUE_WORD.findall(fold(value))
            if not words or len(words) > MAX_ROSTER_WORDS:
                continue
            self.max_words = max(self.max_words, len(words))
            joined = "".join(words)
            if is_name:
                if len(words) == 1 and (joined in words_set or joined in KEEP):
                    continue  # a one-word name that is also a word (Will, Rose) is not looked for alone
                for i in range(len(words)):  # every run of 2+ consecutive words: Okonjo-Mbeki of Thandiwe ...
                    for j in range(i + 2, len(words) + 1):
                        self.entries.setdefault("".join(words[i:j]), tag)
                if len(joined) >= 3:
                    self.entries.setdefault(joined, tag)
                if len(words) == 2:
                    self.entries.setdefault(words[1] + words[0], tag)
                for w in words:
                    if len(w) >= 3 and w not in words_set and w not in KEEP and not w.isdigit():
                        self.entries.setdefault(w, tag)
            elif len(joined) >= 4 and (any(c.isdigit() for c in joined) or len(words) >= 2):
                self.entries.setdefault(joined, tag)

    def mark(self, tok: Tokens, covered: NDArray[Any], start_tag: NDArray[Any], tags: list[str]) -> None:
        """Mark (``covered``, ``start_tag`` into ``tags``) every run of words equal to a roster key.

        The roster stays a Python dict (hashed once, however many patients): per window length, the batch's
        distinct candidate keys are looked up in it, so a batch costs its own size, not the roster's."""
        if not self.entries or not len(tok.flat):
            return
        f = tok.folded
        word = tok.is_word
        short = ~word & tok.has(F_SHORT)
        n = len(f)
        idx = np.arange(n)
        for w in range(self.max_words, 0, -1):
            ok = word.copy()
            key = f
            for j in range(1, w):
                ok &= tok.shifted(short, 2 * j - 1) & tok.shifted(word, 2 * j)
                if not ok.any():
                    break
                key = pc.binary_join_element_wise(key, f.take(pa.array(np.minimum(idx + 2 * j, n - 1))), "")
            if not ok.any():
                continue
            enc = pc.dictionary_encode(key.filter(pa.array(ok)))
            found_u = [self.entries.get(k) if k is not None else None for k in enc.dictionary.to_pylist()]
            if not any(found_u):
                continue
            ids = []
            for t in found_u:
                if t is not None and t not in tags:
                    tags.append(t)
                ids.append(tags.index(t) if t is not None else -1)
            found = np.full(n, -1, dtype=np.int64)
            found[ok] = np.asarray(ids, dtype=np.int64)[enc.indices.to_numpy(zero_copy_only=False)]
            for i in np.flatnonzero(found >= 0):
                span = 2 * w - 1
                if covered[i:i + span].any():
                    continue
                start_tag[i] = found[i]
                covered[i:i + span] = True
