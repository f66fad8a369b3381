"""Regular expressions that find identifiers in free text, shared by ``scrub_text`` and the ingest PHI scan.

Every pattern is written in the common subset of RE2 (what ``pyarrow.compute`` and Spark's ``rlike`` run) and
Python's ``re``, so the vectorized strategy and the Python-side evaluation (``benchmarks/scrub_eval.py``) run the
same expressions. RE2 has no look-around, so a pattern that needs context keeps it in two capture groups: every
pattern is ``(KEEP_BEFORE)IDENTIFIER(KEEP_AFTER)`` (either group may be empty) and is replaced by
``\\1[TAG]\\2``: ``Dr. Hargreaves`` becomes ``Dr. [NAME]``, ``call 555-0142`` becomes ``call [PHONE]``.

:data:`ORDER` is the order in which ``scrub_text`` applies the detectors: each runs on the output of the previous
one, so the ones that swallow digits of other kinds go first (a URL or an e-mail address may hold digits and dates;
an IPv4 address looks like a dotted phone number; a 9-digit SSN must be claimed before the phone patterns look;
dates before names, as ``May`` and ``June`` are first names; addresses before names, as ``12 Lincoln Ave`` holds one).

Names (:func:`name_patterns`) are found after a title (``Dr.``, ``Mrs.``...), after a label (``Patient:``,
``Attending:``, ``Referred by``, ``daughter``...), before a credential (``, MD``) or an age (``is a 67 y/o``), and as
a pair in which one word is a known first name or a known surname. The known names are the US Census-derived lists
that the Faker package ships (``en_US``: the 1,000 most frequent surnames and ~700 first names), without words
common in clinical English (``Will``, ``Hope``, ``Bell``) and eponyms (``Murphy``, ``Graves``): 889 surnames and
651 first names remain.
"""

from __future__ import annotations

import re
from functools import cache

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_MONTHS = ("Jan(?:uary)?", "Feb(?:ruary)?", "Mar(?:ch)?", "Apr(?:il)?", "May", "June?", "July?", "Aug(?:ust)?",
           "Sep(?:t(?:ember)?)?", "Oct(?:ober)?", "Nov(?:ember)?", "Dec(?:ember)?")
_MONTH = "(?:" + "|".join(_MONTHS) + ")"
#: A month name as written at the start of a word: ``March``, ``Mar``, ``MAR`` (not ``march``, ``may``).
_MONTH_CAP = "(?:" + "|".join(_MONTHS) + "|" + "|".join(
    ("JAN(?:UARY)?", "FEB(?:RUARY)?", "MAR(?:CH)?", "APR(?:IL)?", "MAY", "JUNE?", "JULY?", "AUG(?:UST)?",
     "SEP(?:T(?:EMBER)?)?", "OCT(?:OBER)?", "NOV(?:EMBER)?", "DEC(?:EMBER)?")) + ")"
_WEEKDAY = (r"(?:Mon(?:day)?|Tue(?:s(?:day)?)?|Wed(?:nesday)?|Thu(?:r(?:s(?:day)?)?)?|Fri(?:day)?|Sat(?:urday)?|"
            r"Sun(?:day)?)")
_DAY = r"(?:0?[1-9]|[12][0-9]|3[01])"
_MM = r"(?:0?[1-9]|1[0-2])"
_YEAR = r"(?:19|20)[0-9]{2}"
_ORD = r"(?:st|nd|rd|th)?"

# ------------------------------------------------------------------------------------------------- names
_TOKEN = r"(?:[A-Z](?:[a-z]+|'[A-Z][a-z]+)(?:[A-Z][a-z]+)?(?:-[A-Z][a-z]+)?)"  # Smith, O'Neil, McKay, Smith-Jones
_INITIAL = r"(?:[A-Z]\.|[A-Z]\b)"
_TITLES = r"(?:Dr|Mr|Mrs|Ms|Mx|Miss|Prof|Rev)"
_LABELS = (r"(?:Patient(?: [Nn]ame)?|Pt(?: [Nn]ame)?|Name|Attending(?: [Pp]hysician)?|PCP|Provider|Physician|Surgeon|"
           r"Resident|Fellow|Intern|Nurse|RN|NP|PA|Author|Signed|Signed by|Electronically signed by|Dictated by|"
           r"Cosigned by|Seen by|Referred by|Referring(?: [Pp]hysician)?|Contact|Emergency [Cc]ontact|Guardian|"
           r"Caregiver|Interpreter|Scribe|Spouse|Cc|CC|Next of kin|NOK|Requested by|Ordered by|Reviewed by)")
_RELATIONS = (r"(?:wife|husband|spouse|partner|mother|father|mom|dad|daughter|son|sister|brother|grandson|"
              r"granddaughter|grandmother|grandfather|aunt|uncle|niece|nephew|friend|neighbor|caregiver|fiancee?|"
              r"guardian|roommate)")
_BY = (r"(?:(?:[Rr]eferred|[Ss]een|[Ss]igned|[Dd]ictated|[Rr]eviewed|[Gg]iven|[Ee]xamined|[Ee]valuated|[Cc]overed|"
       r"[Ww]ritten|[Aa]pproved|[Aa]dministered|[Pp]erformed|[Tt]ranscribed|[Ee]ntered) by|[Pp]er|"
       r"(?:[Ee]mergency )?[Cc]ontact|[Ss]poke with|[Dd]iscussed with|[Cc]alled)")
_CREDENTIALS = r"(?:(?:MD|DO|RN|NP|PA-C|PA|APRN|CNM|CRNA|PhD|PharmD|DDS|LCSW|MSW|FNP|DNP)\b|M\.D\.|D\.O\.)"

#: Known names that are also common words or eponyms in clinical text: never matched by the known-name rule.
NAME_STOPWORDS = frozenset("""
will may june april august mark bill grace hope faith joy guy art don dean ray chase drew pat sue rich frank gene
jack sunny summer autumn dawn holly ivy iris lily daisy ruby pearl amber crystal angel christian rusty buddy royal
major king prince duke sterling chance case lane brook river sky rose harmony destiny trinity justice miracle
heaven nova gray grey hunter ginger candy misty page willow jade star sage hazel olive penny allegra carmen
brown white green black young long little wood hill price bell ward cross stone rice hunt banks mills fields wells
walls ball bush park strong sharp short swift frost snow day knight love wolf fox bird fish head hand foot cook
baker turner murphy wilson graves parkinson barrett addison cushing hodgkin crohn down marfan huntington foley
glasgow gram apgar babinski homan homans kernig romberg trendelenburg valsalva heimlich whipple nissen bishop
kaposi burkitt wernicke tourette holter doppler allen phalen tinel lachman thompson hawkins weber rinne epley
snellen reed rhodes lewis graham bennett payne hale sweet moody gross noble north south west east english french
house church street lake rivers ferry marsh bond cash gold silver best good goodman wise hardy free freeman
person parsons mason porter carter fisher hunter walker taylor tanner potter miller weaver salt pepper case
christian charity patience constance prudence precious lawson gordon norman neal nelson pierce powers rich
""".split())


def _known_names() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(first names, surnames) from Faker's en_US lists, without :data:`NAME_STOPWORDS`, longest first."""
    from faker.providers.person.en_US import Provider

    def clean(names) -> tuple[str, ...]:  # type: ignore[no-untyped-def]
        out = {n for n in names if re.fullmatch(r"[A-Z][a-z]+(?:['-][A-Z]?[a-z]+)?", n) and len(n) >= 3
               and n.lower() not in NAME_STOPWORDS}
        return tuple(sorted(out, key=lambda n: (-len(n), n)))

    first = clean([*Provider.first_names_female, *Provider.first_names_male])
    return first, clean(Provider.last_names)


@cache
def name_patterns() -> tuple[str, ...]:
    """The ``name`` detector's patterns (built once: they hold the known-name lists)."""
    first, last = _known_names()
    known_first = r"\b(?:" + "|".join(re.escape(n) for n in first) + r")\b"
    known_last = r"(?:" + "|".join(re.escape(n) for n in last) + r")\b"
    person = rf"{_TOKEN}(?:\s+{_INITIAL})?(?:\s+{_TOKEN}){{0,2}}"
    return (
        # a label with a colon: Patient: Jane Roe, Attending: Chen, Li
        rf"(\b{_LABELS}\s*:\s*(?:{_TITLES}\.?\s+)?)(?:{_TOKEN},\s+{_TOKEN}|{person})()",
        # a first and last name after "seen by", "per", "contact"...: Referred by Nguyet Thibodeaux
        rf"(\b(?:{_BY})\s+(?:{_TITLES}\.?\s+)?){_TOKEN}\s+(?:{_INITIAL}\s+)?{_TOKEN}()",
        # a first and last name before an age: Wilhelmina Quintanilla is a 87 y/o
        rf"()\b{_TOKEN}\s+(?:{_INITIAL}\s+)?{_TOKEN}(\s+(?:is|was)\s+an?\s+[0-9]{{1,3}}[- ]?(?:y/?o|yo|year))",
        # a relation: her daughter Maria, wife, Ellen Park,
        rf"(\b(?i:{_RELATIONS}),?\s+(?:{_TITLES}\.?\s+)?)(?:{_TOKEN}(?:\s+{_TOKEN})?)()",
        # signed with a credential: Jane Roe, MD / J. Roe MD
        rf"()\b(?:{_INITIAL}\s+|{_TOKEN}\s+(?:{_INITIAL}\s+)?){_TOKEN}(,?\s+{_CREDENTIALS})",
        # a known first name with a capitalized word, or a capitalized word with a known surname
        rf"(){known_first}(?:\s+{_INITIAL})?\s+{_TOKEN}()",
        rf"()\b{_TOKEN}(?:\s+{_INITIAL})?\s+{known_last}()",
        # Last, First with both known
        rf"()\b{known_last},\s+{known_first}()",
        # a title: Dr. Hargreaves, Mrs. O'Neil, Dr. Ana M. Souza (last: the patterns above take a title as context,
        # and a title before a tag must not be taken for a name)
        rf"(\b{_TITLES}\.?\s+)(?:{_TOKEN}\s+(?:{_INITIAL}\s+)?)?{_TOKEN}()",
    )


# ----------------------------------------------------------------------------------------------- address
_SUFFIX = (r"(?:Street|St|Avenue|Ave|Av|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Place|Pl|Way|Terrace|Ter|"
           r"Circle|Cir|Parkway|Pkwy|Highway|Hwy|Square|Sq|Trail|Trl|Plaza|Turnpike|Tpke|Pike|Row|Path|Loop|Alley|"
           r"Crescent|Expressway|Expy|Freeway|Fwy)")
_DIRECTION = r"(?:N|S|E|W|NE|NW|SE|SW|North|South|East|West)\.?"
_UNIT = r"(?:,?\s*(?:Apt|Apartment|Unit|Suite|Ste|Fl|Floor|Rm|Room|Bldg|#)\.?\s*#?\s*[0-9A-Z]{1,5}(?:-[0-9A-Z]+)?\b)"
_CITY_STATE_ZIP = rf"(?:,?\s+{_TOKEN}(?:\s+{_TOKEN}){{0,2}},\s+[A-Z]{{2}}\b(?:\.?\s+[0-9]{{5}}(?:-[0-9]{{4}})?\b)?)"
ADDRESS_PATTERNS: tuple[str, ...] = (
    rf"()\b[0-9]{{1,6}}[A-Z]?(?:-[0-9]{{1,4}})?\s+(?:{_DIRECTION}\s+)?(?:(?:{_TOKEN}|[0-9]{{1,3}}(?:st|nd|rd|th)|"
    rf"[A-Z]{{2,}})\.?\s+){{1,4}}{_SUFFIX}\b\.?(?:\s+(?:N|S|E|W|NE|NW|SE|SW)\b\.?)?{_UNIT}?{_CITY_STATE_ZIP}?()",
    r"()\b(?i:P\.?\s?O\.?\s*Box|Post Office Box)\s+[0-9]+\b" + rf"{_CITY_STATE_ZIP}?()",
    rf"()\b{_TOKEN}(?:\s+{_TOKEN}){{0,2}},\s+[A-Z]{{2}}\s+[0-9]{{5}}(?:-[0-9]{{4}})?\b()",
)

#: Detector name -> its patterns, applied one after the other (each RE2 and Python ``re`` compatible).
DETECTOR_PATTERNS: dict[str, tuple[str, ...]] = {
    # scheme or www., or a bare host with a common TLD followed by a path; not ending in sentence punctuation
    "url": (r"()(?:\b(?:[Hh][Tt][Tt][Pp][Ss]?://|[Ww][Ww][Ww]\.)|\b[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
            r"\.(?:com|org|net|edu|gov|io|us)/)[^\s<>\"']*[^\s<>\"'.,;:!?)\]]()",),
    "email": (r"()\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b()",),
    "ip": (rf"()\b{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}\b()",),
    # 3-2-4 with dashes or spaces, or 9 digits standing alone (not part of a longer number or word)
    "ssn": (r"()(?:\b[0-9]{3}-[0-9]{2}-[0-9]{4}\b|\b[0-9]{3} [0-9]{2} [0-9]{4}\b|\b[0-9]{9}\b)()",),
    # NANP: +1 / 1- / 1, area code bare or in parentheses, separators space/dot/dash or none (a bare 10-digit number
    # whose area code and exchange start with 2-9: an NPI starts with 1), an extension x / ext. / extension;
    # a 7-digit local number only after a phone word
    "phone": (r"()(?:(?:\+1[\s.-]?|\b1[\s.-]?)?\([2-9][0-9]{2}\)\s?|(?:\+1[\s.-]?|\b1[\s.-]?|\b)[2-9][0-9]{2}[\s.-]?)"
              r"[2-9][0-9]{2}[\s.-]?"
              r"[0-9]{4}\b(?:,?\s?(?i:x|ext\.?|extension)\s?[0-9]{1,5}\b)?()",
              r"((?i:\b(?:phone|tel|telephone|cell|mobile|home|work|call|called|pager|fax|callback|reached at|"
              r"number|ph)\.?\s*(?:#|no\.?|number)?\s*:?\s*))[2-9][0-9]{2}[\s.-][0-9]{4}\b"
              r"(?:,?\s?(?i:x|ext\.?|extension)\s?[0-9]{1,5}\b)?()"),
    # a medical record number after one of its labels: 6-10 digits, optionally after 1-3 letters
    "mrn": (r"()\b(?i:MRN|MR\s?#|MR\s?No\.?|MR\s?number|Med(?:ical)?\.?\s+Rec(?:ord)?\.?\s*(?:No\.?|Number|Num|#)|"
            r"Medical\s+record(?:\s+(?:number|no\.?|num|#))?|Chart\s*(?:#|No\.?|Number|Num)|Record\s*(?:#|No\.?)|"
            r"Unit\s+(?:No\.?|Number)|Hospital\s+(?:No\.?|Number|#)|(?:Patient|Pt)\s+ID)\s*(?:#|:|=|is)?\s*(?:#|:)?\s*"
            r"(?:[A-Za-z]{1,3}-?)?[0-9]{6,10}\b()",),
    "date": (
        # numeric and written dates with a year, optionally with the weekday beside them
        rf"()(?:\b(?i:{_WEEKDAY})\.?,?\s+)?(?:"
        rf"\b{_MM}/{_DAY}/(?:{_YEAR}|[0-9]{{2}})\b|\b{_MM}-{_DAY}-(?:{_YEAR}|[0-9]{{2}})\b|\b{_MM}\.{_DAY}\.{_YEAR}\b"
        rf"|\b{_YEAR}[-/.](?:0?[1-9]|1[0-2])[-/.](?:0?[1-9]|[12][0-9]|3[01])\b"
        rf"|\b(?i:{_MONTH})\.?\s+{_DAY}{_ORD},?\s+{_YEAR}\b"
        rf"|\b{_DAY}{_ORD}\s+(?:of\s+)?(?i:{_MONTH})\.?,?\s+{_YEAR}\b"
        rf"|\b{_DAY}[-/ ]?(?i:{_MONTH})[-/ ]?(?:{_YEAR}|[0-9]{{2}})\b"
        rf"|\b{_MONTH_CAP}\.?\s+{_DAY}{_ORD}\b"  # month and day without a year
        rf"|\b(?i:{_MONTH})\.?,?\s+(?:of\s+)?{_YEAR}\b"  # month and year
        rf")()",
        # month/day without a year: after a weekday or a date word, or with a day 11-31 but 15 (``7/10`` is a pain
        # score, ``4/5`` a strength grade, ``14/15`` a coma score; ``3/14`` is a date)
        rf"()\b(?i:{_WEEKDAY})\.?,?\s+{_MM}/{_DAY}\b()",
        rf"((?i:\b(?:on|since|until|till|through|thru|dated|before|after|as of|starting|DOS|seen|admitted|"
        rf"discharged|visit|appt|appointment|given|started|stopped|due|scheduled|surgery|returns?|f/u|follow-up|in|for)"
        rf"\s+))"
        rf"{_MM}/{_DAY}\b()",
        rf"()\b{_MM}/(?:1[1-46-9]|2[0-9]|3[01])\b()",
    ),
    "address": ADDRESS_PATTERNS,
}

#: Look-alikes guarded before the detectors run: a labelled NPI (10 digits, like a bare phone number) gets
#: :data:`GUARD` between its two halves, so that no detector matches it; ``scrub_text`` removes every ``GUARD`` at
#: the end (a GUARD character already in the text goes with it).
GUARD = "\x02"
GUARDS: tuple[tuple[str, str], ...] = (
    (r"(\b(?i:NPI)\s*(?:#|no\.?|number)?\s*:?\s*)([0-9]{5})([0-9]{5}\b)", "\\1\\2" + GUARD + "\\3"),
)

#: Order of application in ``scrub_text``.
ORDER: tuple[str, ...] = ("url", "email", "ip", "mrn", "ssn", "phone", "date", "address", "name")

#: Detector name -> replacement tag.
TAGS: dict[str, str] = {name: f"[{name.upper()}]" for name in ORDER}


def patterns(name: str) -> tuple[str, ...]:
    """The patterns of detector ``name``, in order."""
    return name_patterns() if name == "name" else DETECTOR_PATTERNS[name]


#: The ingest PHI scan's phone form: with separators, parentheses or +1 (a column of bare 10-digit numbers is more
#: often an NPI or an account number than phones; free text is scrubbed with the bare form too).
PHONE_SEPARATED = (r"(?:\+1[\s.-]?|\b1[\s.-])?(?:\([2-9][0-9]{2}\)\s?|\b[2-9][0-9]{2}[\s.-])"
                   r"[2-9][0-9]{2}[\s.-][0-9]{4}\b"
                   r"(?:,?\s?(?i:x|ext\.?|extension)\s?[0-9]{1,5}\b)?")


class _Patterns(dict):
    """``PATTERNS[name]``: one pattern that matches what any of a detector's patterns matches (the PHI scan and
    the whole-value checks use it; scrubbing applies the patterns one by one); ``phone`` is
    :data:`PHONE_SEPARATED`."""

    def __missing__(self, name: str) -> str:
        if name == "phone":
            self[name] = PHONE_SEPARATED
            return PHONE_SEPARATED
        pats = patterns(name)
        value = pats[0] if len(pats) == 1 else "(?:" + "|".join(f"(?:{p})" for p in pats) + ")"
        self[name] = value
        return value

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(ORDER)

    def __len__(self) -> int:
        return len(ORDER)

    def __contains__(self, name: object) -> bool:
        return name in ORDER


#: Detector name -> one combined pattern (for the ingest PHI scan and for tests).
PATTERNS: dict[str, str] = _Patterns()

#: Whole-value forms for scanning columns that are not declared PHI (anchored; a cell that *is* an identifier).
VALUE_PATTERNS: dict[str, str] = {
    "ssn": r"^\s*[0-9]{3}-?[0-9]{2}-?[0-9]{4}\s*$",
    "email": rf"^\s*{DETECTOR_PATTERNS['email'][0]}\s*$",
    "phone": rf"^\s*{PHONE_SEPARATED}\s*$",
}


def replacement(name: str) -> str:
    """The RE2 rewrite for detector ``name``: the kept context around the tag."""
    return rf"\1{TAGS[name]}\2"


@cache
def compiled(name: str) -> tuple[re.Pattern[str], ...]:
    """The Python ``re`` forms of detector ``name`` (for evaluation and for per-value checks in tests)."""
    return tuple(re.compile(p) for p in patterns(name))
